#include "track/tracker.h"

#include <algorithm>
#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "track/assignment.h"

namespace deepscan::track {
namespace {

constexpr double kStep = 0.3;  // seconds between sampled frames (32 frames over a 10 s clip)

// A frontal face of side `size` centred at (cx, cy), with BlazeFace-like keypoints.
face::Detection Face(float cx, float cy, float size = 100) {
  face::Detection d;
  d.box = {cx - size / 2, cy - size / 2, size, size};
  d.score = 0.9f;
  const float s = size;
  d.keypoints = {{{cx - 0.2f * s, cy - 0.15f * s},
                  {cx + 0.2f * s, cy - 0.15f * s},
                  {cx, cy},
                  {cx, cy + 0.25f * s},
                  {cx - 0.45f * s, cy},
                  {cx + 0.45f * s, cy}}};
  return d;
}

float CentreX(const Box& b) { return b.x + b.w / 2; }

TEST(AssignmentTest, BeatsGreedy) {
  // Greedy takes the cheapest pair (0,0) and is left with (1,1) = 100; the optimum crosses.
  const std::vector<double> cost = {1, 2, 2, 100};
  EXPECT_EQ(SolveAssignment(cost, 2, 2), (std::vector<int>{1, 0}));
}

TEST(AssignmentTest, NeverReturnsForbiddenPairsAndPrefersMorePairs) {
  // Row 0 could take column 0 cheaply, but then row 1 (only column 0 allowed) would stay alone.
  const std::vector<double> cost = {0.1, 1.5, 1.4, kForbidden};
  EXPECT_EQ(SolveAssignment(cost, 2, 2), (std::vector<int>{1, 0}));
  const std::vector<double> none = {kForbidden, kForbidden};
  EXPECT_EQ(SolveAssignment(none, 1, 2), (std::vector<int>{-1}));
  EXPECT_EQ(SolveAssignment(none, 2, 1), (std::vector<int>{-1, -1}));
  EXPECT_TRUE(SolveAssignment({}, 0, 3).empty());
  EXPECT_EQ(SolveAssignment({}, 2, 0), (std::vector<int>{-1, -1}));
}

// Exhaustive search: the most allowed pairs, then the least cost.
std::pair<int, double> Best(const std::vector<double>& cost, int rows, int cols) {
  std::vector<int> perm(std::max(rows, cols));
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int>(i);
  std::pair<int, double> best{-1, 0};
  do {
    int pairs = 0;
    double sum = 0;
    for (int r = 0; r < rows; ++r) {
      const int c = perm[r];
      if (c >= cols || !std::isfinite(cost[r * cols + c])) continue;
      ++pairs;
      sum += cost[r * cols + c];
    }
    if (pairs > best.first || (pairs == best.first && sum < best.second - 1e-12)) best = {pairs, sum};
  } while (std::next_permutation(perm.begin(), perm.end()));
  return best;
}

TEST(AssignmentTest, MatchesExhaustiveSearchOnRandomMatrices) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> value(0, 3);
  std::uniform_int_distribution<int> side(1, 6);
  for (int trial = 0; trial < 300; ++trial) {
    const int rows = side(rng), cols = side(rng);
    std::vector<double> cost(rows * cols);
    for (double& c : cost) c = value(rng) < 0.8 ? kForbidden : value(rng);
    const std::vector<int> got = SolveAssignment(cost, rows, cols);
    ASSERT_EQ(got.size(), static_cast<size_t>(rows));
    int pairs = 0;
    double sum = 0;
    std::vector<bool> used(cols, false);
    for (int r = 0; r < rows; ++r) {
      if (got[r] < 0) continue;
      ASSERT_LT(got[r], cols);
      ASSERT_FALSE(used[got[r]]) << "column used twice";
      used[got[r]] = true;
      ASSERT_TRUE(std::isfinite(cost[r * cols + got[r]])) << "forbidden pair returned";
      ++pairs;
      sum += cost[r * cols + got[r]];
    }
    const auto [best_pairs, best_sum] = Best(cost, rows, cols);
    EXPECT_EQ(pairs, best_pairs) << "trial " << trial;
    EXPECT_NEAR(sum, best_sum, 1e-9) << "trial " << trial;
  }
}

TEST(TrackerTest, NoFaceThenOneFace) {
  FaceTracker t({});
  EXPECT_TRUE(t.Update(0, {}).empty());
  EXPECT_TRUE(t.Predict(0.3).empty());
  EXPECT_EQ(t.Update(kStep, {Face(400, 300)}), (std::vector<int>{0}));
  EXPECT_EQ(t.tracks_started(), 1);
}

TEST(TrackerTest, OneJitteringFaceKeepsItsIdOverAClip) {
  FaceTracker t({});
  std::mt19937 rng(1);
  std::normal_distribution<float> jitter(0, 4);
  for (int k = 0; k < 32; ++k) {
    face::Detection d = Face(640 + jitter(rng), 360 + jitter(rng), 120 + jitter(rng));
    ASSERT_EQ(t.Update(k * kStep, {d}), (std::vector<int>{0})) << "frame " << k;
  }
  EXPECT_EQ(t.tracks_started(), 1);
}

TEST(TrackerTest, ManyStillFacesKeepTheirIdsWhateverTheDetectionOrder) {
  FaceTracker t({});
  std::vector<face::Detection> faces;
  for (int i = 0; i < 6; ++i) faces.push_back(Face(100 + 180 * i, 300, 90));
  // First frame: ids in detection order.
  EXPECT_EQ(t.Update(0, faces), (std::vector<int>{0, 1, 2, 3, 4, 5}));
  std::mt19937 rng(3);
  for (int k = 1; k < 10; ++k) {
    std::vector<int> order = {0, 1, 2, 3, 4, 5};
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<face::Detection> shuffled;
    for (int i : order) shuffled.push_back(faces[i]);
    const std::vector<int> ids = t.Update(k * kStep, shuffled);
    for (size_t j = 0; j < order.size(); ++j) EXPECT_EQ(ids[j], order[j]) << "frame " << k;
  }
  EXPECT_EQ(t.tracks_started(), 6);
}

TEST(TrackerTest, TwoFacesCrossingPathsKeepTheirIds) {
  // A walks right, B walks left, 40 px apart vertically, 75 px per sampled frame (250 px/s):
  // they pass each other between frames 2 and 3.
  FaceTracker t({});
  auto a_at = [](int k) { return Face(300 + 75.0f * k, 300); };
  auto b_at = [](int k) { return Face(640 - 75.0f * k, 340); };
  for (int k = 0; k < 8; ++k) {
    // Detections listed B first on odd frames, so order cannot carry the identity.
    std::vector<face::Detection> dets = k % 2 ? std::vector{b_at(k), a_at(k)} : std::vector{a_at(k), b_at(k)};
    const std::vector<int> ids = t.Update(k * kStep, dets);
    const std::vector<int> expected = k % 2 ? std::vector{1, 0} : std::vector{0, 1};
    EXPECT_EQ(ids, expected) << "frame " << k;
  }
  // The test is meaningful: right after the crossing, A's new box is nearer B's last box than
  // its own, so matching by distance to the last position would have swapped them.
  auto dist = [](const face::Detection& x, const face::Detection& y) {
    return std::hypot(CentreX(x.box) - CentreX(y.box), x.box.y - y.box.y);
  };
  EXPECT_LT(dist(b_at(3), a_at(2)), dist(a_at(3), a_at(2)));
  EXPECT_EQ(t.tracks_started(), 2);
}

TEST(TrackerTest, FaceMissingForTwoSampledFramesComesBackWithItsId) {
  FaceTracker t({.min_iou = 0.2f, .max_gap = 4});
  int k = 0;
  for (; k < 4; ++k) ASSERT_EQ(t.Update(k * kStep, {Face(400, 300)}), (std::vector<int>{0}));
  for (int gap = 0; gap < 2; ++gap, ++k) EXPECT_TRUE(t.Update(k * kStep, {}).empty());
  ASSERT_EQ(t.Predict(k * kStep).size(), 1u);
  EXPECT_EQ(t.Predict(k * kStep)[0].missed, 2);
  EXPECT_EQ(t.Update(k * kStep, {Face(410, 305)}), (std::vector<int>{0}));
  EXPECT_EQ(t.tracks_started(), 1);
}

TEST(TrackerTest, MovingFaceMissingForTwoFramesIsFoundNearItsPrediction) {
  // 120 px per sampled frame: after two missed frames it is 360 px (3.6 face sizes) from where it
  // was last seen, outside the distance gate (1 + 2 x 0.5 face sizes), but close to the prediction.
  FaceTracker t({.min_iou = 0.2f, .max_gap = 4});
  int k = 0;
  for (; k < 4; ++k) ASSERT_EQ(t.Update(k * kStep, {Face(100 + 120.0f * k, 300)}), (std::vector<int>{0}));
  for (int gap = 0; gap < 2; ++gap, ++k) t.Update(k * kStep, {});
  const std::vector<TrackPrediction> p = t.Predict(k * kStep);
  ASSERT_EQ(p.size(), 1u);
  const float truth = 100 + 120.0f * k, last = 100 + 120.0f * 3;
  EXPECT_GT(CentreX(p[0].box), last + 150) << "the prediction moves on";
  EXPECT_LT(CentreX(p[0].box), truth) << "damped: not beyond constant velocity";
  EXPECT_EQ(t.Update(k * kStep, {Face(truth, 300)}), (std::vector<int>{0}));
}

TEST(TrackerTest, FaceGoneLongerThanMaxGapGetsANewId) {
  FaceTracker t({.min_iou = 0.2f, .max_gap = 4});
  int k = 0;
  for (; k < 3; ++k) t.Update(k * kStep, {Face(400, 300)});
  for (int gap = 0; gap < 5; ++gap, ++k) t.Update(k * kStep, {});
  EXPECT_EQ(t.live_tracks(), 0);
  EXPECT_EQ(t.Update(k * kStep, {Face(400, 300)}), (std::vector<int>{1}));
  // With max_gap 5 the same story keeps the id.
  FaceTracker u({.min_iou = 0.2f, .max_gap = 5});
  k = 0;
  for (; k < 3; ++k) u.Update(k * kStep, {Face(400, 300)});
  for (int gap = 0; gap < 5; ++gap, ++k) u.Update(k * kStep, {});
  EXPECT_EQ(u.Update(k * kStep, {Face(400, 300)}), (std::vector<int>{0}));
}

TEST(TrackerTest, FarAwayNewFaceNeverTakesAnExistingId) {
  FaceTracker t({});
  t.Update(0, {Face(200, 200)});
  t.Update(kStep, {Face(200, 200)});
  // A leaves and, in the same frame, someone appears across the room: a new person.
  EXPECT_EQ(t.Update(2 * kStep, {Face(1000, 600)}), (std::vector<int>{1}));
  // A comes back; both are there.
  EXPECT_EQ(t.Update(3 * kStep, {Face(1000, 600), Face(205, 200)}), (std::vector<int>{1, 0}));
  // A third face appears beside A, two face sizes away: not A.
  EXPECT_EQ(t.Update(4 * kStep, {Face(205, 200), Face(405, 200), Face(1000, 600)}), (std::vector<int>{0, 2, 1}));
}

TEST(TrackerTest, TwoDetectionsNeverMergeIntoOneTrack) {
  FaceTracker t({});
  t.Update(0, {Face(400, 300)});
  // Two faces close to the one track: one takes it (the closer), the other is new.
  EXPECT_EQ(t.Update(kStep, {Face(440, 300), Face(405, 300)}), (std::vector<int>{1, 0}));
}

TEST(TrackerTest, ScaleGateSeparatesFacesOfDifferentSizes) {
  {
    FaceTracker t({});
    t.Update(0, {Face(400, 300, 100)});
    // Same centre, twice the size (a person stepping in front of another): a new person, even
    // though the boxes overlap well beyond min_iou (IoU 0.25).
    EXPECT_EQ(t.Update(kStep, {Face(400, 300, 200)}), (std::vector<int>{1}));
  }
  {
    FaceTracker t({});
    t.Update(0, {Face(400, 300, 100)});
    EXPECT_EQ(t.Update(kStep, {Face(400, 300, 130)}), (std::vector<int>{0})) << "1.3x is a head moving closer";
  }
}

TEST(TrackerTest, EmptyBoxIsNotTracked) {
  FaceTracker t({});
  face::Detection empty;
  EXPECT_EQ(t.Update(0, {empty, Face(400, 300)}), (std::vector<int>{-1, 0}));
  EXPECT_EQ(t.tracks_started(), 1);
}

TEST(TrackerTest, PredictionFollowsMotionAndSizeAndChangesNothing) {
  FaceTracker t({});
  // Moving right at 200 px/s and growing 10% per sampled frame.
  for (int k = 0; k < 4; ++k) t.Update(k * kStep, {Face(300 + 60.0f * k, 300, 100 * std::pow(1.1f, k))});
  const std::vector<TrackPrediction> p = t.Predict(4 * kStep);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].track_id, 0);
  EXPECT_EQ(p[0].missed, 0);
  EXPECT_GT(CentreX(p[0].box), 300 + 60.0f * 3 + 40);  // moved on by most of a step
  EXPECT_LE(CentreX(p[0].box), 300 + 60.0f * 4 + 0.5f);
  EXPECT_GT(p[0].box.w, 100 * std::pow(1.1f, 3) * 1.05f);  // grew
  EXPECT_NEAR(p[0].keypoints[2].x, CentreX(p[0].box), 0.5f) << "keypoints move with the box";
  // Predict is const: asking again gives the same, and the next update still matches.
  EXPECT_FLOAT_EQ(t.Predict(4 * kStep)[0].box.x, p[0].box.x);
  EXPECT_EQ(t.Update(4 * kStep, {Face(300 + 60.0f * 4, 300, 100 * std::pow(1.1f, 4))}), (std::vector<int>{0}));
}

// A scene with several people walking, entering, leaving and blinking out of detection.
std::vector<std::vector<int>> RunScene(unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0, 1);
  struct Walker {
    float x, y, vx, size;
    int enter, leave;
  };
  std::vector<Walker> people;
  for (int i = 0; i < 5; ++i) {
    people.push_back({150 + 250.0f * i, 120 + 110.0f * i, (u(rng) - 0.5f) * 60, 80 + 40 * u(rng),
                      static_cast<int>(u(rng) * 10), 20 + static_cast<int>(u(rng) * 12)});
  }
  FaceTracker t({});
  std::vector<std::vector<int>> ids;
  for (int k = 0; k < 32; ++k) {
    std::vector<face::Detection> dets;
    for (const Walker& w : people) {
      if (k < w.enter || k > w.leave || u(rng) < 0.1f) continue;  // absent, or missed by the detector
      dets.push_back(Face(w.x + w.vx * k * static_cast<float>(kStep), w.y, w.size));
    }
    ids.push_back(t.Update(k * kStep, dets));
  }
  return ids;
}

TEST(TrackerTest, DeterministicAndNumberedInOrderOfFirstAppearance) {
  for (unsigned seed : {1u, 2u, 3u}) {
    const auto first = RunScene(seed), second = RunScene(seed);
    EXPECT_EQ(first, second);
    int next = 0;
    for (const auto& frame : first) {
      for (int id : frame) {
        ASSERT_GE(id, 0);
        ASSERT_LE(id, next) << "a new id is always the next number";
        if (id == next) ++next;
      }
    }
    EXPECT_EQ(next, 5) << "five people, seed " << seed;  // nobody lost their id for a blink
  }
}

}  // namespace
}  // namespace deepscan::track
