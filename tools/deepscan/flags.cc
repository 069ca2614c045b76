#include "flags.h"

#include <cstdlib>
#include <filesystem>
#include <map>

namespace deepscan::tools {

std::string HomeDir() {
  if (const char* env = std::getenv("DEEPSCAN_HOME"); env && *env) return env;
  return DEEPSCAN_SOURCE_DIR;
}

std::string DefaultDetectorPath() {
  return HomeDir() + "/third_party/models/face_detection_back_256x256_barracuda.onnx";
}

std::string DefaultModelPath() {
  // The shipped, trained model first; until it exists, the untrained development model that
  // scripts/setup.sh generates (its verdicts say "trained": false).
  std::string shipped = HomeDir() + "/models/default.onnx";
  if (std::filesystem::exists(shipped)) return shipped;
  return HomeDir() + "/third_party/models/dev-untrained.onnx";
}

void AddScanFlags(CLI::App* app, ScanOptions* o) {
  o->classifier.model_path = DefaultModelPath();
  o->detector.model_path = DefaultDetectorPath();
  app->add_option("-m,--model", o->classifier.model_path, "classifier ONNX file (metadata in <model>.json beside it)")
      ->capture_default_str();
  app->add_option("--detector", o->detector.model_path, "BlazeFace ONNX file (back 256 or front 128)")
      ->capture_default_str();
  app->add_option("--backend", o->classifier.backend, "inference backend")
      ->check(CLI::IsMember({"onnxruntime-cpu", "onnxruntime-cuda", "libtorch"}))
      ->capture_default_str();
  std::map<std::string, SamplingPolicy> sampling{{"uniform", SamplingPolicy::kUniform},
                                                 {"keyframes", SamplingPolicy::kKeyframes}};
  app->add_option("-s,--sampling", o->sampling.policy, "frame selection: uniform | keyframes")
      ->transform(CLI::CheckedTransformer(sampling, CLI::ignore_case))
      ->default_str("uniform");
  app->add_option("-n,--frames", o->sampling.frames, "frames to sample per video")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app->add_option("--margin", o->crop.margin, "crop margin around the face box (0.3 = 30%)")
      ->check(CLI::Range(0.0, 3.0))
      ->capture_default_str();
  app->add_option("--face-threshold", o->detector.score_threshold, "minimum face detector confidence")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  app->add_flag("!--no-tiling", o->detector.tiling, "do not tile large frames (faster; misses small faces)");
  std::map<std::string, Aggregation> agg{{"mean", Aggregation::kMean}, {"confident", Aggregation::kConfident}};
  app->add_option("-a,--aggregate", o->aggregation.strategy, "video score: mean | confident (DFDC winner's rule)")
      ->transform(CLI::CheckedTransformer(agg, CLI::ignore_case))
      ->default_str("mean");
  app->add_option("-t,--threshold", o->aggregation.threshold, "label threshold (default: the model's calibrated one)")
      ->check(CLI::Range(0.0, 0.9999));
  app->add_option("--batch", o->classifier.max_batch, "face crops per classifier call")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app->add_option("--threads", o->threads, "threads for decoding and inference (0 = all cores)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  app->add_option("--timeout", o->timeout_s, "seconds allowed per video (0 = no limit)")
      ->check(CLI::Range(0.0, 1e7))
      ->capture_default_str();
  app->add_option("--cache", o->cache_dir,
                  "result cache directory: files already scanned (same bytes, model and options) are not scanned "
                  "again");
}

}  // namespace deepscan::tools
