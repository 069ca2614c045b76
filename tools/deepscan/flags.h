// The one argument table of the deepscan tool: every subcommand that scans (scan, and later
// serve and bench) registers its flags through AddScanFlags, so a flag means the same everywhere.
#ifndef DEEPSCAN_TOOLS_FLAGS_H_
#define DEEPSCAN_TOOLS_FLAGS_H_

#include <string>

#include <CLI/CLI.hpp>

#include "deepscan/options.h"

namespace deepscan::tools {

// Where bundled files live: $DEEPSCAN_HOME, else the source tree this binary was built from.
std::string HomeDir();
// The default face detector and classifier paths (see docs/models.md for the search order).
std::string DefaultDetectorPath();
std::string DefaultRefindDetectorPath();
std::string DefaultModelPath();
std::string DefaultInt8ModelPath();     // models/default-int8.onnx (deepscan quantize, --profile edge)
std::string DefaultInt8DetectorPath();  // models/blazeface-back-int8.onnx (the same)

// Registers the scan flags on `app`, writing into `options`.
void AddScanFlags(CLI::App* app, ScanOptions* options);

// After parsing: defaults that depend on other flags (keyframe triage does not tile unless
// --tiling is given; --profile edge picks the INT8 classifier and detector, no tiling,
// detect-every 8 for every one of those flags not given).
void ApplyPolicyDefaults(const CLI::App& app, ScanOptions* options);

// Where `deepscan bench --tune` settings come from (pipeline/tuning.h).
struct TunedFlags {
  std::string path;       // --tuned; default pipeline::DefaultTunedPath()
  bool disabled = false;  // --no-tuned
};
void AddTunedFlags(CLI::App* app, TunedFlags* flags);
// After parsing: fills batch size and thread split from the tuned settings, for each knob not
// given on the command line, when the settings were measured on this machine for this thread
// budget. Returns a one-line note on what was applied (or why not), for the log.
std::string ApplyTunedSettings(const CLI::App& app, const TunedFlags& flags, ScanOptions* options);

}  // namespace deepscan::tools

#endif  // DEEPSCAN_TOOLS_FLAGS_H_
