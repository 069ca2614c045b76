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

// Rewrites the threshold in `model_path`'s metadata JSON, with `how` as its
// "threshold_calibration" record; keys this reader does not know are kept.
// Errors: kInvalidModel (unreadable metadata), kIoError.
Status WriteThreshold(const std::string& model_path, double threshold, const nlohmann::json& how);

}  // namespace deepscan::train

#endif  // DEEPSCAN_TRAIN_CALIBRATE_H_
