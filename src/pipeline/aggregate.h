// pipeline::Aggregate: from per-face scores to a video verdict.
//
// In:  the sampled frames of one video with their faces' scores.
// Out: per-frame scores (max over faces), the video score (mean, or the DFDC winner's
//      "confident" rule), label at the threshold, top frames and the suspicious segments.
//      A video without any face gets status no_face and no score.
#ifndef DEEPSCAN_PIPELINE_AGGREGATE_H_
#define DEEPSCAN_PIPELINE_AGGREGATE_H_

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

// Fills in frame scores, score, label, threshold, aggregation, top_frames, segments and status
// (kOk or kNoFace) of `v` from its frames. `model_threshold` applies when options.threshold < 0.
void Aggregate(const AggregationOptions& options, float model_threshold, VideoVerdict* v);

}  // namespace deepscan::pipeline

#endif  // DEEPSCAN_PIPELINE_AGGREGATE_H_
