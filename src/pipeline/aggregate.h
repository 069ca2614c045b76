// pipeline::Aggregate: from per-face scores to a video verdict.
//
// In:  the sampled frames of one video with their faces' scores.
// Out: per-frame scores (max over faces), the video score (Aggregation: the mean, the DFDC
//      winner's "confident" rule, the top-fraction mean, or the highest person's mean), label at the threshold, top frames and the suspicious segments; and
//      per identity (the faces sharing a FaceResult::track_id) its face count, first and last
//      time, mean face score, label at the same threshold and segments, most suspicious first.
//      Faces without a track id (-1) count for the video but belong to no identity.
//      A video without any face gets status no_face and no score.
#ifndef DEEPSCAN_PIPELINE_AGGREGATE_H_
#define DEEPSCAN_PIPELINE_AGGREGATE_H_

#include <optional>
#include <vector>

#include "deepscan/options.h"
#include "deepscan/verdict.h"

namespace deepscan::pipeline {

// Mean of `scores`; precondition: not empty.
float MeanScore(const std::vector<float>& scores);

// The "confident strategy" of the DFDC winner (S. Seferbekov): when more than 11 frames and
// more than len/2.5 of them score above `t`, the mean of those; else when more than 90% score
// below 0.2, the mean of those; else the plain mean. Precondition: not empty.
float ConfidentScore(const std::vector<float>& scores, float t = 0.8f);

// The mean of the highest `fraction` of `scores` (rounded up, at least one). Precondition: not empty.
float TopMeanScore(const std::vector<float>& scores, float fraction);

// The stretches of time whose `scores` (one per frame; none = no face) are at or above
// `threshold`: a flagged frame stands for the time until the next frame of `frames` (the last one
// until `end_of_video`); touching stretches merge; peak = their highest score.
std::vector<Segment> Segments(const std::vector<FrameResult>& frames, const std::vector<std::optional<float>>& scores,
                              float threshold, double end_of_video);

// Fills in frame scores, score, label, threshold, aggregation, top_frames, segments, identities
// and status (kOk or kNoFace) of `v` from its frames. `model_threshold` applies when
// options.threshold < 0.
void Aggregate(const AggregationOptions& options, float model_threshold, VideoVerdict* v);

}  // namespace deepscan::pipeline

#endif  // DEEPSCAN_PIPELINE_AGGREGATE_H_
