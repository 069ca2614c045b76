// infer::OrtClassifier: the ONNX Runtime (CPU) classifier backend, "onnxruntime-cpu".
#ifndef DEEPSCAN_INFER_ORT_CLASSIFIER_H_
#define DEEPSCAN_INFER_ORT_CLASSIFIER_H_

#include <memory>

#include "infer/classifier.h"
#include "infer/registry.h"

namespace deepscan::infer {

// Loads and validates the model: one input [N, 3, S, S] with S = metadata input_size (N may be
// dynamic or 1), one output [N], [N, 1] or [N, 2] as the metadata says. Errors: kInvalidModel.
Result<std::unique_ptr<Classifier>> CreateOrtClassifier(const ClassifierConfig& config);

}  // namespace deepscan::infer

#endif  // DEEPSCAN_INFER_ORT_CLASSIFIER_H_
