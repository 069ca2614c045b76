// infer::OnnxGraph: writes small ONNX models from C++ (Debian's libonnx protobuf), checked by
// onnx::checker before they are saved.
//
// Used to build the tiny classifiers of the tests and the untrained development model; the model
// exporter of the training tool chain builds on it. Opset 17.
#ifndef DEEPSCAN_INFER_ONNX_GRAPH_H_
#define DEEPSCAN_INFER_ONNX_GRAPH_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "deepscan/status.h"

namespace deepscan::infer {

// An attribute of a node: ints, one int, floats or one float.
struct OnnxAttr {
  std::string name;
  std::vector<int64_t> ints;
  std::vector<float> floats;
  bool scalar = false;  // write ints[0] / floats[0] as a scalar attribute
};

class OnnxGraph {
 public:
  OnnxGraph();
  ~OnnxGraph();
  // Declares the float input `name` of `shape` (-1 = dynamic, named "N").
  void AddInput(const std::string& name, const std::vector<int64_t>& shape);
  void AddOutput(const std::string& name, const std::vector<int64_t>& shape);
  void AddInitializer(const std::string& name, const std::vector<int64_t>& shape, const std::vector<float>& values);
  void AddInt64Initializer(const std::string& name, const std::vector<int64_t>& values);
  void AddNode(const std::string& op, const std::vector<std::string>& inputs, const std::vector<std::string>& outputs,
               const std::vector<OnnxAttr>& attrs = {});
  // Checks the model and writes it. Errors: kInvalidModel (checker), kIoError.
  Status Save(const std::string& path) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A classifier whose logit is w . mean_rgb + b, computed on the normalised input (mean over the
// spatial axes of each channel). Input [N|1, 3, S, S]; output [N, 1]. Tests predict its scores.
Status WriteMeanColourModel(const std::string& path, int input_size, const std::vector<float>& w, float b,
                            bool dynamic_batch = true);

// A small convolutional network with fixed pseudo-random weights (seeded): conv 3x3/2 (3->8),
// ReLU, conv 3x3/2 (8->16), ReLU, global average pool, linear 16->1. Realistic operator mix for
// pipeline tests and the untrained development model. With `heatmap`, a second output "mask"
// [N, 1, S/4, S/4] = sigmoid(conv 1x1 (16->1) of the second feature map), shaped like the blend
// heatmap a zoo model with the mask head exports (train/onnx_export.h).
Status WriteRandomConvModel(const std::string& path, int input_size, uint32_t seed, bool heatmap = false);

}  // namespace deepscan::infer

#endif  // DEEPSCAN_INFER_ONNX_GRAPH_H_
