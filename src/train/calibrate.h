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

#include "deepscan/status.h"

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

}  // namespace deepscan::train

#endif  // DEEPSCAN_TRAIN_CALIBRATE_H_
