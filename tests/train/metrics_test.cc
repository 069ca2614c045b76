// Tests for train/metrics against values computed by hand.
#include "train/calibrate.h"
#include "train/metrics.h"

#include <cmath>
#include <filesystem>
#include <random>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "test_env.h"

namespace deepscan::train {
namespace {

// Labels 1 = fake. Scores: fakes {0.4, 0.7, 0.8, 0.9}, reals {0.1, 0.2, 0.3, 0.6}.
const std::vector<float> kScores = {0.1f, 0.4f, 0.2f, 0.7f, 0.3f, 0.8f, 0.6f, 0.9f};
const std::vector<int> kLabels = {0, 1, 0, 1, 0, 1, 0, 1};

TEST(RocAuc, HandComputedWithTies) {
  // Fakes {0.5, 0.5}, reals {0.5, 0.2}: pairs (0.5 vs 0.5) count 1/2 twice, (0.5 vs 0.2) 1 twice:
  // (0.5 + 0.5 + 1 + 1) / 4 = 0.75. Ranks: 0.2 -> 1, the three 0.5 -> 3; U = 6 - 3 = 3; 3/4.
  const std::vector<float> s = {0.5f, 0.5f, 0.5f, 0.2f};
  const std::vector<int> l = {1, 1, 0, 0};
  ASSERT_TRUE(RocAuc(s, l).ok());
  EXPECT_DOUBLE_EQ(*RocAuc(s, l), 0.75);
  // The fixture: 15 of 16 pairs ordered (only 0.6 real > 0.4 fake).
  EXPECT_DOUBLE_EQ(*RocAuc(kScores, kLabels), 15.0 / 16.0);
}

TEST(RocAuc, PerfectInvertedAndAllTied) {
  const std::vector<float> s = {0.1f, 0.2f, 0.8f, 0.9f};
  EXPECT_DOUBLE_EQ(*RocAuc(s, std::vector<int>{0, 0, 1, 1}), 1.0);
  EXPECT_DOUBLE_EQ(*RocAuc(s, std::vector<int>{1, 1, 0, 0}), 0.0);
  EXPECT_DOUBLE_EQ(*RocAuc(std::vector<float>{3, 3, 3}, std::vector<int>{1, 0, 1}), 0.5);
}

TEST(RocAuc, RejectsBadInput) {
  EXPECT_EQ(RocAuc(std::vector<float>{0.1f, 0.2f}, std::vector<int>{1, 1}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(RocAuc(std::vector<float>{0.1f}, std::vector<int>{1, 0}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(RocAuc(std::vector<float>{0.1f, 0.2f}, std::vector<int>{1, 2}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(RocAuc(std::vector<float>{NAN, 0.2f}, std::vector<int>{1, 0}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(RocAuc(std::vector<float>{}, std::vector<int>{}).status().code(), Code::kInvalidArgument);
}

TEST(RocCurve, PointsAndAreaMatchAuc) {
  auto curve = RocCurve(kScores, kLabels);
  ASSERT_TRUE(curve.ok());
  // Thresholds 0.9 0.8 0.7 0.6 0.4 0.3 0.2 0.1, after the (0, 0) start.
  const std::vector<std::pair<double, double>> expected = {{0, 0},    {0, 0.25}, {0, 0.5},  {0, 0.75}, {0.25, 0.75},
                                                           {0.25, 1}, {0.5, 1},  {0.75, 1}, {1, 1}};
  ASSERT_EQ(curve->size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_DOUBLE_EQ((*curve)[i].fpr, expected[i].first) << i;
    EXPECT_DOUBLE_EQ((*curve)[i].tpr, expected[i].second) << i;
  }
  EXPECT_TRUE(std::isinf((*curve)[0].threshold));
  EXPECT_FLOAT_EQ((*curve)[4].threshold, 0.6f);

  // Random scores with many ties: trapezoid area == Mann-Whitney AUC.
  std::mt19937 rng(3);
  std::vector<float> s(500);
  std::vector<int> l(500);
  for (size_t i = 0; i < s.size(); ++i) {
    l[i] = rng() % 2;
    s[i] = static_cast<float>(rng() % 20) + 3.0f * l[i] * (rng() % 2);
  }
  auto c = RocCurve(s, l);
  ASSERT_TRUE(c.ok());
  double area = 0;
  for (size_t i = 1; i < c->size(); ++i) {
    area += ((*c)[i].fpr - (*c)[i - 1].fpr) * ((*c)[i].tpr + (*c)[i - 1].tpr) / 2;
  }
  EXPECT_NEAR(area, *RocAuc(s, l), 1e-12);
  EXPECT_GT(area, 0.55);
}

TEST(Eer, KnownSets) {
  // At threshold 0.6: one real of four flagged (FPR 0.25), one fake of four missed (FNR 0.25).
  auto e = Eer(kScores, kLabels);
  ASSERT_TRUE(e.ok());
  EXPECT_DOUBLE_EQ(e->eer, 0.25);
  EXPECT_FLOAT_EQ(static_cast<float>(e->threshold), 0.6f);
  // One fake and one real, tied: the only segment runs from (0, 0) to (1, 1); EER 0.5.
  auto tied = Eer(std::vector<float>{0.5f, 0.5f}, std::vector<int>{1, 0});
  ASSERT_TRUE(tied.ok());
  EXPECT_DOUBLE_EQ(tied->eer, 0.5);
  EXPECT_FLOAT_EQ(static_cast<float>(tied->threshold), 0.5f);
  // Perfect separation: EER 0 at the lowest fake score.
  auto perfect = Eer(std::vector<float>{0.1f, 0.2f, 0.8f, 0.9f}, std::vector<int>{0, 0, 1, 1});
  ASSERT_TRUE(perfect.ok());
  EXPECT_DOUBLE_EQ(perfect->eer, 0.0);
  EXPECT_FLOAT_EQ(static_cast<float>(perfect->threshold), 0.8f);
}

TEST(Confusion, AtAThreshold) {
  auto m = Confusion(kScores, kLabels, 0.5);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->tp, 3);  // 0.7 0.8 0.9
  EXPECT_EQ(m->fn, 1);  // 0.4
  EXPECT_EQ(m->fp, 1);  // 0.6
  EXPECT_EQ(m->tn, 3);
  EXPECT_DOUBLE_EQ(m->tpr(), 0.75);
  EXPECT_DOUBLE_EQ(m->fpr(), 0.25);
  EXPECT_DOUBLE_EQ(m->precision(), 0.75);
  EXPECT_DOUBLE_EQ(*Accuracy(kScores, kLabels, 0.5), 0.75);
  // score >= threshold is fake: at exactly 0.4 the 0.4 fake is caught.
  EXPECT_DOUBLE_EQ(*Accuracy(kScores, kLabels, 0.4f), 7.0 / 8.0);
  EXPECT_DOUBLE_EQ(*Accuracy(kScores, kLabels, 2.0), 0.5);
  // One class only is fine here.
  EXPECT_TRUE(Confusion(std::vector<float>{0.2f}, std::vector<int>{0}, 0.5).ok());
}

TEST(LogLoss, KnownProbabilitiesAndClipping) {
  // -(ln 0.9 + ln 0.8) / 2
  auto l = LogLoss(std::vector<float>{0.9f, 0.2f}, std::vector<int>{1, 0});
  ASSERT_TRUE(l.ok());
  EXPECT_NEAR(*l, 0.1642520335, 1e-7);
  // Certain and wrong: clipped to -ln(1e-7) = 16.118..., not infinite.
  EXPECT_NEAR(*LogLoss(std::vector<float>{0.0f, 1.0f}, std::vector<int>{1, 0}), -std::log(1e-7), 1e-6);
  EXPECT_NEAR(*LogLoss(std::vector<float>{0.0f}, std::vector<int>{1}, 1e-3), -std::log(1e-3), 1e-9);
  EXPECT_NEAR(*LogLoss(std::vector<float>{0.5f}, std::vector<int>{0}), std::log(2.0), 1e-9);
}

TEST(Calibration, PlattRecoversKnownParameters) {
  constexpr double kA = 1.7, kB = -0.4;
  std::mt19937 rng(17);
  std::normal_distribution<double> z_dist(0.0, 2.0);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<float> z(20000);
  std::vector<int> y(z.size());
  for (size_t i = 0; i < z.size(); ++i) {
    z[i] = static_cast<float>(z_dist(rng));
    y[i] = u(rng) < 1.0 / (1.0 + std::exp(-(kA * z[i] + kB))) ? 1 : 0;
  }
  auto fit = FitPlatt(z, y);
  ASSERT_TRUE(fit.ok()) << fit.status().ToString();
  EXPECT_NEAR(fit->a, kA, 0.1);
  EXPECT_NEAR(fit->b, kB, 0.08);
  EXPECT_NEAR(fit->Probability(0.0), 1.0 / (1.0 + std::exp(-fit->b)), 1e-12);
  // Calibrated probabilities lower the log loss against the raw sigmoid(z).
  std::vector<float> raw(z.size()), calibrated(z.size());
  for (size_t i = 0; i < z.size(); ++i) {
    raw[i] = static_cast<float>(1.0 / (1.0 + std::exp(-z[i])));
    calibrated[i] = static_cast<float>(fit->Probability(z[i]));
  }
  EXPECT_LT(*LogLoss(calibrated, y), *LogLoss(raw, y) - 0.01);
}

TEST(Calibration, TemperatureRecoversKnownScale) {
  constexpr double kA = 0.5;  // temperature 2: the raw logits are over-confident
  std::mt19937 rng(23);
  std::normal_distribution<double> z_dist(0.0, 4.0);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<float> z(20000);
  std::vector<int> y(z.size());
  for (size_t i = 0; i < z.size(); ++i) {
    z[i] = static_cast<float>(z_dist(rng));
    y[i] = u(rng) < 1.0 / (1.0 + std::exp(-kA * z[i])) ? 1 : 0;
  }
  auto fit = FitTemperature(z, y);
  ASSERT_TRUE(fit.ok());
  EXPECT_NEAR(fit->a, kA, 0.04);
  EXPECT_EQ(fit->b, 0.0);
}

TEST(Calibration, SeparableDataStaysFinite) {
  const std::vector<float> z = {-3, -2, -1, 1, 2, 3};
  const std::vector<int> y = {0, 0, 0, 1, 1, 1};
  auto fit = FitPlatt(z, y);
  ASSERT_TRUE(fit.ok());
  EXPECT_TRUE(std::isfinite(fit->a));
  EXPECT_GT(fit->a, 0.5);
  EXPECT_LT(fit->a, 50.0);
  EXPECT_GT(fit->Probability(3), 0.7);
  EXPECT_LT(fit->Probability(-3), 0.3);
  EXPECT_NEAR(Logit(0.5), 0.0, 1e-12);
  EXPECT_NEAR(Logit(1.0), std::log((1 - 1e-7) / 1e-7), 1e-6);
  EXPECT_EQ(FitPlatt(std::vector<float>{1, 2}, std::vector<int>{1, 1}).status().code(), Code::kInvalidArgument);
}

TEST(RocPlot, WritesANonEmptyPng) {
  std::vector<RocSeries> series;
  RocSeries a{"pseudo-fakes, unseen identities", *RocCurve(kScores, kLabels), *RocAuc(kScores, kLabels)};
  series.push_back(a);
  std::mt19937 rng(5);
  std::vector<float> s(200);
  std::vector<int> l(200);
  for (size_t i = 0; i < s.size(); ++i) {
    l[i] = static_cast<int>(i % 2);
    s[i] = static_cast<float>(std::normal_distribution<double>(l[i] ? 1.0 : 0.0, 1.0)(rng));
  }
  series.push_back({"reals vs SadTalker", *RocCurve(s, l), *RocAuc(s, l)});
  const std::string path = testing::TempDir() + "/roc.png";
  const Status st = WriteRocPlot(series, "validation ROC", path);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_TRUE(std::filesystem::exists(path));
  EXPECT_GT(std::filesystem::file_size(path), 2000u);
  const cv::Mat img = cv::imread(path, cv::IMREAD_COLOR);
  ASSERT_EQ(img.size(), cv::Size(512, 512));
  // The first curve's colour (BGR 200, 90, 20) is on the canvas; most of the canvas is white.
  int curve_pixels = 0, white = 0;
  for (int y = 0; y < img.rows; ++y) {
    for (int x = 0; x < img.cols; ++x) {
      const cv::Vec3b v = img.at<cv::Vec3b>(y, x);
      curve_pixels += v == cv::Vec3b(200, 90, 20);
      white += v == cv::Vec3b(255, 255, 255);
    }
  }
  EXPECT_GT(curve_pixels, 200);
  EXPECT_GT(white, img.rows * img.cols / 2);

  EXPECT_EQ(WriteRocPlot({}, "x", path).code(), Code::kInvalidArgument);
  EXPECT_EQ(WriteRocPlot(series, "x", "/nonexistent-dir/roc.png").code(), Code::kIoError);
}

}  // namespace
// The dev-set threshold: the quantile of the scored real videos, and the rates it gives.
TEST(VideoThresholdTest, QuantileOfRealVideosAndItsRates) {
  EvalReport r;
  for (int i = 0; i < 10; ++i) r.items.push_back({"real" + std::to_string(i), 0, VideoStatus::kOk, 0.1f * i + 0.05f});
  for (int i = 0; i < 4; ++i) r.items.push_back({"fake" + std::to_string(i), 1, VideoStatus::kOk, 0.6f + 0.12f * i});
  r.items.push_back({"noface", 0, VideoStatus::kNoFace, -1});  // not scored: left out
  auto t = ThresholdFromVideos(r, 0.9);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_NEAR(t->threshold, 0.95, 1e-6);  // 1 of 10 reals may be flagged: the highest, 0.95
  EXPECT_EQ(t->reals, 10);
  EXPECT_EQ(t->fakes, 4);
  EXPECT_NEAR(t->false_alarm_rate, 0.1, 1e-9);
  EXPECT_NEAR(t->detection_rate, 0.25, 1e-9);  // of 0.6, 0.72, 0.84, 0.96 only 0.96 is at or above
  auto none = ThresholdFromVideos(r, 0.95);     // floor(0.5) = 0 may be flagged: above the highest real
  ASSERT_TRUE(none.ok());
  EXPECT_GT(none->threshold, 0.95);
  EXPECT_EQ(none->false_alarm_rate, 0.0);
  EXPECT_FALSE(ThresholdFromVideos(r, 1.0).ok());
  EvalReport fakes_only;
  fakes_only.items.push_back({"f", 1, VideoStatus::kOk, 0.7f});
  EXPECT_EQ(ThresholdFromVideos(fakes_only, 0.9).status().code(), Code::kInvalidArgument);
}

}  // namespace deepscan::train
