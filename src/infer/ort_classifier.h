// infer::OrtClassifier: the ONNX Runtime classifier backend ("onnxruntime" and its pinned forms
// "onnxruntime-cpu", "-cuda", "-tensorrt"), on the execution provider ClassifierConfig::device names;
// an unusable GPU leaves it on the CPU (infer/ort_model.h says when and how that is reported).
#ifndef DEEPSCAN_INFER_ORT_CLASSIFIER_H_
#define DEEPSCAN_INFER_ORT_CLASSIFIER_H_

#include <memory>

#include "infer/classifier.h"
#include "infer/registry.h"

namespace deepscan::infer {

// Loads and validates the model: one input [N, 3, S, S] with S = metadata input_size (N may be
// dynamic or 1), one output [N], [N, 1] or [N, 2] as the metadata says, and optionally a later
// output named "mask" [N, 1, M, M] (values in [0, 1]) that has_heatmaps() then reports and
// ClassifyWithHeatmaps returns. Errors: kInvalidModel,
// kInvalidArgument (an unknown device name).
Result<std::unique_ptr<Classifier>> CreateOrtClassifier(const ClassifierConfig& config);

}  // namespace deepscan::infer

#endif  // DEEPSCAN_INFER_ORT_CLASSIFIER_H_
