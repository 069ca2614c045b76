#include "pipeline/aggregate.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>

namespace deepscan::pipeline {
namespace {

// The per-person verdicts: a person's faces are those with its track id.
void AggregateIdentities(float threshold, double end_of_video, VideoVerdict* v) {
  std::map<int, std::vector<std::optional<float>>> by_track;  // track id -> its score per frame
  for (size_t i = 0; i < v->frames.size(); ++i) {
    for (const FaceResult& face : v->frames[i].faces) {
      if (face.track_id < 0) continue;
      auto& scores = by_track[face.track_id];
      scores.resize(v->frames.size());
      // Two faces of one track in a frame cannot come from the tracker; keep the higher score.
      scores[i] = std::max(scores[i].value_or(0.0f), face.score);
    }
  }
  for (const auto& [id, scores] : by_track) {
    IdentityVerdict p;
    p.track_id = id;
    double sum = 0;
    for (size_t i = 0; i < scores.size(); ++i) {
      if (!scores[i]) continue;
      if (p.faces == 0) p.first_s = v->frames[i].timestamp_s;
      p.last_s = v->frames[i].timestamp_s;
      ++p.faces;
      sum += *scores[i];
    }
    p.score = static_cast<float>(sum / p.faces);
    p.label = *p.score >= threshold ? "fake" : "real";
    p.segments = Segments(v->frames, scores, threshold, end_of_video);
    v->identities.push_back(std::move(p));
  }
  // Most suspicious first; ties in order of first appearance.
  std::stable_sort(v->identities.begin(), v->identities.end(),
                   [](const IdentityVerdict& a, const IdentityVerdict& b) { return *a.score > *b.score; });
}

}  // namespace

float TopMeanScore(const std::vector<float>& scores, float fraction) {
  std::vector<float> sorted = scores;
  std::sort(sorted.begin(), sorted.end(), std::greater<float>());
  const size_t k = std::clamp<size_t>(static_cast<size_t>(std::ceil(std::clamp(fraction, 0.0f, 1.0f) * sorted.size())),
                                      1, sorted.size());
  double sum = 0;
  for (size_t i = 0; i < k; ++i) sum += sorted[i];
  return static_cast<float>(sum / static_cast<double>(k));
}

std::vector<Segment> Segments(const std::vector<FrameResult>& frames, const std::vector<std::optional<float>>& scores,
                              float threshold, double end_of_video) {
  // A flagged frame stands for the time until the next sampled frame (or the video's end).
  std::vector<Segment> segments;
  for (size_t i = 0; i < frames.size() && i < scores.size(); ++i) {
    if (!scores[i] || *scores[i] < threshold) continue;
    const double start = frames[i].timestamp_s;
    const double end = i + 1 < frames.size() ? frames[i + 1].timestamp_s : std::max(end_of_video, start);
    if (!segments.empty() && segments.back().end_s >= start - 1e-6) {
      segments.back().end_s = end;
      segments.back().peak = std::max(segments.back().peak, *scores[i]);
    } else {
      segments.push_back({start, end, *scores[i]});
    }
  }
  return segments;
}

float MeanScore(const std::vector<float>& s) {
  return static_cast<float>(std::accumulate(s.begin(), s.end(), 0.0) / static_cast<double>(s.size()));
}

float ConfidentScore(const std::vector<float>& s, float t) {
  const size_t n = s.size();
  std::vector<float> high, low;
  for (float x : s) {
    if (x > t) high.push_back(x);
    if (x < 0.2f) low.push_back(x);
  }
  if (high.size() > static_cast<size_t>(n / 2.5) && high.size() > 11) return MeanScore(high);
  if (static_cast<double>(low.size()) > 0.9 * n) return MeanScore(low);
  return MeanScore(s);
}

void Aggregate(const AggregationOptions& options, float model_threshold, VideoVerdict* v) {
  const float threshold = options.threshold >= 0 ? options.threshold : model_threshold;
  v->threshold = threshold;
  v->aggregation = AggregationName(options.strategy);
  std::vector<float> frame_scores;
  std::vector<int> scored;  // indices of frames with a score
  for (size_t i = 0; i < v->frames.size(); ++i) {
    FrameResult& f = v->frames[i];
    f.score.reset();
    for (const FaceResult& face : f.faces) f.score = std::max(f.score.value_or(0.0f), face.score);
    if (f.score) {
      frame_scores.push_back(*f.score);
      scored.push_back(static_cast<int>(i));
    }
  }
  v->top_frames.clear();
  v->segments.clear();
  v->identities.clear();
  if (frame_scores.empty()) {
    v->status = VideoStatus::kNoFace;
    v->score.reset();
    v->label.clear();
    return;
  }
  v->status = VideoStatus::kOk;
  switch (options.strategy) {
    case Aggregation::kConfident: v->score = ConfidentScore(frame_scores); break;
    case Aggregation::kTopMean: v->score = TopMeanScore(frame_scores, options.top_fraction); break;
    default: v->score = MeanScore(frame_scores); break;  // kIdentityMax: set once the identities are known
  }

  std::vector<int> order = scored;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return *v->frames[a].score > *v->frames[b].score; });
  order.resize(std::min<size_t>(order.size(), static_cast<size_t>(std::max(0, options.top_frames))));
  v->top_frames = order;

  const double end_of_video =
      v->info.duration_s > 0 ? v->info.start_s + v->info.duration_s : v->frames.back().timestamp_s;
  std::vector<std::optional<float>> scores(v->frames.size());
  for (size_t i = 0; i < v->frames.size(); ++i) scores[i] = v->frames[i].score;
  v->segments = Segments(v->frames, scores, threshold, end_of_video);
  AggregateIdentities(threshold, end_of_video, v);
  if (options.strategy == Aggregation::kIdentityMax) {
    std::vector<float> untracked;
    for (const FrameResult& f : v->frames) {
      for (const FaceResult& face : f.faces) {
        if (face.track_id < 0) untracked.push_back(face.score);
      }
    }
    std::optional<float> best;
    if (!untracked.empty()) best = MeanScore(untracked);
    for (const IdentityVerdict& p : v->identities) {
      if (p.score && (!best || *p.score > *best)) best = p.score;
    }
    if (best) v->score = best;
  }
  v->label = *v->score >= threshold ? "fake" : "real";
}

}  // namespace deepscan::pipeline
