// train::metrics: binary-classifier metrics for validation and calibration, and a ROC plot.
//
// In:  parallel spans of scores and labels. Label 1 = fake (the positive class), 0 = real.
//      "Score" is anything monotone in fakeness (probability or logit) unless a function says it
//      needs probabilities (LogLoss) or logits (FitPlatt, FitTemperature).
//      A sample is predicted fake when score >= threshold.
// Out: numbers and small structs; errors as Status (kInvalidArgument for mismatched lengths,
//      empty input, labels other than 0/1, non-finite scores, or a missing class where the
//      metric needs both; kIoError when the plot cannot be written).
// No Torch here: plain C++ and OpenCV (for the plot only).
#ifndef DEEPSCAN_TRAIN_METRICS_H_
#define DEEPSCAN_TRAIN_METRICS_H_

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "deepscan/status.h"

namespace deepscan::train {

// Area under the ROC curve = P(score of a random fake > score of a random real), ties counting
// one half (Mann-Whitney U from average ranks). Needs both classes.
Result<double> RocAuc(std::span<const float> scores, std::span<const int> labels);

// Mean binary cross-entropy of probabilities, each clipped to [eps, 1 - eps] first (natural log).
Result<double> LogLoss(std::span<const float> probabilities, std::span<const int> labels, double eps = 1e-7);

// AUC over clips: each (label, source) pair is one clip scoring the mean of its crops' scores.
// -1 without both labels among the clips. `scores`, `labels` and `sources` run in parallel.
double PerClipAuc(const std::vector<float>& scores, const std::vector<int>& labels,
                  const std::vector<std::string>& sources);

struct ConfusionMatrix {
  int64_t tp = 0;  // fake predicted fake
  int64_t fp = 0;  // real predicted fake
  int64_t tn = 0;  // real predicted real
  int64_t fn = 0;  // fake predicted real
  int64_t total() const { return tp + fp + tn + fn; }
  double accuracy() const { return total() ? double(tp + tn) / total() : 0.0; }
  double tpr() const { return tp + fn ? double(tp) / (tp + fn) : 0.0; }  // recall on fakes
  double fpr() const { return fp + tn ? double(fp) / (fp + tn) : 0.0; }  // reals flagged
  double precision() const { return tp + fp ? double(tp) / (tp + fp) : 0.0; }
};

// Counts at `threshold` (fake when score >= threshold). Needs no particular class.
Result<ConfusionMatrix> Confusion(std::span<const float> scores, std::span<const int> labels, double threshold);

// Fraction correct at `threshold`.
Result<double> Accuracy(std::span<const float> scores, std::span<const int> labels, double threshold);

struct RocPoint {
  double fpr = 0;        // false positive rate at this threshold
  double tpr = 0;        // true positive rate at this threshold
  double threshold = 0;  // fake when score >= threshold (+infinity for the (0, 0) start)
};

// The ROC curve: (0, 0) at threshold +inf, then one point per distinct score in decreasing
// order (ties form one step, possibly diagonal), ending at (1, 1). Its trapezoid area equals
// RocAuc. Needs both classes.
Result<std::vector<RocPoint>> RocCurve(std::span<const float> scores, std::span<const int> labels);

struct EqualErrorRate {
  double eer = 0;        // the rate where false positive rate = false negative rate
  double threshold = 0;  // the score threshold of the ROC point nearest that crossing
};

// Equal error rate: where the ROC curve crosses FPR = 1 - TPR, linearly interpolated along the
// segment that crosses it; `threshold` is that of the segment end with the smaller
// |FPR - FNR| (the lower-threshold end when they tie, so it is always one of the scores).
// Needs both classes.
Result<EqualErrorRate> Eer(std::span<const float> scores, std::span<const int> labels);

// p = sigmoid(a * z + b) on a logit z.
struct LogisticCalibration {
  double a = 1;
  double b = 0;
  double Probability(double logit) const;
};

// log(p / (1 - p)) with p clipped to [eps, 1 - eps].
double Logit(double probability, double eps = 1e-7);

struct PlattOptions {
  int max_iterations = 50;     // Newton steps at most (it usually converges in under 10)
  double tolerance = 1e-10;    // stop when the log-likelihood improves by less than this
  bool smooth_targets = true;  // Platt's targets (N+ + 1)/(N+ + 2) and 1/(N- + 2) instead of 1
                               //   and 0: keeps (a, b) finite on separable data
};

// Platt scaling: logistic regression of the label on the logit (Newton's method with
// step halving). Needs both classes.
Result<LogisticCalibration> FitPlatt(std::span<const float> logits, std::span<const int> labels,
                                     const PlattOptions& options = {});

// Temperature scaling: fits a = 1 / T with b = 0 (1-D Newton on the log-likelihood), same
// options. Needs both classes.
Result<LogisticCalibration> FitTemperature(std::span<const float> logits, std::span<const int> labels,
                                           const PlattOptions& options = {});

// One curve of a ROC plot.
struct RocSeries {
  std::string name;              // legend text, followed by " (AUC 0.873)"
  std::vector<RocPoint> points;  // from RocCurve
  double auc = 0;
};

// Draws the curves on a white `size` x `size` canvas (axes with ticks at 0, 0.2, ... 1, the
// chance diagonal dashed, one colour per curve, the legend with each AUC, `title` on top) and
// writes it to `path` (PNG; the extension picks the format). Errors: kInvalidArgument (no
// series, size < 200), kIoError (cannot write).
Status WriteRocPlot(std::span<const RocSeries> series, const std::string& title, const std::string& path,
                    int size = 512);

}  // namespace deepscan::train

#endif  // DEEPSCAN_TRAIN_METRICS_H_
