// infer::OrtModel: one loaded ONNX Runtime session with float tensors in and out.
//
// The only header through which the rest of the library reaches ONNX Runtime; it exposes no ORT
// type. Both the face detector and the ONNX Runtime classifier backend sit on it.
// Threading: Run() may be called from several threads at once (ORT sessions are thread-safe);
// buffers passed in belong to the caller.
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
  std::string provider = "cpu";  // "cpu" (others arrive with the GPU issue)
};

class OrtModel {
 public:
  // Loads `path`. Errors: kInvalidModel (missing, unreadable or not an ONNX model).
  static Result<std::unique_ptr<OrtModel>> Load(const std::string& path, const OrtModelOptions& options);
  ~OrtModel();

  const std::vector<TensorSpec>& inputs() const;
  const std::vector<TensorSpec>& outputs() const;

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
