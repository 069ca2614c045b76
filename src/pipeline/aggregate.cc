#include "pipeline/aggregate.h"

#include <algorithm>
#include <numeric>

namespace deepscan::pipeline {

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
  v->aggregation = options.strategy == Aggregation::kConfident ? "confident" : "mean";
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
  if (frame_scores.empty()) {
    v->status = VideoStatus::kNoFace;
    v->score.reset();
    v->label.clear();
    return;
  }
  v->status = VideoStatus::kOk;
  v->score = options.strategy == Aggregation::kConfident ? ConfidentScore(frame_scores) : MeanScore(frame_scores);
  v->label = *v->score >= threshold ? "fake" : "real";

  std::vector<int> order = scored;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return *v->frames[a].score > *v->frames[b].score; });
  order.resize(std::min<size_t>(order.size(), static_cast<size_t>(std::max(0, options.top_frames))));
  v->top_frames = order;

  // A flagged frame stands for the time until the next sampled frame (or the video's end).
  const double end_of_video =
      v->info.duration_s > 0 ? v->info.start_s + v->info.duration_s : v->frames.back().timestamp_s;
  for (size_t i = 0; i < v->frames.size(); ++i) {
    const FrameResult& f = v->frames[i];
    if (!f.score || *f.score < threshold) continue;
    double start = f.timestamp_s;
    double end = i + 1 < v->frames.size() ? v->frames[i + 1].timestamp_s : std::max(end_of_video, start);
    if (!v->segments.empty() && v->segments.back().end_s >= start - 1e-6) {
      v->segments.back().end_s = end;
      v->segments.back().peak = std::max(v->segments.back().peak, *f.score);
    } else {
      v->segments.push_back({start, end, *f.score});
    }
  }
}

}  // namespace deepscan::pipeline
