#include "infer/registry.h"

#include "infer/ort_classifier.h"

namespace deepscan::infer {

std::vector<std::string> KnownBackends() { return {"onnxruntime-cpu", "onnxruntime-cuda", "libtorch"}; }

Result<std::unique_ptr<Classifier>> CreateClassifier(const ClassifierConfig& config) {
  if (config.backend == "onnxruntime-cpu") return CreateOrtClassifier(config);
  if (config.backend == "onnxruntime-cuda" || config.backend == "libtorch") {
    return Status::NotSupported("backend '" + config.backend + "' is not available in this build");
  }
  return Status::NotSupported("unknown backend '" + config.backend + "'");
}

}  // namespace deepscan::infer
