// search::ArchitectureLatency: the ms per face of one architecture on the target backend, measured
// once and cached, so that a `deepscan tune` study (an architecture search above all) times each
// architecture once across its trials, its reruns and other studies that share the cache file
// (docs/search.md, "Architecture search").
//
// Basic usage:
//   LatencyOptions o;
//   o.cache_path = "runs/nas/latency-cache.json";
//   ASSIGN_OR_RETURN(ArchLatency l, ArchitectureLatency(trial_config.model, o));
//   if (l.ms_per_face > budget) ...  // refuse the architecture before it trains
//
// In:  a model spec (its training-only fields, dropout and drop_path, do not count), the backend
//      ("cpu", "cuda" or "auto": CUDA when the driver sees a GPU, as `deepscan scan --device auto`),
//      ONNX Runtime's thread count.
// Out: the median ms per face at batch 1 (search::MeasureMsPerFace) of the architecture freshly
//      initialised, exported by train::ExportOnnx to a temporary folder: the graph a trained model
//      of it exports, so its time; and whether the figure came from the cache.
// The cache: one JSON file {"version": 1, "entries": {KEY: {"ms_per_face", "p90_ms", "runs",
//      "threads", "device", "label", "measured_at"}}}; KEY = ArchitectureKey(spec) + "|" +
//      LatencyTargetKey(device, threads) (the backend, the threads and this machine's CPU model,
//      and the GPU's name on CUDA), so a file copied between machines never serves another's
//      figures. Read and written under an exclusive flock on "<cache>.lock", held while measuring
//      (two workers of one machine never time at once, nor time the same architecture twice);
//      written by rename, so a killed process leaves the old file or the new one.
// Blocking; any thread (the lock is per process and file). Errors: kInvalidArgument (the spec, a
//      device), kIoError (the cache cannot be read, parsed or written: delete a corrupt one),
//      as MeasureMsPerFace.
#ifndef DEEPSCAN_SEARCH_ARCH_LATENCY_H_
#define DEEPSCAN_SEARCH_ARCH_LATENCY_H_

#include <functional>
#include <string>

#include "deepscan/status.h"
#include "search/face_timing.h"
#include "train/zoo.h"

namespace deepscan::search {

struct LatencyOptions {
  std::string cache_path;       // the cache file; "" = no cache (measure every time)
  std::string device = "auto";  // cpu | cuda | auto (CUDA when a GPU is usable, else the CPU)
  int threads = 1;              // ONNX Runtime intra-op threads
  int warmup = 10, runs = 100;  // MeasureMsPerFace's
};

struct ArchLatency {
  double ms_per_face = 0, p90_ms = 0;
  std::string device;   // the execution provider it was timed on ("cpu", "cuda")
  std::string key;      // its cache key
  std::string label;    // ArchLabel(spec)
  bool cached = false;  // read from the cache (else measured by this call)
};

// The architecture's canonical JSON: train::ModelSpecToJson without the training-only fields
// (dropout, drop_path); keys sorted, so equal architectures give equal strings.
std::string ArchitectureKey(const train::ModelSpec& spec);

// A short name for tables and plots: "mobilenetv3_small w1 128px", or for "mobilenetv3_nas"
// "nas w0.75 128px d12323 k33555 e1-4-6-3-6 se10111 act rrhhh" (per stage: depth, kernel,
// expansion, SE, relu/hswish), "+mask" with the mask head, and the pruned channels' count.
std::string ArchLabel(const train::ModelSpec& spec);

// "onnxruntime-cpu|threads=1|cpu=<model name of /proc/cpuinfo>", on CUDA also "|gpu=<name>".
// `device` "auto" is resolved here (cuda when core/cuda_probe.h sees a device, else cpu).
Result<std::string> LatencyTargetKey(const std::string& device, int threads);

// The cache alone: the entry `key` of the cache file, else `measure()`'s result stored under it.
// `label` is recorded beside a new entry, for people reading the file.
Result<ArchLatency> CachedLatency(const std::string& cache_path, const std::string& key, const std::string& label,
                                  const std::function<Result<FaceTiming>()>& measure);

// The whole step: key, cache, else build + export + measure (above).
Result<ArchLatency> ArchitectureLatency(const train::ModelSpec& spec, const LatencyOptions& options);

}  // namespace deepscan::search

#endif  // DEEPSCAN_SEARCH_ARCH_LATENCY_H_
