// train::CalibrateThreshold: sets a model's decision threshold from held-out real faces.
//
// Real faces from sources the model never saw score higher than its training faces, and clips
// from different cameras differ a lot (docs/training.md). So the shipped threshold is the
// `quantile` (e.g. 0.95) of the calibrated scores of real face crops from the identity groups
// held out of training (the same SplitByGroup as the trainer): about 1 - quantile of unseen real
// faces are flagged per crop, and fewer per video, since a video score averages its frames.
#ifndef DEEPSCAN_TRAIN_CALIBRATE_H_
#define DEEPSCAN_TRAIN_CALIBRATE_H_

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "deepscan/status.h"
#include "train/evaluate.h"

namespace deepscan::train {

struct ThresholdOptions {
  std::string model_path;     // ONNX classifier; its metadata JSON is rewritten with the threshold
  std::string store_path;     // the crop store the model was trained from
  double val_fraction = 0.1;  // the trainer's split
  uint32_t seed = 1;
  double quantile = 0.95;  // of held-out real crop scores
  int threads = 0;
};

struct ThresholdReport {
  double threshold = 0.5;
  int64_t crops = 0;  // held-out real crops scored
  int groups = 0;     // their identity groups
  double median = 0;  // median held-out real score, for the record
};

// Scores the held-out real crops and writes the threshold into the model's metadata.
// Errors: kInvalidModel, kIoError, kCorruptInput, kInvalidArgument (nothing held out).
Result<ThresholdReport> CalibrateThreshold(const ThresholdOptions& options);

// The threshold from real *videos* of many sources (e.g. the face-swap dev set's real clips, which
// the model was never trained on): the `quantile` of the scored real videos' scores in `report`
// (a `deepscan eval`): the lowest threshold that flags at most floor((1 - quantile) × n) of them
// (ties aside), clamped to [0.01, 0.99]; and what that
// threshold does on the same report: the share of its real and of its fake videos at or above it.
struct VideoThreshold {
  double threshold = 0.5;
  int reals = 0, fakes = 0;       // scored videos of each label
  double false_alarm_rate = 0;    // reals at or above the threshold
  double detection_rate = 0;      // fakes at or above it (0 when there are none)
};
// Errors: kInvalidArgument (quantile outside (0, 1), no scored real video).
Result<VideoThreshold> ThresholdFromVideos(const EvalReport& report, double quantile);

// Which output a model scores faces by (infer::FaceScore: the classifier logit, or the largest cell
// of its blend heatmap), with its Platt calibration refitted for that score, so that the reported
// P(fake) stays a probability of "blended". The fit uses one self-blended pseudo-fake per held-out
// real crop (the same SplitByGroup as the trainer; SBI's blend ratios, 6-keypoint ellipse masks:
// the shipped recipe's pseudo-fakes) and that real crop. The threshold is not touched: calibrate it
// afterwards (CalibrateThreshold, or ThresholdFromVideos on a dev set), since scores move.
struct FaceScoreOptions {
  std::string model_path;  // ONNX classifier; its metadata's face_score and calibration are rewritten
  std::string store_path;  // the crop store it was trained from
  std::string face_score;  // "logit" | "mask_max"
  double val_fraction = 0.1;
  uint32_t seed = 1;
  int threads = 0;
};
struct FaceScoreReport {
  int pairs = 0;              // (real, pseudo-fake) pairs the fit used
  double auc = 0;             // their AUC under the chosen face score
  double logit_auc = 0;       // and under the classifier logit, for comparison
  double a = 1, b = 0;        // the Platt fit written: P(fake) = sigmoid(a z + b)
};
// Errors: kInvalidArgument (unknown face score, nothing held out), kInvalidModel (mask_max on a
// model without the heatmap output; unreadable metadata), kIoError, kCorruptInput.
Result<FaceScoreReport> SetFaceScore(const FaceScoreOptions& options);

// Rewrites the threshold in `model_path`'s metadata JSON, with `how` as its
// "threshold_calibration" record; keys this reader does not know are kept.
// Errors: kInvalidModel (unreadable metadata), kIoError.
Status WriteThreshold(const std::string& model_path, double threshold, const nlohmann::json& how);

}  // namespace deepscan::train

#endif  // DEEPSCAN_TRAIN_CALIBRATE_H_
