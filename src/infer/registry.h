// infer/registry.h: the one explicit list of inference backends.
//
// Backends are chosen at run time by name; a backend missing from this build or machine is a
// kNotSupported status, never a compile-time difference in the public headers.
// ONNX Runtime: "onnxruntime" runs on ClassifierConfig::device; "onnxruntime-cpu", "-cuda" and
// "-tensorrt" pin the execution provider. An unusable GPU falls back to the CPU (infer/ort_model.h),
// and the classifier's backend() and device() then say "onnxruntime-cpu" and "cpu".
#ifndef DEEPSCAN_INFER_REGISTRY_H_
#define DEEPSCAN_INFER_REGISTRY_H_

#include <memory>
#include <string>
#include <vector>

#include "infer/classifier.h"

namespace deepscan::infer {

struct ClassifierConfig {
  std::string model_path;  // ONNX file (libtorch: a training checkpoint .pt); metadata <name>.json beside it
  std::string backend = "onnxruntime";
  std::string device = "cpu";  // "onnxruntime": cpu | cuda | tensorrt | auto (infer/ort_model.h)
  int threads = 1;
  int max_batch = 16;
  // Overrides of the model's metadata, to measure or fit a scoring rule before it is written there
  // (`deepscan calibrate --face-score`): "" keeps the metadata's face_score, "logit" | "mask_max" replace it;
  // calibrated = false scores sigmoid(z), ignoring the metadata's calibration.
  std::string face_score{};
  bool calibrated = true;
};
// Applies `config`'s overrides to `meta` (each backend calls it on the metadata it loaded).
// Errors: kInvalidArgument (an unknown face_score).
Status ApplyConfigOverrides(const ClassifierConfig& config, ModelMetadata* meta);

// Every backend name this binary knows, available here or not.
std::vector<std::string> KnownBackends();

using ClassifierFactory = Result<std::unique_ptr<Classifier>> (*)(const ClassifierConfig&);

// Makes an optional backend available to CreateClassifier in this process. The inference library
// does not link LibTorch; the deepscan-train binary, which does, calls
// RegisterBackend("libtorch", ...) explicitly at the top of main() (no static registration).
void RegisterBackend(const std::string& name, ClassifierFactory factory);

// Builds the classifier. Errors: kNotSupported (unknown/absent backend), kInvalidModel.
Result<std::unique_ptr<Classifier>> CreateClassifier(const ClassifierConfig& config);

}  // namespace deepscan::infer

#endif  // DEEPSCAN_INFER_REGISTRY_H_
