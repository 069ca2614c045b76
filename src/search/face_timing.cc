#include "search/face_timing.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include <opencv2/core.hpp>

#include "infer/registry.h"

namespace deepscan::search {

Result<FaceTiming> MeasureMsPerFace(const std::string& onnx_path, const FaceTimingOptions& options) {
  const int threads = options.threads, warmup = options.warmup, runs = options.runs;
  if (threads < 1 || runs < 1 || warmup < 0) return Status::InvalidArgument("threads and runs must be >= 1");
  infer::ClassifierConfig config;
  config.model_path = onnx_path;
  config.device = options.device;
  config.threads = threads;
  config.max_batch = 1;
  ASSIGN_OR_RETURN(std::unique_ptr<infer::Classifier> classifier, infer::CreateClassifier(config));
  const int side = classifier->metadata().input_size;
  std::vector<cv::Mat> crops(1, cv::Mat(side, side, CV_8UC3));
  cv::RNG rng(1);
  rng.fill(crops[0], cv::RNG::UNIFORM, 0, 256);
  std::vector<float> scores;
  for (int i = 0; i < warmup; ++i) RETURN_IF_ERROR(classifier->Classify(crops, &scores));
  std::vector<double> ms;
  ms.reserve(runs);
  for (int i = 0; i < runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    RETURN_IF_ERROR(classifier->Classify(crops, &scores));
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  FaceTiming t;
  t.ms_per_face = ms[ms.size() / 2];
  t.p90_ms = ms[std::min(ms.size() - 1, ms.size() * 9 / 10)];
  t.runs = runs;
  t.threads = threads;
  t.device = classifier->device();
  return t;
}

}  // namespace deepscan::search
