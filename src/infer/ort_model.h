// infer::OrtModel: one loaded ONNX Runtime session with float tensors in and out.
//
// The only header through which the rest of the library reaches ONNX Runtime; it exposes no ORT
// type. Both the face detector and the ONNX Runtime classifier backend sit on it.
// In:  an ONNX file and where to run it (OrtModelOptions::provider).
// Out: a session on the CPU, CUDA or TensorRT execution provider; tensors in and out of Run()
//      always live in host memory (ORT copies to and from the GPU around each run).
// How: an accelerated provider that cannot be used (a CPU-only ONNX Runtime, no provider library,
//      no driver, no device, a failed session start) never fails the load: the model loads on the
//      CPU, provider() says "cpu" and fallback_reason() says why. For an explicit request the
//      reason is logged once per process as an spdlog warning; for "auto" at debug level.
//      ONNX Runtime's own log lines go to spdlog too (those of a failed attempt at debug level).
// Threading: Run() may be called from several threads at once (ORT sessions are thread-safe);
// buffers passed in belong to the caller. Load() may be called from several threads.
#ifndef DEEPSCAN_INFER_ORT_MODEL_H_
#define DEEPSCAN_INFER_ORT_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "deepscan/status.h"

namespace deepscan::infer {

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;  // -1 for a dynamic dimension
};

struct OrtModelOptions {
  int threads = 1;               // intra-op threads; never spin-wait (cores are shared)
  std::string provider = "cpu";  // "cpu" | "cuda" | "tensorrt" (CUDA for what TensorRT cannot
                                 // run) | "auto" (CUDA when usable, else quietly the CPU)
  int device_id = 0;             // CUDA device ordinal
  int max_batch = 0;             // TensorRT: largest batch Run() will see when the model's batch
                                 // dimension is dynamic (one engine for 1..max_batch); 0 = unknown
  std::string trt_cache_dir;     // TensorRT engine/timing cache; "" = DefaultTrtCacheDir()
  bool optimize = true;              // false: ORT runs the graph as written, no fusions (a QDQ
                                     // model then runs as float with exact fake quantisation)
  std::string optimized_model_path;  // when set, ORT writes the graph it will run (after its
                                     // optimisations and fusions) here: for checks, e.g. that a QDQ
                                     // model got integer kernels (compress/quantize.h)
  std::string profile_prefix;        // when set, ORT profiles every run and writes
                                     // <prefix>_<date>.json (Chrome trace format: one event per
                                     // kernel with its op and duration): EndProfiling()
};

// Every provider name OrtModelOptions::provider accepts.
const std::vector<std::string>& KnownProviders();

// $XDG_CACHE_HOME/deepscan/trt, else $HOME/.cache/deepscan/trt, else "" (no engine cache).
std::string DefaultTrtCacheDir();

class OrtModel {
 public:
  // Loads `path`. Errors: kInvalidModel (missing, unreadable or not an ONNX model),
  // kInvalidArgument (an unknown provider name). An unusable accelerator is not an error (above).
  static Result<std::unique_ptr<OrtModel>> Load(const std::string& path, const OrtModelOptions& options);
  ~OrtModel();

  const std::vector<TensorSpec>& inputs() const;
  const std::vector<TensorSpec>& outputs() const;
  // The execution provider in effect: "cpu", "cuda" or "tensorrt" (never "auto").
  const std::string& provider() const;
  // Why the requested provider is not the one in effect; empty when it is.
  const std::string& fallback_reason() const;

  // With OrtModelOptions::profile_prefix: ends profiling, writes the profile and returns its
  // path ("" when profiling is off). Errors: kInvalidModel.
  Result<std::string> EndProfiling();

  // Runs the model on one float tensor `input` of `shape` (the first input) and returns every
  // output as a flat float vector with its shape. `outputs` and `shapes` are resized and reused,
  // so steady-state calls allocate only inside ORT. Errors: kInvalidModel (ORT refused the run).
  Status Run(const float* input, const std::vector<int64_t>& shape, std::vector<std::vector<float>>* outputs,
             std::vector<std::vector<int64_t>>* shapes) const;

 private:
  struct Impl;
  explicit OrtModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace deepscan::infer

#endif  // DEEPSCAN_INFER_ORT_MODEL_H_
