#include "train/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace deepscan::train {
namespace {

struct Counts {
  int64_t positives = 0, negatives = 0;
};

// Validates parallel inputs; fills `counts`. `need_both`: both classes must be present.
Status Check(std::span<const float> scores, std::span<const int> labels, bool need_both, Counts* counts,
             const char* what) {
  const std::string name(what);
  if (scores.size() != labels.size()) {
    return Status::InvalidArgument(name + ": " + std::to_string(scores.size()) + " scores but " +
                                   std::to_string(labels.size()) + " labels");
  }
  if (scores.empty()) return Status::InvalidArgument(name + ": no samples");
  Counts c;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (!std::isfinite(scores[i])) return Status::InvalidArgument(name + ": non-finite score");
    if (labels[i] == 1) {
      ++c.positives;
    } else if (labels[i] == 0) {
      ++c.negatives;
    } else {
      return Status::InvalidArgument(name + ": labels must be 0 or 1");
    }
  }
  if (need_both && (c.positives == 0 || c.negatives == 0)) {
    return Status::InvalidArgument(name + ": needs both classes (" + std::to_string(c.positives) + " fake, " +
                                   std::to_string(c.negatives) + " real)");
  }
  if (counts) *counts = c;
  return Status::Ok();
}

// Indices sorted by score, decreasing.
std::vector<size_t> OrderDescending(std::span<const float> scores) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  return order;
}

// -[t log sigmoid(s) + (1 - t) log(1 - sigmoid(s))], stable for any s.
double BceWithLogit(double s, double t) { return std::log1p(std::exp(-std::abs(s))) + std::max(s, 0.0) - t * s; }

double Sigmoid(double s) {
  if (s >= 0) return 1.0 / (1.0 + std::exp(-s));
  const double e = std::exp(s);
  return e / (1.0 + e);
}

// Targets for calibration fits: 0/1, or Platt's smoothed ones.
std::vector<double> Targets(std::span<const int> labels, const Counts& c, bool smooth) {
  const double hi = smooth ? (c.positives + 1.0) / (c.positives + 2.0) : 1.0;
  const double lo = smooth ? 1.0 / (c.negatives + 2.0) : 0.0;
  std::vector<double> t(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) t[i] = labels[i] == 1 ? hi : lo;
  return t;
}

double MeanLoss(std::span<const float> z, const std::vector<double>& t, double a, double b) {
  double sum = 0;
  for (size_t i = 0; i < z.size(); ++i) sum += BceWithLogit(a * z[i] + b, t[i]);
  return sum / z.size();
}

// Newton's method on the mean logistic loss over (a, b), or over a alone when `fit_bias` is
// false (b stays 0). Each step is halved until the loss does not increase.
LogisticCalibration FitLogistic(std::span<const float> z, const std::vector<double>& t, bool fit_bias, double a0,
                                double b0, const PlattOptions& o) {
  double a = a0, b = fit_bias ? b0 : 0.0;
  double loss = MeanLoss(z, t, a, b);
  const double n = static_cast<double>(z.size());
  for (int iter = 0; iter < o.max_iterations; ++iter) {
    double ga = 0, gb = 0, haa = 0, hab = 0, hbb = 0;
    for (size_t i = 0; i < z.size(); ++i) {
      const double p = Sigmoid(a * z[i] + b);
      const double r = p - t[i], w = p * (1 - p);
      ga += r * z[i];
      gb += r;
      haa += w * z[i] * z[i];
      hab += w * z[i];
      hbb += w;
    }
    ga /= n, gb /= n, haa /= n, hab /= n, hbb /= n;
    constexpr double kRidge = 1e-12;
    double da = 0, db = 0;
    if (fit_bias) {
      const double det = (haa + kRidge) * (hbb + kRidge) - hab * hab;
      if (!(std::abs(det) > 0)) break;
      da = -((hbb + kRidge) * ga - hab * gb) / det;
      db = -((haa + kRidge) * gb - hab * ga) / det;
    } else {
      da = -ga / (haa + kRidge);
    }
    double step = 1.0, new_loss = loss;
    bool improved = false;
    for (int halving = 0; halving < 30; ++halving, step *= 0.5) {
      new_loss = MeanLoss(z, t, a + step * da, b + step * db);
      if (new_loss <= loss) {
        improved = true;
        break;
      }
    }
    if (!improved) break;
    a += step * da;
    b += step * db;
    const double gain = loss - new_loss;
    loss = new_loss;
    if (gain < o.tolerance) break;
  }
  return {a, b};
}

}  // namespace

Result<double> RocAuc(std::span<const float> scores, std::span<const int> labels) {
  Counts c;
  RETURN_IF_ERROR(Check(scores, labels, true, &c, "RocAuc"));
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Average 1-based ranks over ties; sum them for the positives.
  double positive_rank_sum = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && scores[order[j + 1]] == scores[order[i]]) ++j;
    const double rank = 0.5 * (static_cast<double>(i + 1) + static_cast<double>(j + 1));
    for (size_t k = i; k <= j; ++k) {
      if (labels[order[k]] == 1) positive_rank_sum += rank;
    }
    i = j + 1;
  }
  const double np = static_cast<double>(c.positives), nn = static_cast<double>(c.negatives);
  const double u = positive_rank_sum - np * (np + 1) / 2;
  return u / (np * nn);
}

Result<double> LogLoss(std::span<const float> probabilities, std::span<const int> labels, double eps) {
  RETURN_IF_ERROR(Check(probabilities, labels, false, nullptr, "LogLoss"));
  if (!(eps > 0 && eps < 0.5)) return Status::InvalidArgument("LogLoss: eps must be in (0, 0.5)");
  double sum = 0;
  for (size_t i = 0; i < probabilities.size(); ++i) {
    const double p = std::clamp(static_cast<double>(probabilities[i]), eps, 1.0 - eps);
    sum -= labels[i] == 1 ? std::log(p) : std::log1p(-p);
  }
  return sum / probabilities.size();
}

Result<ConfusionMatrix> Confusion(std::span<const float> scores, std::span<const int> labels, double threshold) {
  RETURN_IF_ERROR(Check(scores, labels, false, nullptr, "Confusion"));
  ConfusionMatrix m;
  for (size_t i = 0; i < scores.size(); ++i) {
    const bool fake = scores[i] >= threshold;
    if (labels[i] == 1) {
      (fake ? m.tp : m.fn)++;
    } else {
      (fake ? m.fp : m.tn)++;
    }
  }
  return m;
}

Result<double> Accuracy(std::span<const float> scores, std::span<const int> labels, double threshold) {
  ASSIGN_OR_RETURN(ConfusionMatrix m, Confusion(scores, labels, threshold));
  return m.accuracy();
}

Result<std::vector<RocPoint>> RocCurve(std::span<const float> scores, std::span<const int> labels) {
  Counts c;
  RETURN_IF_ERROR(Check(scores, labels, true, &c, "RocCurve"));
  const std::vector<size_t> order = OrderDescending(scores);
  std::vector<RocPoint> curve;
  curve.push_back({0.0, 0.0, std::numeric_limits<double>::infinity()});
  int64_t tp = 0, fp = 0;
  for (size_t i = 0; i < order.size();) {
    const float s = scores[order[i]];
    for (; i < order.size() && scores[order[i]] == s; ++i) {
      (labels[order[i]] == 1 ? tp : fp)++;
    }
    curve.push_back({static_cast<double>(fp) / c.negatives, static_cast<double>(tp) / c.positives, s});
  }
  return curve;
}

Result<EqualErrorRate> Eer(std::span<const float> scores, std::span<const int> labels) {
  ASSIGN_OR_RETURN(std::vector<RocPoint> curve, RocCurve(scores, labels));
  // d = FPR - FNR rises from -1 at (0, 0) to +1 at (1, 1); find the first point with d >= 0.
  auto d = [&](size_t i) { return curve[i].fpr - (1.0 - curve[i].tpr); };
  size_t i = 1;
  while (i + 1 < curve.size() && d(i) < 0) ++i;
  const double d0 = d(i - 1), d1 = d(i);
  const double lambda = d1 > d0 ? -d0 / (d1 - d0) : 1.0;
  EqualErrorRate out;
  out.eer = curve[i - 1].fpr + lambda * (curve[i].fpr - curve[i - 1].fpr);
  out.threshold = (std::abs(d1) <= std::abs(d0) || i == 1) ? curve[i].threshold : curve[i - 1].threshold;
  return out;
}

double LogisticCalibration::Probability(double logit) const { return Sigmoid(a * logit + b); }

double Logit(double probability, double eps) {
  const double p = std::clamp(probability, eps, 1.0 - eps);
  return std::log(p / (1.0 - p));
}

Result<LogisticCalibration> FitPlatt(std::span<const float> logits, std::span<const int> labels,
                                     const PlattOptions& options) {
  Counts c;
  RETURN_IF_ERROR(Check(logits, labels, true, &c, "FitPlatt"));
  const std::vector<double> t = Targets(labels, c, options.smooth_targets);
  // Start from the prior: a = 0, b = log odds of the (smoothed) base rate.
  const double b0 = std::log((c.positives + 1.0) / (c.negatives + 1.0));
  return FitLogistic(logits, t, true, 0.0, b0, options);
}

Result<LogisticCalibration> FitTemperature(std::span<const float> logits, std::span<const int> labels,
                                           const PlattOptions& options) {
  Counts c;
  RETURN_IF_ERROR(Check(logits, labels, true, &c, "FitTemperature"));
  const std::vector<double> t = Targets(labels, c, options.smooth_targets);
  return FitLogistic(logits, t, false, 1.0, 0.0, options);
}

Status WriteRocPlot(std::span<const RocSeries> series, const std::string& title, const std::string& path, int size) {
  if (series.empty()) return Status::InvalidArgument("WriteRocPlot: no curves");
  if (size < 200) return Status::InvalidArgument("WriteRocPlot: size must be >= 200");
  const cv::Scalar kBlack(0, 0, 0), kGray(150, 150, 150), kLight(230, 230, 230);
  const std::vector<cv::Scalar> kColors = {{200, 90, 20},  {40, 40, 220},  {40, 160, 40},
                                           {160, 60, 160}, {20, 140, 230}, {120, 120, 20}};
  const int font = cv::FONT_HERSHEY_SIMPLEX;
  const double text_scale = size / 1200.0;
  const int left = size * 12 / 100, right = size * 4 / 100, top = size * 9 / 100, bottom = size * 11 / 100;
  const int w = size - left - right, h = size - top - bottom;
  cv::Mat canvas(size, size, CV_8UC3, cv::Scalar(255, 255, 255));
  auto to_px = [&](double fpr, double tpr) {
    return cv::Point(left + static_cast<int>(std::lround(fpr * w)),
                     top + static_cast<int>(std::lround((1.0 - tpr) * h)));
  };

  // Grid, ticks and tick labels.
  for (int k = 0; k <= 5; ++k) {
    const double v = k / 5.0;
    cv::line(canvas, to_px(v, 0), to_px(v, 1), kLight, 1);
    cv::line(canvas, to_px(0, v), to_px(1, v), kLight, 1);
    char label[8];
    std::snprintf(label, sizeof(label), "%.1f", v);
    int baseline = 0;
    const cv::Size ts = cv::getTextSize(label, font, text_scale, 1, &baseline);
    cv::line(canvas, to_px(v, 0), to_px(v, 0) + cv::Point(0, 5), kBlack, 1);
    cv::putText(canvas, label, to_px(v, 0) + cv::Point(-ts.width / 2, 8 + ts.height), font, text_scale, kBlack, 1,
                cv::LINE_AA);
    cv::line(canvas, to_px(0, v), to_px(0, v) - cv::Point(5, 0), kBlack, 1);
    cv::putText(canvas, label, to_px(0, v) + cv::Point(-8 - ts.width, ts.height / 2), font, text_scale, kBlack, 1,
                cv::LINE_AA);
  }
  // Chance diagonal, dashed.
  constexpr int kDashes = 25;
  for (int k = 0; k < kDashes; ++k) {
    const double a = static_cast<double>(k) / kDashes, b = (k + 0.5) / kDashes;
    cv::line(canvas, to_px(a, a), to_px(b, b), kGray, 1, cv::LINE_AA);
  }
  // Axes.
  cv::rectangle(canvas, to_px(0, 1), to_px(1, 0), kBlack, 1);

  // Axis titles; the vertical one is drawn on its own strip and rotated.
  {
    const std::string x_title = "False positive rate (reals flagged)";
    int baseline = 0;
    const cv::Size ts = cv::getTextSize(x_title, font, text_scale * 1.1, 1, &baseline);
    cv::putText(canvas, x_title, cv::Point(left + (w - ts.width) / 2, size - bottom / 4), font, text_scale * 1.1,
                kBlack, 1, cv::LINE_AA);
    const std::string y_title = "True positive rate (fakes caught)";
    const cv::Size ys = cv::getTextSize(y_title, font, text_scale * 1.1, 1, &baseline);
    cv::Mat strip(ys.height + baseline + 4, ys.width + 4, CV_8UC3, cv::Scalar(255, 255, 255));
    cv::putText(strip, y_title, cv::Point(2, ys.height + 2), font, text_scale * 1.1, kBlack, 1, cv::LINE_AA);
    cv::Mat rotated;
    cv::rotate(strip, rotated, cv::ROTATE_90_COUNTERCLOCKWISE);
    const int x0 = 2, y0 = top + (h - rotated.rows) / 2;
    if (y0 >= 0 && y0 + rotated.rows <= size && x0 + rotated.cols <= left - 30) {
      rotated.copyTo(canvas(cv::Rect(x0, y0, rotated.cols, rotated.rows)));
    }
    const cv::Size tt = cv::getTextSize(title, font, text_scale * 1.3, 1, &baseline);
    cv::putText(canvas, title, cv::Point(std::max(2, (size - tt.width) / 2), top / 2 + tt.height / 2), font,
                text_scale * 1.3, kBlack, 1, cv::LINE_AA);
  }

  // Curves.
  for (size_t s = 0; s < series.size(); ++s) {
    std::vector<cv::Point> pts;
    for (const RocPoint& p : series[s].points) {
      pts.push_back(to_px(std::clamp(p.fpr, 0.0, 1.0), std::clamp(p.tpr, 0.0, 1.0)));
    }
    if (pts.size() >= 2) cv::polylines(canvas, pts, false, kColors[s % kColors.size()], 2, cv::LINE_AA);
  }
  // Legend, bottom right inside the plot, on a white box with a thin frame.
  const int line_h = static_cast<int>(std::lround(size / 25.0));
  {
    int widest = 0, baseline = 0;
    for (const RocSeries& rs : series) {
      widest = std::max(widest, cv::getTextSize(rs.name + " (AUC 0.000)", font, text_scale, 1, &baseline).width);
    }
    const int box_w = std::min(w - 4, widest + 44);
    const int box_h = static_cast<int>(series.size()) * line_h + 8;
    const cv::Rect box(left + w - box_w - 2, top + h - box_h - 2, box_w, box_h);
    cv::rectangle(canvas, box, cv::Scalar(255, 255, 255), cv::FILLED);
    cv::rectangle(canvas, box, kGray, 1);
  }
  for (size_t s = 0; s < series.size(); ++s) {
    char auc[32];
    std::snprintf(auc, sizeof(auc), " (AUC %.3f)", series[s].auc);
    const std::string text = series[s].name + auc;
    const int y = top + h - 10 - static_cast<int>(series.size() - 1 - s) * line_h;
    int baseline = 0;
    const cv::Size ts = cv::getTextSize(text, font, text_scale, 1, &baseline);
    const int x = std::max(left + 4, left + w - ts.width - 38);
    cv::line(canvas, cv::Point(x, y - ts.height / 2), cv::Point(x + 24, y - ts.height / 2), kColors[s % kColors.size()],
             3, cv::LINE_AA);
    cv::putText(canvas, text, cv::Point(x + 30, y), font, text_scale, kBlack, 1, cv::LINE_AA);
  }

  bool written = false;
  try {
    written = cv::imwrite(path, canvas);
  } catch (const cv::Exception& e) {
    return Status::IoError("WriteRocPlot: cannot write " + path + ": " + e.what());
  }
  if (!written) return Status::IoError("WriteRocPlot: cannot write " + path);
  return Status::Ok();
}

double PerClipAuc(const std::vector<float>& scores, const std::vector<int>& labels,
                  const std::vector<std::string>& sources) {
  std::map<std::pair<int, std::string>, std::pair<double, int>> clips;
  for (size_t i = 0; i < scores.size() && i < labels.size() && i < sources.size(); ++i) {
    auto& a = clips[{labels[i], sources[i]}];
    a.first += scores[i];
    ++a.second;
  }
  std::vector<float> clip_scores;
  std::vector<int> clip_labels;
  for (const auto& [key, acc] : clips) {
    clip_scores.push_back(static_cast<float>(acc.first / acc.second));
    clip_labels.push_back(key.first);
  }
  auto auc = RocAuc(clip_scores, clip_labels);
  return auc.ok() ? *auc : -1;
}

}  // namespace deepscan::train
