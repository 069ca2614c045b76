#include "pipeline/aggregate.h"

#include <gtest/gtest.h>

namespace deepscan::pipeline {
namespace {

FrameResult Frame(double ts, std::vector<float> face_scores) {
  FrameResult f;
  f.timestamp_s = ts;
  for (float s : face_scores) {
    FaceResult face;
    face.score = s;
    f.faces.push_back(face);
  }
  return f;
}

TEST(AggregateTest, FrameScoreIsMaxOverFacesVideoScoreIsMean) {
  VideoVerdict v;
  v.info.duration_s = 4;
  v.frames = {Frame(0, {0.1f, 0.9f}), Frame(1, {0.2f}), Frame(2, {}), Frame(3, {0.4f})};
  Aggregate({}, 0.6f, &v);
  EXPECT_EQ(v.status, VideoStatus::kOk);
  EXPECT_FLOAT_EQ(*v.frames[0].score, 0.9f);
  EXPECT_FALSE(v.frames[2].score.has_value());
  EXPECT_NEAR(*v.score, (0.9f + 0.2f + 0.4f) / 3, 1e-6);
  EXPECT_EQ(v.label, "real");
  EXPECT_EQ(v.aggregation, "mean");
  EXPECT_EQ(v.top_frames, (std::vector<int>{0, 3, 1}));
  ASSERT_EQ(v.segments.size(), 1u);
  EXPECT_DOUBLE_EQ(v.segments[0].start_s, 0);
  EXPECT_DOUBLE_EQ(v.segments[0].end_s, 1);
  EXPECT_FLOAT_EQ(v.segments[0].peak, 0.9f);
}

TEST(AggregateTest, ThresholdOptionOverridesTheModel) {
  VideoVerdict v;
  v.frames = {Frame(0, {0.3f}), Frame(1, {0.3f})};
  Aggregate({.threshold = 0.25f}, 0.5f, &v);
  EXPECT_EQ(v.label, "fake");
  EXPECT_FLOAT_EQ(v.threshold, 0.25f);
  Aggregate({}, 0.5f, &v);
  EXPECT_EQ(v.label, "real");
}

TEST(AggregateTest, NoFaceMeansNoScore) {
  VideoVerdict v;
  v.frames = {Frame(0, {}), Frame(1, {})};
  Aggregate({}, 0.5f, &v);
  EXPECT_EQ(v.status, VideoStatus::kNoFace);
  EXPECT_FALSE(v.score.has_value());
  EXPECT_TRUE(v.label.empty());
  EXPECT_TRUE(v.segments.empty());
}

TEST(AggregateTest, ConsecutiveFlaggedFramesMergeIntoOneSegment) {
  VideoVerdict v;
  v.info.duration_s = 10;
  v.frames = {Frame(0, {0.1f}), Frame(2, {0.8f}), Frame(4, {0.7f}), Frame(6, {0.1f}), Frame(8, {0.9f})};
  Aggregate({}, 0.5f, &v);
  ASSERT_EQ(v.segments.size(), 2u);
  EXPECT_DOUBLE_EQ(v.segments[0].start_s, 2);
  EXPECT_DOUBLE_EQ(v.segments[0].end_s, 6);
  EXPECT_FLOAT_EQ(v.segments[0].peak, 0.8f);
  EXPECT_DOUBLE_EQ(v.segments[1].start_s, 8);
  EXPECT_DOUBLE_EQ(v.segments[1].end_s, 10);  // the last frame stands until the end
}

TEST(ConfidentTest, MatchesTheReferenceRule) {
  // 20 frames, 12 above 0.8 (> 11 and > 20 / 2.5 = 8): mean of the confident ones.
  std::vector<float> s(12, 0.9f);
  s.insert(s.end(), 8, 0.1f);
  EXPECT_NEAR(ConfidentScore(s), 0.9f, 1e-6);
  // Only 11 confident frames: not enough; not 90% low either: plain mean.
  std::vector<float> t(11, 0.9f);
  t.insert(t.end(), 9, 0.1f);
  EXPECT_NEAR(ConfidentScore(t), (11 * 0.9f + 9 * 0.1f) / 20, 1e-6);
  // 19 of 20 below 0.2 (95% > 90%): mean of the low ones.
  std::vector<float> u(19, 0.1f);
  u.push_back(0.95f);
  EXPECT_NEAR(ConfidentScore(u), 0.1f, 1e-6);
  EXPECT_NEAR(MeanScore({0.2f, 0.4f}), 0.3f, 1e-6);
}

TEST(AggregateTest, ConfidentStrategyIsSelectable) {
  VideoVerdict v;
  for (int i = 0; i < 12; ++i) v.frames.push_back(Frame(i, {0.9f}));
  for (int i = 12; i < 20; ++i) v.frames.push_back(Frame(i, {0.1f}));
  Aggregate({.strategy = Aggregation::kConfident}, 0.5f, &v);
  EXPECT_EQ(v.aggregation, "confident");
  EXPECT_NEAR(*v.score, 0.9f, 1e-6);
}

}  // namespace
}  // namespace deepscan::pipeline
