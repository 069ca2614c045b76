// face_score_bench: which output a model should score faces by, measured on the face-swap dev set.
//
//   build/face_score_bench [--dev-store .cache/dev_crops.h5] [--ensemble] MODEL.onnx [MODEL.onnx ...]
//
// For each model (with the blend-heatmap output "mask"), every crop of the dev store (deepscan
// extract --manifest faceswap-dev/MANIFEST.csv) is scored once, and clip AUC (a clip's score: the
// mean of its crops') and crop AUC are printed for candidate face scores side by side:
//   logit        the classifier output (what models score by unless their metadata says otherwise)
//   heat_max     the heatmap's largest cell (infer::MaskMaxLogit: face_score "mask_max")
//   heat_top4    the mean of its 4 largest cells
//   heat_mean    the mean of all cells
//   heat_centre  the mean of the central half (the inner face)
// With --ensemble, the same for an output ensemble of the models: crop by crop, the mean of their
// scores (logits for logit and heat_max, heatmap values for the others).
// Rank-based figures, so the calibration does not matter. It measures; it asserts nothing.
// docs/training.md ("Scoring a face by its heatmap") has the table it gave.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include <CLI/CLI.hpp>
#include <opencv2/core.hpp>

#include "infer/registry.h"
#include "train/augment.h"
#include "train/crop_store.h"
#include "train/metrics.h"

namespace ds = deepscan;

namespace {

[[noreturn]] void Die(const ds::Status& s) {
  std::fprintf(stderr, "face_score_bench: %s\n", s.ToString().c_str());
  std::exit(1);
}
template <typename T>
T Must(ds::Result<T> r) {
  if (!r.ok()) Die(r.status());
  return std::move(r).value();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dev-set AUC of candidate face scores (classifier logit vs the blend heatmap)"};
  std::string dev_store = DEEPSCAN_SOURCE_DIR "/.cache/dev_crops.h5";
  std::vector<std::string> models;
  app.add_option("--dev-store", dev_store, "crop store of the face-swap dev set")->capture_default_str();
  app.add_option("models", models, "ONNX classifiers with the heatmap output")->required();
  bool ensemble = false;
  app.add_flag("--ensemble", ensemble, "also score the mean of the models' scores (an output ensemble)");
  CLI11_PARSE(app, argc, argv);
  // The dev crops, read once; each model gets them resized to its input.
  auto store = Must(ds::train::CropStoreReader::Open(dev_store, 16));
  std::vector<cv::Mat> stored;
  std::vector<int> labels;
  std::vector<std::string> sources;
  for (int64_t i = 0; i < store->size(); ++i) {
    cv::Mat crop;
    if (!store->Read(i, &crop).ok()) continue;
    stored.push_back(crop);
    labels.push_back(store->records()[i].label);
    sources.push_back(store->records()[i].source);
  }
  const char* const kRules[] = {"logit", "heat_max", "heat_top4", "heat_mean", "heat_centre"};
  auto print = [&](std::map<std::string, std::vector<float>>& rules) {
    for (const char* name : kRules) {
      const auto& s = rules[name];
      std::printf("  %-12s clip AUC %.3f   crop AUC %.3f\n", name, ds::train::PerClipAuc(s, labels, sources),
                  Must(ds::train::RocAuc(s, labels)));
    }
  };
  std::map<std::string, std::vector<float>> sum;  // per rule: the models' scores summed, crop by crop
  for (const std::string& path : models) {
    auto cls = Must(ds::infer::CreateClassifier(
        {.model_path = path, .threads = 2, .max_batch = 32, .face_score = "logit", .calibrated = false}));
    if (!cls->has_heatmaps()) Die(ds::Status::InvalidModel(path + " has no heatmap output"));
    const int side = cls->metadata().input_size;
    std::vector<cv::Mat> crops;
    for (const cv::Mat& c : stored) crops.push_back(ds::train::ResizeSquare(c, side));
    std::vector<float> p;
    std::vector<cv::Mat> heat;
    if (auto s = cls->ClassifyWithHeatmaps(crops, &p, &heat); !s.ok()) Die(s);
    std::map<std::string, std::vector<float>> rules;
    for (size_t i = 0; i < crops.size(); ++i) {
      rules["logit"].push_back(ds::infer::ProbabilityToLogit(p[i]));
      const cv::Mat& h = heat[i];
      rules["heat_max"].push_back(ds::infer::MaskMaxLogit(h.ptr<float>(), h.total()));
      std::vector<float> v(h.begin<float>(), h.end<float>());
      std::sort(v.rbegin(), v.rend());
      const size_t k = std::min<size_t>(4, v.size());
      float top = 0;
      for (size_t j = 0; j < k; ++j) top += v[j] / k;
      rules["heat_top4"].push_back(top);
      rules["heat_mean"].push_back(static_cast<float>(cv::mean(h)[0]));
      const int m = h.rows;
      rules["heat_centre"].push_back(static_cast<float>(cv::mean(h(cv::Rect(m / 4, m / 4, m / 2, m / 2)))[0]));
    }
    for (const auto& [name, s] : rules) {
      auto& acc = sum[name];
      acc.resize(s.size(), 0.0f);
      for (size_t i = 0; i < s.size(); ++i) acc[i] += s[i];
    }
    std::printf("%s: %zu dev crops\n", path.c_str(), crops.size());
    print(rules);
  }
  if (ensemble && models.size() > 1) {
    std::printf("ensemble of %zu models (mean score):\n", models.size());
    print(sum);
  }
  return 0;
}
