#include "infer/registry.h"

#include <map>
#include <mutex>

#include "infer/ort_classifier.h"

namespace deepscan::infer {
namespace {

std::mutex registry_mu;
std::map<std::string, ClassifierFactory>& Registered() {
  static auto* m = new std::map<std::string, ClassifierFactory>();  // never destroyed
  return *m;
}

}  // namespace

Status ApplyConfigOverrides(const ClassifierConfig& config, ModelMetadata* meta) {
  if (!config.face_score.empty()) {
    ASSIGN_OR_RETURN(meta->face_score, ParseFaceScore(config.face_score));
  }
  if (!config.calibrated) {
    meta->calibration_method = "none";
    meta->calib_a = 1.0f;
    meta->calib_b = 0.0f;
  }
  return Status::Ok();
}

std::vector<std::string> KnownBackends() {
  return {"onnxruntime", "onnxruntime-cpu", "onnxruntime-cuda", "onnxruntime-tensorrt", "libtorch"};
}

void RegisterBackend(const std::string& name, ClassifierFactory factory) {
  std::lock_guard<std::mutex> lock(registry_mu);
  Registered()[name] = factory;
}

Result<std::unique_ptr<Classifier>> CreateClassifier(const ClassifierConfig& config) {
  if (config.backend == "onnxruntime") return CreateOrtClassifier(config);
  for (const char* device : {"cpu", "cuda", "tensorrt"}) {
    if (config.backend == std::string("onnxruntime-") + device) {
      ClassifierConfig pinned = config;
      pinned.device = device;
      return CreateOrtClassifier(pinned);
    }
  }
  ClassifierFactory factory = nullptr;
  {
    std::lock_guard<std::mutex> lock(registry_mu);
    auto it = Registered().find(config.backend);
    if (it != Registered().end()) factory = it->second;
  }
  if (factory) return factory(config);
  if (config.backend == "libtorch") {
    return Status::NotSupported(
        "backend 'libtorch' lives in the deepscan-train binary (LibTorch); "
        "`deepscan ... --backend libtorch` runs it");
  }
  return Status::NotSupported("unknown backend '" + config.backend + "'");
}

}  // namespace deepscan::infer
