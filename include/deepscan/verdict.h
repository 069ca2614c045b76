// deepscan/verdict.h: what a scan reports. docs/output.md documents the JSON form of these
// structs field by field; report/ writes them as JSON, CSV or text.
#ifndef DEEPSCAN_VERDICT_H_
#define DEEPSCAN_VERDICT_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "deepscan/status.h"

namespace deepscan {

struct Box {  // pixels in the upright frame
  float x = 0, y = 0, w = 0, h = 0;
};

struct Point {
  float x = 0, y = 0;
};

struct FaceResult {
  Box box;                           // detector box
  float detector_score = 0;          // BlazeFace confidence, 0..1
  std::array<Point, 6> keypoints{};  // right eye, left eye, nose tip, mouth, right ear, left ear
  float score = 0;                   // calibrated probability that this face is manipulated
  int track_id = -1;                 // the identity this face was linked to (see identities)
  std::string heatmap;               // the blend-heatmap image `deepscan scan --heatmaps DIR` wrote for
                                     // this face (report/heatmaps.h); empty for every other face
};

struct Segment {  // a stretch of the timeline whose frame scores are at or above the threshold
  double start_s = 0, end_s = 0;
  float peak = 0;
};

struct FrameResult {
  int64_t index = 0;              // frame number in decode order (0-based)
  double timestamp_s = 0;         // presentation time
  std::vector<FaceResult> faces;  // empty when no face was found
  std::optional<float> score;     // max over faces; none without a face
  int64_t duplicate_of = -1;      // index of an earlier sampled frame it nearly equals; its faces
                                  // and scores were reused instead of recomputed (-1 = none)
};

struct IdentityVerdict {  // one person, tracked across the sampled frames
  int track_id = 0;
  int faces = 0;  // sampled frames in which this person was found
  double first_s = 0, last_s = 0;
  std::optional<float> score;     // mean of the person's face scores
  std::string label;              // "fake" or "real" at the verdict's threshold
  std::vector<Segment> segments;  // this person's seconds that look manipulated
};

// A face as the classifier saw it, kept only when ScanOptions::report_crops asks (for the HTML
// report; never in the JSON report or the result cache).
struct FaceCrop {
  int track_id = -1;        // the identity (IdentityVerdict::track_id)
  int frame = 0;            // index into VideoVerdict::frames
  int face = 0;             // index into that frame's faces
  float score = 0;          // the face's score
  std::string jpeg;         // the crop (model input size, square, CropOptions::margin), JPEG bytes
  std::string heatmap_png;  // where the model sees blending, over the same square: an 8-bit grey PNG
                            // (0 none .. 255 most), or empty when the model has no heatmap output
                            // (none of the shipped models has one yet)
};

struct VideoInfo {
  int width = 0, height = 0;  // upright
  int rotation = 0;           // degrees clockwise applied
  double fps = 0, duration_s = 0;
  double start_s = 0;       // timestamp of the first frame (MPEG-TS streams rarely start at 0)
  int64_t frame_count = 0;  // as declared by the container (0 when unknown)
  std::string codec, container;
};

struct StageTimings {  // seconds of wall time per stage, for this video
  double open_s = 0, decode_s = 0, convert_s = 0, detect_s = 0, classify_s = 0, total_s = 0;
  int64_t frames_decoded = 0;  // every frame the decoder produced
  int64_t frames_sampled = 0;  // frames converted and examined
  int64_t faces_classified = 0;
  int64_t frames_duplicate = 0;  // sampled frames that reused an earlier frame's results
  int64_t detector_runs = 0;     // network runs of the face detector (tiles and crops count)
  bool cache_hit = false;        // the verdict came from the result cache
};

struct ModelInfo {
  std::string name, version, backend;
  std::string device = "cpu";  // where inference ran: cpu, cuda or tensorrt
  bool trained = true;         // false for the untrained development model: its scores carry no meaning
  float threshold = 0.5f;      // calibrated decision threshold shipped with the model
  std::string path;            // the classifier file (its card and metadata lie beside it); not in the JSON
  bool heatmaps = false;       // the classifier has a blend-heatmap output (FaceCrop::heatmap_png); not in the JSON
};

enum class VideoStatus {
  kOk,      // scored
  kNoFace,  // decoded, but no face in any sampled frame: no score, on purpose
  kError,   // could not be scanned; see `error`
};

struct VideoVerdict {
  std::string path;
  VideoStatus status = VideoStatus::kError;
  Status error;  // set when status == kError
  VideoInfo info;
  std::vector<FrameResult> frames;          // the sampled frames, in time order
  std::optional<float> score;               // video-level probability of manipulation
  std::string label;                        // "fake" or "real" when scored; empty otherwise
  float threshold = 0.5f;                   // the threshold that produced `label`
  std::string aggregation;                  // AggregationName: "mean", "confident", "top", "identity-max"
  std::vector<int> top_frames;              // indices into `frames`, highest score first
  std::vector<Segment> segments;            // seconds that look manipulated
  std::vector<IdentityVerdict> identities;  // per person, most suspicious first
  std::vector<std::string> warnings;        // non-fatal problems (corrupt packets, truncation)
  StageTimings timings;
  std::vector<FaceCrop> crops;  // per identity its most suspicious crops, by track id then score
                                // (highest first); empty unless ScanOptions::report_crops > 0
};

std::string_view StatusName(VideoStatus status);  // "ok", "no_face", "error"

}  // namespace deepscan

#endif  // DEEPSCAN_VERDICT_H_
