// pipeline/tuning.h: the settings `deepscan bench --tune` measured as fastest on this machine.
//
// In:  a JSON file (default $DEEPSCAN_TUNED, else $XDG_CONFIG_HOME/deepscan/tuned.json, else
//      ~/.config/deepscan/tuned.json) written by `deepscan bench --tune`.
// Out: batch size and thread split, applied to ScanOptions by `scan` (and later `serve`) for every
//      knob the user did not set on the command line. Settings measured on another machine (other
//      CPU model or core count) or for another thread budget are not applied.
// Format: {"version": 1, "cpu": "...", "hardware_threads": 2, "threads": 2, "max_batch": 16,
//          "videos_in_flight": 2, "decode_threads": 1, "infer_threads": 2, "measured": {...}}
#ifndef DEEPSCAN_PIPELINE_TUNING_H_
#define DEEPSCAN_PIPELINE_TUNING_H_

#include <string>

#include "deepscan/options.h"
#include "deepscan/status.h"

namespace deepscan::pipeline {

struct TunedSettings {
  std::string cpu;           // /proc/cpuinfo model name of the machine it was measured on
  int hardware_threads = 0;  // std::thread::hardware_concurrency() there
  int threads = 0;           // the thread budget it was measured for
  int max_batch = 16;
  int videos_in_flight = 0;
  int decode_threads = 0;
  int infer_threads = 0;
  std::string measured_json;  // what the tuner measured (free-form JSON object, kept verbatim)
};

// The default location (see above).
std::string DefaultTunedPath();

// This machine's CPU model name and hardware thread count.
std::string CpuModel();
int HardwareThreads();

// Errors: kNotFound (no file), kInvalidArgument (not a tuned-settings file).
Result<TunedSettings> LoadTuned(const std::string& path);
// Writes atomically (temporary file + rename), creating the folder. Errors: kIoError.
Status SaveTuned(const std::string& path, const TunedSettings& settings);

// True when `settings` were measured on this machine for the thread budget `threads` (0 = all).
bool TunedAppliesHere(const TunedSettings& settings, int threads);

}  // namespace deepscan::pipeline

#endif  // DEEPSCAN_PIPELINE_TUNING_H_
