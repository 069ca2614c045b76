// track::FaceTracker: links the faces of a video's sampled frames into identities (tracks).
//
// In:  per sampled frame, in time order: its timestamp and its face detections.
// Out: a track id per detection (0, 1, 2... in order of first appearance; within one frame, in
//      detection order), and on request each live track's predicted box at a later time, so the
//      pipeline can re-find a tracked face in a crop around it instead of searching the frame.
// How: each track keeps its last box and keypoints and a velocity of the box centre (pixels/s)
//      and of its log size (1/s), updated by exponential smoothing on every match. The prediction
//      moves the last box by that velocity, damped with a time constant of kDampingS (a head does
//      not keep moving the same way for seconds). Sampled frames are ~0.3 s apart, so a moving head
//      often does not overlap its previous box: the matching cost mixes (1 - IoU) with the distance
//      of the box centre and the four stable keypoints (eyes, nose, mouth), in face sizes. Gates
//      make some pairs impossible, so that two people never swap or merge: the sizes must agree
//      within kMaxScaleRatio, and the detection must overlap the prediction by at least
//      TrackingOptions::min_iou or lie within kMaxDistance face sizes of it, plus kGapAllowance per
//      sampled frame the track missed and once more while its velocity is unknown (a track seen
//      once): the less known, the wider the gate. The assignment is
//      optimal (track::SolveAssignment), not greedy: when two faces cross, the greedy choice of the
//      closest pair can hand both the wrong identity. A track that misses a sampled frame stays
//      alive for TrackingOptions::max_gap sampled frames; meanwhile a face that comes back near
//      where the track was last seen or predicted takes its id back. After that the track is
//      closed and its id is never reused: a later face gets a new id.
// Threading: one tracker per video, used by one thread at a time.
#ifndef DEEPSCAN_TRACK_TRACKER_H_
#define DEEPSCAN_TRACK_TRACKER_H_

#include <array>
#include <vector>

#include "deepscan/options.h"
#include "deepscan/verdict.h"
#include "face/blazeface.h"

namespace deepscan::track {

inline constexpr float kMaxScaleRatio = 1.5f;  // larger / smaller face size of a detection and its track
inline constexpr float kMaxDistance = 1.0f;    // centre/keypoint distance gate, in face sizes
inline constexpr float kGapAllowance = 0.5f;   // the gate widens by this per sampled frame missed
inline constexpr double kDampingS = 2.0;       // time constant of the velocity's decay, seconds
inline constexpr float kVelocityGain = 0.6f;   // weight of the newest velocity measurement

struct TrackPrediction {
  int track_id = 0;
  Box box;                           // predicted box at the requested time, frame pixels
  std::array<Point, 6> keypoints{};  // the last keypoints, moved and scaled with the box
  int missed = 0;                    // sampled frames since the track was last matched
};

class FaceTracker {
 public:
  explicit FaceTracker(const TrackingOptions& options) : options_(options) {}

  // Each live track's box predicted at `timestamp_s`, in id order. Does not change the tracker.
  std::vector<TrackPrediction> Predict(double timestamp_s) const;

  // Links the `detections` of the next sampled frame, taken at `timestamp_s` (not before the
  // previous frame's), to the live tracks; unmatched detections start new tracks. Returns one
  // track id per detection, in the same order (-1 for an empty box, which is never tracked).
  // Tracks that missed more than max_gap sampled frames are closed.
  std::vector<int> Update(double timestamp_s, const std::vector<face::Detection>& detections);

  // Ends every live track (a scene cut: faces after it are new people, whatever their position).
  void CloseAll() { tracks_.clear(); }

  // Tracks started so far (= the next new id).
  int tracks_started() const { return next_id_; }
  // Tracks still open (matched within the last max_gap + 1 sampled frames).
  int live_tracks() const { return static_cast<int>(tracks_.size()); }

 private:
  struct Track {
    int id = 0;
    Box box;  // last matched box
    std::array<Point, 6> keypoints{};
    bool has_keypoints = false;
    double time_s = 0;     // when last matched
    float vx = 0, vy = 0;  // centre velocity, pixels per second
    float vs = 0;          // log-size velocity, per second
    bool has_velocity = false;
    int missed = 0;  // sampled frames since the last match
  };
  static TrackPrediction PredictTrack(const Track& t, double timestamp_s);
  // Matching cost of detection `d` against `t` predicted to `p`; kForbidden outside the gates.
  double Cost(const Track& t, const TrackPrediction& p, const face::Detection& d) const;

  TrackingOptions options_;
  std::vector<Track> tracks_;  // live tracks, in id order
  int next_id_ = 0;
  double last_time_s_ = 0;
  bool started_ = false;
};

}  // namespace deepscan::track

#endif  // DEEPSCAN_TRACK_TRACKER_H_
