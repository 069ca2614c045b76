#include "train/calibrate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <thread>

#include <set>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "infer/model_metadata.h"
#include "infer/registry.h"
#include "train/augment.h"
#include "train/crop_store.h"
#include "train/metrics.h"
#include "train/sbi.h"
#include "train/split.h"

namespace deepscan::train {

Result<ThresholdReport> CalibrateThreshold(const ThresholdOptions& o) {
  if (!(o.quantile > 0 && o.quantile < 1)) return Status::InvalidArgument("quantile must be in (0, 1)");
  const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ASSIGN_OR_RETURN(std::unique_ptr<infer::Classifier> cls,
                   infer::CreateClassifier({.model_path = o.model_path, .threads = threads, .max_batch = 32}));
  ASSIGN_OR_RETURN(std::unique_ptr<CropStoreReader> store, CropStoreReader::Open(o.store_path, 64));
  Split split = SplitByGroup(store->records(), o.val_fraction, o.seed);
  const int size = cls->metadata().input_size;
  std::vector<cv::Mat> batch;
  std::vector<float> scores, all;
  ThresholdReport rep;
  auto flush = [&]() -> Status {
    if (batch.empty()) return Status::Ok();
    RETURN_IF_ERROR(cls->Classify(batch, &scores));
    all.insert(all.end(), scores.begin(), scores.end());
    batch.clear();
    return Status::Ok();
  };
  std::set<std::string> groups;
  for (int64_t row : split.val) {
    if (store->records()[row].label != 0) continue;
    cv::Mat crop;
    RETURN_IF_ERROR(store->Read(row, &crop));
    batch.push_back(ResizeSquare(crop, size));
    groups.insert(store->records()[row].group);
    if (batch.size() == 32) RETURN_IF_ERROR(flush());
  }
  RETURN_IF_ERROR(flush());
  if (all.empty()) return Status::InvalidArgument("no held-out real crops in " + o.store_path);
  std::sort(all.begin(), all.end());
  auto at = [&](double q) { return all[std::min(all.size() - 1, static_cast<size_t>(q * (all.size() - 1) + 0.5))]; };
  rep.threshold = std::clamp<double>(at(o.quantile), 0.01, 0.99);
  rep.median = at(0.5);
  rep.crops = static_cast<int64_t>(all.size());
  rep.groups = static_cast<int>(groups.size());

  RETURN_IF_ERROR(WriteThreshold(o.model_path, rep.threshold,
                                 {{"method", "quantile of held-out real crop scores"},
                                  {"quantile", o.quantile},
                                  {"crops", rep.crops},
                                  {"groups", rep.groups},
                                  {"median", rep.median}}));
  return rep;
}

namespace {

// Uncalibrated face logits of `crops`, in one inference pass: the classifier's (`logit`) and, with
// `heatmap_max` too, each heatmap's mask_max logit (the classifier API reports probabilities: the
// logit comes back through ProbabilityToLogit, |z| < 16.2). Errors: kInvalidModel (no heatmap output).
Status RawLogits(const std::string& model, int threads, const std::vector<cv::Mat>& crops, std::vector<float>* logit,
                 std::vector<float>* heatmap_max) {
  ASSIGN_OR_RETURN(std::unique_ptr<infer::Classifier> cls,
                   infer::CreateClassifier({.model_path = model,
                                            .threads = threads,
                                            .max_batch = 32,
                                            .face_score = "logit",
                                            .calibrated = false}));
  if (heatmap_max && !cls->has_heatmaps()) {
    return Status::InvalidModel(model + ": face_score mask_max needs the blend-heatmap output \"mask\", which it lacks");
  }
  std::vector<cv::Mat> heat;
  RETURN_IF_ERROR(cls->ClassifyWithHeatmaps(crops, logit, &heat));
  for (float& x : *logit) x = infer::ProbabilityToLogit(x);
  if (heatmap_max) {
    heatmap_max->clear();
    for (const cv::Mat& h : heat) heatmap_max->push_back(infer::MaskMaxLogit(h.ptr<float>(), h.total()));
  }
  return Status::Ok();
}

}  // namespace

Result<FaceScoreReport> SetFaceScore(const FaceScoreOptions& o) {
  ASSIGN_OR_RETURN(infer::FaceScore chosen, infer::ParseFaceScore(o.face_score));
  const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ASSIGN_OR_RETURN(infer::ModelMetadata meta, infer::LoadModelMetadata(o.model_path));
  ASSIGN_OR_RETURN(std::unique_ptr<CropStoreReader> store, CropStoreReader::Open(o.store_path, 64));
  const Split split = SplitByGroup(store->records(), o.val_fraction, o.seed);
  SbiOptions sbi;
  sbi.alpha_choices = kSbiBlendRatios;
  sbi.hull_p = 0;  // the shipped recipe's masks
  std::mt19937 rng(o.seed);
  std::vector<cv::Mat> crops;
  std::vector<int> labels;
  cv::Mat crop;
  for (int64_t row : split.val) {
    const CropRecord& rec = store->records()[row];
    if (rec.label != 0) continue;
    RETURN_IF_ERROR(store->Read(row, &crop));
    auto blend = MakeSelfBlended(crop, rec.keypoints, sbi, rng, rec.landmarks ? &*rec.landmarks : nullptr);
    if (!blend.ok()) continue;  // a crop whose keypoints make no mask
    crops.push_back(ResizeSquare(crop, meta.input_size));
    crops.push_back(ResizeSquare(blend->image, meta.input_size));
    labels.push_back(0);
    labels.push_back(1);
  }
  if (crops.empty()) return Status::InvalidArgument("no held-out real crops in " + o.store_path);
  std::vector<float> zl, zm;
  const bool mask_max = chosen == infer::FaceScore::kMaskMax;
  RETURN_IF_ERROR(RawLogits(o.model_path, threads, crops, &zl, mask_max ? &zm : nullptr));
  const std::vector<float>& z = mask_max ? zm : zl;
  FaceScoreReport rep;
  rep.pairs = static_cast<int>(labels.size() / 2);
  ASSIGN_OR_RETURN(rep.auc, RocAuc(z, labels));
  ASSIGN_OR_RETURN(rep.logit_auc, RocAuc(zl, labels));
  ASSIGN_OR_RETURN(LogisticCalibration platt, FitPlatt(z, labels));
  rep.a = platt.a;
  rep.b = platt.b;
  RETURN_IF_ERROR(infer::EditMetadataJson(o.model_path, o.model_path, [&](nlohmann::json& j) {
    j["face_score"] = infer::FaceScoreName(chosen);
    j["calibration"] = {{"method", "platt"}, {"a", static_cast<float>(rep.a)}, {"b", static_cast<float>(rep.b)}};
    j["face_score_calibration"] = {{"method", "platt on held-out (real, self-blended) pairs"},
                                   {"pairs", rep.pairs},
                                   {"auc", rep.auc},
                                   {"logit_auc", rep.logit_auc},
                                   {"store", o.store_path},
                                   {"val_fraction", o.val_fraction},
                                   {"seed", o.seed}};
    return Status::Ok();
  }));
  return rep;
}

Status WriteThreshold(const std::string& model_path, double threshold, const nlohmann::json& how) {
  return infer::EditMetadataJson(model_path, model_path, [&](nlohmann::json& j) {
    j["threshold"] = static_cast<float>(threshold);
    j["threshold_calibration"] = how;
    return Status::Ok();
  });
}

Result<VideoThreshold> ThresholdFromVideos(const EvalReport& report, double quantile) {
  if (!(quantile > 0 && quantile < 1)) return Status::InvalidArgument("quantile must be in (0, 1)");
  std::vector<float> reals, fakes;
  for (const EvalVideo& v : report.items) {
    if (v.score < 0) continue;  // not scored (no face, failed)
    (v.label == 0 ? reals : fakes).push_back(v.score);
  }
  if (reals.empty()) return Status::InvalidArgument("no scored real video to calibrate on");
  std::sort(reals.begin(), reals.end());
  VideoThreshold t;
  // At most floor((1 - quantile) * n) real videos at or above the threshold (ties aside): the
  // lowest of those top ones, or just above the highest real when none may be flagged.
  const size_t n = reals.size();
  const auto flagged = static_cast<size_t>(std::floor((1 - quantile) * static_cast<double>(n) + 1e-9));
  const double raw = flagged > 0 ? reals[n - flagged] : std::nextafter(reals.back(), 2.0f);
  t.threshold = std::clamp<double>(raw, 0.01, 0.99);
  t.reals = static_cast<int>(reals.size());
  t.fakes = static_cast<int>(fakes.size());
  auto share = [&](const std::vector<float>& xs) {
    if (xs.empty()) return 0.0;
    return static_cast<double>(std::count_if(xs.begin(), xs.end(), [&](float x) { return x >= t.threshold; })) /
           static_cast<double>(xs.size());
  };
  t.false_alarm_rate = share(reals);
  t.detection_rate = share(fakes);
  return t;
}

}  // namespace deepscan::train
