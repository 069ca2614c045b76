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
  kMotion,     // per slice of the timeline, the candidate that moved or changed most
  kQuality,    // per slice, the sharpest well-exposed candidate (skips blurred, dark, blown-out)
  kContent,    // per slice, the most informative candidate away from scene cuts
};

struct SamplingOptions {
  SamplingPolicy policy = SamplingPolicy::kUniform;
  int frames = 32;                   // N: frames to keep per video
  double fallback_interval_s = 1.0;  // spacing when the duration is unknown (live streams)
  int candidates = 4;                // motion/quality/content: frames weighed per kept frame
  bool skip_nonref = true;           // decoder skips non-reference frames no sample can use
  bool dedupe = true;                // a kept frame that nearly equals the last one examined reuses
                                     // its faces and scores (pipeline/frame_screen.h)
  int dedupe_bits = 2;               // and their 64-bit dHashes at most this far apart (frame_screen.h)
};

struct DetectorOptions {
  std::string model_path;         // BlazeFace ONNX: back 256 (full range) or front 128 (selfie)
  std::string refind_model_path;  // BlazeFace for re-find crops, where the face is large: front
                                  // 128 costs a third of back 256; "" = model_path
  float score_threshold = 0.6f;   // minimum face confidence after sigmoid
  float nms_iou = 0.3f;           // boxes overlapping more than this are merged (weighted NMS)
  bool tiling = true;             // also run on overlapping tiles of large frames (small faces)
  int tile_min_side = 720;        // tile only frames whose shorter side is at least this
  int max_faces = 16;             // most faces kept per frame, by confidence
  float min_face_px = 12.0f;      // boxes smaller than this (pixels) are dropped
  int detect_every = 4;           // whole-frame search on every k-th sampled frame; in between,
                                  // tracked faces are re-found in a crop around them (1 = always)
};

struct TrackingOptions {
  float min_iou = 0.2f;  // a face joins a track whose predicted box it overlaps at least this much
  int max_gap = 4;       // sampled frames a track may miss and still be re-identified
};

struct AccelOptions {
  std::string device = "auto";   // ONNX Runtime: cpu | cuda | tensorrt | auto (GPU when usable)
  std::string hwaccel = "auto";  // FFmpeg decoding: none | cuda | auto (NVDEC when usable)
};

struct PipelineOptions {
  int videos_in_flight = 0;  // videos decoded at once; 0 = from the thread budget
  int decode_threads = 0;    // FFmpeg threads per video; 0 = from the thread budget
  int infer_threads = 0;     // ONNX Runtime intra-op threads per model; 0 = from the budget
  int queue_frames = 8;      // decoded frames waiting for the detector, across all videos
};

struct CropOptions {
  float margin = 0.3f;  // crop side = (1 + margin) * max(box w, box h), square, centred
};

struct ClassifierOptions {
  std::string model_path;               // classifier ONNX; its metadata sits beside it (<model>.json)
  std::string backend = "onnxruntime";  // on accel.device; see infer/registry.h for the list
  int max_batch = 16;                   // crops per inference call
  bool flip_tta = false;                // score = mean of the crop's and its mirror image's (twice the work)
};

enum class Aggregation {
  kMean,         // video score = mean of per-frame scores (frame score = max over its faces)
  kConfident,    // the DFDC winner's rule: lean on confident frames when there are enough of them
  kTopMean,      // the mean of the highest `top_fraction` of the frame scores (a swap shown briefly)
  kIdentityMax,  // per person the mean of their face scores, then the highest person (one swapped
                 // face among real ones); faces without a track count as one more person
};

// Every rule, in the order --aggregate lists them.
inline constexpr Aggregation kAggregations[] = {Aggregation::kMean, Aggregation::kConfident, Aggregation::kTopMean,
                                                Aggregation::kIdentityMax};

// "mean", "confident", "top", "identity-max": the names of --aggregate and of the report's
// `aggregation` field.
inline const char* AggregationName(Aggregation a) {
  switch (a) {
    case Aggregation::kMean: return "mean";
    case Aggregation::kConfident: return "confident";
    case Aggregation::kTopMean: return "top";
    case Aggregation::kIdentityMax: return "identity-max";
  }
  return "mean";
}

struct AggregationOptions {
  Aggregation strategy = Aggregation::kMean;
  float top_fraction = 0.25f;  // kTopMean: the share of frames averaged (at least one frame)
  float threshold = -1.0f;     // label "fake" at or above; < 0 = the model's calibrated threshold
  int top_frames = 5;          // how many highest-scoring frames the verdict lists
};

struct ScanOptions {
  SamplingOptions sampling;
  DetectorOptions detector;
  TrackingOptions tracking;
  CropOptions crop;
  ClassifierOptions classifier;
  AggregationOptions aggregation;
  AccelOptions accel;
  PipelineOptions pipeline;
  std::string cache_dir;               // result cache (content hash + model + options); "" = off
  int threads = 0;                     // one budget for FFmpeg, ONNX Runtime and OpenCV; 0 = all cores
  double timeout_s = 600.0;            // per-video wall-clock budget; 0 = none
  int64_t max_pixels = 7680LL * 4320;  // frames larger than 8K UHD are refused (kTooLarge)
  int report_crops = 0;                // face crops kept per identity, its most suspicious ones, as JPEG
                                       // (VideoVerdict::crops, for the HTML report); 0 = none. The
                                       // result cache stores no crops, so it is not read when > 0
};

}  // namespace deepscan

#endif  // DEEPSCAN_OPTIONS_H_
