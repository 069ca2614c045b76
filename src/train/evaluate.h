// train::Evaluate: scores a labelled video set with the scan pipeline and measures it.
//
// In:  labelled videos (train/labelled_sets.h) and a Scanner (its model, sampling, threshold).
// Out: video-level metrics (a video's score is the scan's video score), frame-level metrics
//      (every sampled frame with a face, labelled as its video), at the scanner's threshold:
//      AUC, log loss, EER, accuracy, confusion matrix; plus every video's verdict.
// Videos without a face or that fail to scan are counted and listed, and left out of the metrics.
#ifndef DEEPSCAN_TRAIN_EVALUATE_H_
#define DEEPSCAN_TRAIN_EVALUATE_H_

#include <functional>
#include <string>
#include <vector>

#include "deepscan/scanner.h"
#include "train/manifest.h"
#include "train/metrics.h"

namespace deepscan::train {

struct LevelMetrics {
  int64_t count = 0, positives = 0;  // scored items, fakes among them
  double auc = -1;                   // -1 when one class is missing
  double log_loss = -1;
  double eer = -1, eer_threshold = -1;
  double accuracy = 0;  // at `threshold`
  ConfusionMatrix confusion;
  std::vector<RocPoint> roc;
};

struct EvalVideo {
  std::string name;
  int label = 0;
  VideoStatus status = VideoStatus::kError;
  float score = -1;  // -1 when not scored
  std::string error;
};

struct EvalReport {
  std::string model;
  double threshold = 0.5;
  int videos = 0, scored = 0, no_face = 0, errors = 0;
  LevelMetrics video, frame;
  std::vector<EvalVideo> items;
};

// Scans every input with `scanner`; `progress(done, total)` after each.
EvalReport Evaluate(const std::vector<LabelledInput>& inputs, Scanner& scanner,
                    const std::function<void(int, int)>& progress = nullptr);

// Metrics of (score, label) pairs at `threshold`.
LevelMetrics Measure(const std::vector<float>& scores, const std::vector<int>& labels, double threshold);

// Writes eval.json, scores.csv and roc.png into `dir` (created). Errors: kIoError.
Status WriteEvalReport(const EvalReport& report, const std::string& title, const std::string& dir);

}  // namespace deepscan::train

#endif  // DEEPSCAN_TRAIN_EVALUATE_H_
