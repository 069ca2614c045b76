#include "track/tracker.h"

#include <algorithm>
#include <cmath>

#include "track/assignment.h"

namespace deepscan::track {
namespace {

constexpr int kStableKeypoints = 4;  // eyes, nose tip, mouth; ears vanish in profile

Point Centre(const Box& b) { return {b.x + b.w / 2, b.y + b.h / 2}; }
float Size(const Box& b) { return b.w > 0 && b.h > 0 ? std::sqrt(b.w * b.h) : 0.0f; }
float Distance(const Point& a, const Point& b) { return std::hypot(a.x - b.x, a.y - b.y); }

bool HasKeypoints(const std::array<Point, 6>& k) {
  return std::any_of(k.begin(), k.end(), [](const Point& p) { return p.x != 0 || p.y != 0; });
}

// How far a velocity carries over `dt` seconds when it decays with time constant kDampingS.
double DampedTime(double dt) { return dt > 0 ? kDampingS * (1.0 - std::exp(-dt / kDampingS)) : 0.0; }

}  // namespace

TrackPrediction FaceTracker::PredictTrack(const Track& t, double timestamp_s) {
  TrackPrediction p;
  p.track_id = t.id;
  p.missed = t.missed;
  const double k = t.has_velocity ? DampedTime(timestamp_s - t.time_s) : 0.0;
  const Point c = Centre(t.box);
  const Point nc = {static_cast<float>(c.x + t.vx * k), static_cast<float>(c.y + t.vy * k)};
  const float scale = static_cast<float>(std::exp(t.vs * k));
  p.box = {nc.x - t.box.w * scale / 2, nc.y - t.box.h * scale / 2, t.box.w * scale, t.box.h * scale};
  for (size_t i = 0; i < t.keypoints.size(); ++i) {
    p.keypoints[i] = {nc.x + (t.keypoints[i].x - c.x) * scale, nc.y + (t.keypoints[i].y - c.y) * scale};
  }
  return p;
}

std::vector<TrackPrediction> FaceTracker::Predict(double timestamp_s) const {
  std::vector<TrackPrediction> out;
  out.reserve(tracks_.size());
  for (const Track& t : tracks_) out.push_back(PredictTrack(t, timestamp_s));
  return out;
}

double FaceTracker::Cost(const Track& t, const TrackPrediction& p, const face::Detection& d) const {
  // Against the prediction; for a track that missed frames, also against where it was last seen
  // (a face that stopped and came back), whichever fits better.
  const bool detection_has_keypoints = HasKeypoints(d.keypoints);
  const float gate = kMaxDistance + kGapAllowance * static_cast<float>(t.missed + (t.has_velocity ? 0 : 1));
  auto cost_against = [&](const Box& box, const std::array<Point, 6>& keypoints) {
    const float sd = Size(d.box), st = Size(box);
    if (sd <= 0 || st <= 0 || std::max(sd, st) > kMaxScaleRatio * std::min(sd, st)) return kForbidden;
    const float s = (sd + st) / 2;
    float dist = Distance(Centre(d.box), Centre(box)) / s;
    if (detection_has_keypoints && t.has_keypoints) {
      float k = 0;
      for (int i = 0; i < kStableKeypoints; ++i) k += Distance(d.keypoints[i], keypoints[i]);
      dist = (dist + k / kStableKeypoints / s) / 2;
    }
    const float iou = face::IoU(d.box, box);
    if (iou < options_.min_iou && dist > gate) return kForbidden;
    return static_cast<double>(1.0f - iou + dist);
  };
  double c = cost_against(p.box, p.keypoints);
  if (t.missed > 0) c = std::min(c, cost_against(t.box, t.keypoints));
  return c;
}

std::vector<int> FaceTracker::Update(double timestamp_s, const std::vector<face::Detection>& detections) {
  if (started_) timestamp_s = std::max(timestamp_s, last_time_s_);
  started_ = true;
  last_time_s_ = timestamp_s;
  const int rows = static_cast<int>(tracks_.size()), cols = static_cast<int>(detections.size());
  std::vector<double> cost(static_cast<size_t>(rows) * cols, kForbidden);
  for (int i = 0; i < rows; ++i) {
    const TrackPrediction p = PredictTrack(tracks_[i], timestamp_s);
    for (int j = 0; j < cols; ++j) cost[static_cast<size_t>(i) * cols + j] = Cost(tracks_[i], p, detections[j]);
  }
  const std::vector<int> match = SolveAssignment(cost, rows, cols);

  std::vector<int> ids(detections.size(), -1);
  for (int i = 0; i < rows; ++i) {
    Track& t = tracks_[i];
    if (match[i] < 0) {
      ++t.missed;
      continue;
    }
    const face::Detection& d = detections[match[i]];
    const double dt = timestamp_s - t.time_s;
    if (dt > 1e-6) {
      const Point c0 = Centre(t.box), c1 = Centre(d.box);
      const float vx = static_cast<float>((c1.x - c0.x) / dt), vy = static_cast<float>((c1.y - c0.y) / dt);
      const float vs = static_cast<float>(std::log(Size(d.box) / Size(t.box)) / dt);
      const float g = t.has_velocity ? kVelocityGain : 1.0f;
      t.vx = g * vx + (1 - g) * t.vx;
      t.vy = g * vy + (1 - g) * t.vy;
      t.vs = g * vs + (1 - g) * t.vs;
      t.has_velocity = true;
    }
    t.box = d.box;
    t.keypoints = d.keypoints;
    t.has_keypoints = HasKeypoints(d.keypoints);
    t.time_s = timestamp_s;
    t.missed = 0;
    ids[match[i]] = t.id;
  }
  const int max_gap = std::max(0, options_.max_gap);
  std::erase_if(tracks_, [&](const Track& t) { return t.missed > max_gap; });
  for (int j = 0; j < cols; ++j) {
    if (ids[j] >= 0) continue;
    const face::Detection& d = detections[j];
    if (Size(d.box) <= 0) continue;  // an empty box cannot be tracked; it keeps id -1
    Track t;
    t.id = next_id_++;
    t.box = d.box;
    t.keypoints = d.keypoints;
    t.has_keypoints = HasKeypoints(d.keypoints);
    t.time_s = timestamp_s;
    tracks_.push_back(t);
    ids[j] = t.id;
  }
  return ids;
}

}  // namespace deepscan::track
