// deepscan/options.h: every knob of a scan, as plain structs with defaults.
//
// Adding a knob adds a field here (with a one-line comment), never a function variant.
// tools/deepscan maps its command-line flags onto these fields in one table.
#ifndef DEEPSCAN_OPTIONS_H_
#define DEEPSCAN_OPTIONS_H_

#include <cstdint>
#include <string>

namespace deepscan {

enum class SamplingPolicy {
  kUniform,    // N frames evenly spread over the duration (DFDC/DeepfakeBench 32-frame protocol)
  kKeyframes,  // the same spread over keyframes only; the decoder skips the rest (fast triage)
};

struct SamplingOptions {
  SamplingPolicy policy = SamplingPolicy::kUniform;
  int frames = 32;                   // N: frames to keep per video
  double fallback_interval_s = 1.0;  // spacing when the duration is unknown (live streams)
};

struct DetectorOptions {
  std::string model_path;        // BlazeFace ONNX: back 256 (full range) or front 128 (selfie)
  float score_threshold = 0.6f;  // minimum face confidence after sigmoid
  float nms_iou = 0.3f;          // boxes overlapping more than this are merged (weighted NMS)
  bool tiling = true;            // also run on overlapping tiles of large frames (small faces)
  int tile_min_side = 720;       // tile only frames whose shorter side is at least this
  int max_faces = 16;            // most faces kept per frame, by confidence
  float min_face_px = 12.0f;     // boxes smaller than this (pixels) are dropped
};

struct CropOptions {
  float margin = 0.3f;  // crop side = (1 + margin) * max(box w, box h), square, centred
};

struct ClassifierOptions {
  std::string model_path;                   // classifier ONNX; its metadata sits beside it (<model>.json)
  std::string backend = "onnxruntime-cpu";  // see infer/registry.h for the list
  int max_batch = 16;                       // crops per inference call
};

enum class Aggregation {
  kMean,       // video score = mean of per-frame scores (frame score = max over its faces)
  kConfident,  // the DFDC winner's rule: lean on confident frames when there are enough of them
};

struct AggregationOptions {
  Aggregation strategy = Aggregation::kMean;
  float threshold = -1.0f;  // label "fake" at or above; < 0 = the model's calibrated threshold
  int top_frames = 5;       // how many highest-scoring frames the verdict lists
};

struct ScanOptions {
  SamplingOptions sampling;
  DetectorOptions detector;
  CropOptions crop;
  ClassifierOptions classifier;
  AggregationOptions aggregation;
  int threads = 0;                     // one budget for FFmpeg, ONNX Runtime and OpenCV; 0 = all cores
  double timeout_s = 600.0;            // per-video wall-clock budget; 0 = none
  int64_t max_pixels = 7680LL * 4320;  // frames larger than 8K UHD are refused (kTooLarge)
};

}  // namespace deepscan

#endif  // DEEPSCAN_OPTIONS_H_
