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

// A frame whose faces are (track id, score) pairs.
FrameResult TrackedFrame(double ts, std::vector<std::pair<int, float>> faces) {
  FrameResult f;
  f.timestamp_s = ts;
  for (auto [id, s] : faces) {
    FaceResult face;
    face.track_id = id;
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

TEST(AggregateTest, IdentityVerdictsPerTrackMostSuspiciousFirst) {
  // Person 0 is real throughout; person 1 (a face swap) joins at 2 s; person 2 is seen once.
  VideoVerdict v;
  v.info.duration_s = 10;
  v.frames = {TrackedFrame(0, {{0, 0.1f}}), TrackedFrame(2, {{0, 0.2f}, {1, 0.9f}}),
              TrackedFrame(4, {{1, 0.8f}, {0, 0.1f}}), TrackedFrame(6, {{0, 0.3f}, {2, 0.4f}}),
              TrackedFrame(8, {{1, 0.7f}})};
  Aggregate({}, 0.5f, &v);
  ASSERT_EQ(v.identities.size(), 3u);
  const IdentityVerdict& fake = v.identities[0];
  EXPECT_EQ(fake.track_id, 1);
  EXPECT_EQ(fake.faces, 3);
  EXPECT_DOUBLE_EQ(fake.first_s, 2);
  EXPECT_DOUBLE_EQ(fake.last_s, 8);
  EXPECT_NEAR(*fake.score, (0.9f + 0.8f + 0.7f) / 3, 1e-6);
  EXPECT_EQ(fake.label, "fake");
  // 2-6 (frames at 2 and 4, until the next sampled frame), then 8 until the end; absent at 6.
  ASSERT_EQ(fake.segments.size(), 2u);
  EXPECT_DOUBLE_EQ(fake.segments[0].start_s, 2);
  EXPECT_DOUBLE_EQ(fake.segments[0].end_s, 6);
  EXPECT_FLOAT_EQ(fake.segments[0].peak, 0.9f);
  EXPECT_DOUBLE_EQ(fake.segments[1].start_s, 8);
  EXPECT_DOUBLE_EQ(fake.segments[1].end_s, 10);
  EXPECT_EQ(v.identities[1].track_id, 2);
  EXPECT_EQ(v.identities[1].faces, 1);
  EXPECT_DOUBLE_EQ(v.identities[1].first_s, 6);
  EXPECT_DOUBLE_EQ(v.identities[1].last_s, 6);
  EXPECT_EQ(v.identities[1].label, "real");
  EXPECT_TRUE(v.identities[1].segments.empty());
  const IdentityVerdict& real = v.identities[2];
  EXPECT_EQ(real.track_id, 0);
  EXPECT_EQ(real.faces, 4);
  EXPECT_DOUBLE_EQ(real.first_s, 0);
  EXPECT_DOUBLE_EQ(real.last_s, 6);
  EXPECT_NEAR(*real.score, (0.1f + 0.2f + 0.1f + 0.3f) / 4, 1e-6);
  EXPECT_EQ(real.label, "real");
  EXPECT_TRUE(real.segments.empty());
  // The video level is unchanged by tracking: frame = max over faces, video = mean.
  EXPECT_NEAR(*v.score, (0.1f + 0.9f + 0.8f + 0.4f + 0.7f) / 5, 1e-6);
  EXPECT_EQ(v.label, "fake");
}

TEST(AggregateTest, IdentityLabelUsesTheVerdictThresholdAndTiesKeepFirstAppearance) {
  VideoVerdict v;
  v.frames = {TrackedFrame(0, {{0, 0.3f}, {1, 0.3f}}), TrackedFrame(1, {{0, 0.3f}, {1, 0.3f}})};
  Aggregate({.threshold = 0.25f}, 0.5f, &v);
  ASSERT_EQ(v.identities.size(), 2u);
  EXPECT_EQ(v.identities[0].track_id, 0);
  EXPECT_EQ(v.identities[1].track_id, 1);
  EXPECT_EQ(v.identities[0].label, "fake");
  Aggregate({}, 0.5f, &v);  // again, with the model's threshold: replaced, not appended
  ASSERT_EQ(v.identities.size(), 2u);
  EXPECT_EQ(v.identities[0].label, "real");
}

TEST(AggregateTest, UntrackedFacesMakeNoIdentityAndNoFaceMakesNone) {
  VideoVerdict v;
  v.frames = {Frame(0, {0.9f}), Frame(1, {0.8f})};  // track_id -1
  Aggregate({}, 0.5f, &v);
  EXPECT_EQ(v.status, VideoStatus::kOk);
  EXPECT_TRUE(v.identities.empty());
  v.frames = {TrackedFrame(0, {{0, 0.9f}})};
  Aggregate({}, 0.5f, &v);
  EXPECT_EQ(v.identities.size(), 1u);
  v.frames = {Frame(0, {})};
  Aggregate({}, 0.5f, &v);
  EXPECT_EQ(v.status, VideoStatus::kNoFace);
  EXPECT_TRUE(v.identities.empty());
}

TEST(TopMeanTest, AveragesTheHighestShareAtLeastOne) {
  EXPECT_FLOAT_EQ(TopMeanScore({0.1f, 0.9f, 0.3f, 0.7f}, 0.5f), 0.8f);  // the top 2 of 4
  EXPECT_FLOAT_EQ(TopMeanScore({0.1f, 0.9f, 0.3f}, 0.25f), 0.9f);       // ceil(0.75) = 1
  EXPECT_FLOAT_EQ(TopMeanScore({0.1f, 0.9f, 0.3f}, 0.0f), 0.9f);        // at least one
  EXPECT_NEAR(TopMeanScore({0.1f, 0.9f, 0.3f}, 1.0f), (0.1f + 0.9f + 0.3f) / 3, 1e-6);
}

// A swap shown for a few frames of a long real video: the mean hides it, the top mean does not.
TEST(AggregateTest, TopMeanFindsABriefSwap) {
  VideoVerdict v;
  for (int i = 0; i < 20; ++i) v.frames.push_back(Frame(i, {i < 4 ? 0.95f : 0.1f}));
  AggregationOptions o;
  Aggregate(o, 0.6f, &v);
  EXPECT_EQ(v.label, "real");
  o.strategy = Aggregation::kTopMean;
  o.top_fraction = 0.2f;
  Aggregate(o, 0.6f, &v);
  EXPECT_EQ(v.aggregation, "top");
  EXPECT_FLOAT_EQ(*v.score, 0.95f);
  EXPECT_EQ(v.label, "fake");
}

// One swapped person among real ones: the frame mean is diluted by the real ones only through
// frames where the swapped face is absent; identity-max takes the most suspicious person.
TEST(AggregateTest, IdentityMaxTakesTheMostSuspiciousPerson) {
  VideoVerdict v;
  for (int i = 0; i < 10; ++i) {
    std::vector<std::pair<int, float>> faces = {{1, 0.2f}};
    if (i < 3) faces.push_back({2, 0.9f});  // person 2 is on screen for 3 frames only
    v.frames.push_back(TrackedFrame(i, faces));
  }
  AggregationOptions o;
  o.strategy = Aggregation::kIdentityMax;
  Aggregate(o, 0.6f, &v);
  EXPECT_EQ(v.aggregation, "identity-max");
  EXPECT_FLOAT_EQ(*v.score, 0.9f);
  EXPECT_EQ(v.label, "fake");
  o.strategy = Aggregation::kMean;
  Aggregate(o, 0.6f, &v);
  EXPECT_NEAR(*v.score, (3 * 0.9f + 7 * 0.2f) / 10, 1e-6);
  EXPECT_EQ(v.label, "real");
  // Untracked faces count as one more person; a video of untracked faces only gets their mean.
  VideoVerdict u;
  u.frames = {Frame(0, {0.3f}), Frame(1, {0.5f})};
  o.strategy = Aggregation::kIdentityMax;
  Aggregate(o, 0.6f, &u);
  EXPECT_FLOAT_EQ(*u.score, 0.4f);
  EXPECT_STREQ(AggregationName(Aggregation::kIdentityMax), "identity-max");
}

}  // namespace
}  // namespace deepscan::pipeline
