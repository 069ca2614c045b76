// face::BlazeFaceDetector: finds faces and their 6 keypoints with MediaPipe's BlazeFace (ONNX).
//
// In:  an upright BGR frame of any size.
// Out: face detections in frame pixels, highest confidence first, after weighted NMS.
// How: the frame is letterboxed to the model's square input (256 for the full-range "back"
//      model, 128 for the selfie-range "front" one; area-averaged when shrunk, bicubic when
//      enlarged), scaled to RGB in [-1, 1]. With DetectorOptions::tiling, frames whose short side
//      is at least tile_min_side are also cut into square tiles of 0.6 x the short side,
//      overlapping by at least a quarter tile, so that small faces reach the network at a usable
//      size (an 80 px face in 1080p: 32 px instead of 11); tiles contribute only faces no larger
//      than that overlap and not cut by a tile edge, larger ones come from the whole-frame pass.
//      Tile and whole-frame detections are merged by weighted NMS. Cost: 1 network run per
//      frame, 9 with tiling at 16:9 (1 + 4 x 2 tiles). docs/detector.md has measured recall.
// Threading: Detect() uses per-detector buffers: one detector per thread. The loaded model is
//      immutable.
#ifndef DEEPSCAN_FACE_BLAZEFACE_H_
#define DEEPSCAN_FACE_BLAZEFACE_H_

#include <array>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "deepscan/options.h"
#include "deepscan/verdict.h"
#include "infer/ort_model.h"

namespace deepscan::face {

struct Detection {
  Box box;                           // frame pixels
  float score = 0;                   // 0..1
  std::array<Point, 6> keypoints{};  // right eye, left eye, nose tip, mouth, right ear, left ear
};

// Anchor centres, in [0, 1] of the model input: a 16x16 grid with 2 anchors per cell, then an
// 8x8 grid with 6 per cell (896 in all), as in MediaPipe's SSD anchor calculator for BlazeFace.
std::vector<Point> BlazeFaceAnchors();

// Decodes raw BlazeFace outputs for one image: `scores` (896 raw logits) and `regressors`
// (896 x 16: dx, dy, w, h, then 6 keypoint x, y, in input pixels) into detections in [0, 1]
// input coordinates, keeping those whose sigmoid score reaches `threshold`.
std::vector<Detection> DecodeBlazeFace(const float* scores, const float* regressors, int input_size, float threshold);

// BlazeFace's input for the square region `roi` of `bgr` (it may extend past the frame: the
// outside is black): letterboxed into `canvas` (in_size x in_size BGR, reused when already that
// size), the visible part top-left, area-averaged when shrunk, bicubic when enlarged, then written
// to `nhwc` (in_size x in_size x 3 floats) as RGB in [-1, 1]. Returns the scale (in_size / roi
// side), or 0 when no part of roi is in the frame (nothing written). The detector and the INT8
// calibration of detectors (compress/calibration_data.h) share it.
double BlazeFaceInput(const cv::Mat& bgr, const cv::Rect& roi, int in_size, cv::Mat* canvas, float* nhwc);

// The square region BlazeFaceDetector::DetectAround runs on: `context` (at least 1) x the face's
// larger side, at least 16 pixels, centred on `face`; it may extend past the frame.
cv::Rect RefindRegion(const Box& face, float context);

// Intersection over union of two boxes; 0 when either is empty.
float IoU(const Box& a, const Box& b);

// MediaPipe's weighted NMS: the best remaining detection absorbs every detection that overlaps
// it by at least `iou`; the merged box and keypoints are the score-weighted mean of the group
// and the score is the best one. Output sorted by score, descending.
std::vector<Detection> WeightedNms(std::vector<Detection> detections, float iou);

// What one Detect/DetectAround call cost and found, for the detection schedule.
struct DetectStats {
  int runs = 0;                 // network runs (whole frame, tiles, crops)
  bool tile_only_face = false;  // a tile found a face the whole-frame pass did not
};

class BlazeFaceDetector {
 public:
  // Loads the ONNX model at options.model_path, to run on `device` (cpu | cuda | tensorrt | auto;
  // an unusable GPU leaves it on the CPU, infer/ort_model.h). Errors: kInvalidModel,
  // kInvalidArgument (unknown device).
  static Result<std::unique_ptr<BlazeFaceDetector>> Create(const DetectorOptions& options, int threads,
                                                           const std::string& device = "cpu");

  // Detects faces in `bgr`, with tiles when DetectorOptions::tiling says so and the frame is
  // large. Errors: kInvalidModel (inference failed).
  Result<std::vector<Detection>> Detect(const cv::Mat& bgr) { return Detect(bgr, options_.tiling, nullptr); }
  // The same, with tiling chosen by the caller (still only for frames of tile_min_side or more);
  // `stats` (optional) receives the cost and whether tiles added a face.
  Result<std::vector<Detection>> Detect(const cv::Mat& bgr, bool tiles, DetectStats* stats);
  // Re-finds a known face: runs the network once on a square crop of `context` x the face's
  // larger side, centred on `face`, so the face reaches the network at about input/context
  // pixels whatever its size in the frame. Returns the faces found in that crop (frame pixels).
  Result<std::vector<Detection>> DetectAround(const cv::Mat& bgr, const Box& face, float context, DetectStats* stats);
  // True when Detect(bgr, true, ...) would tile a frame of this size.
  bool WouldTile(int width, int height) const;

  int input_size() const { return input_size_; }
  const DetectorOptions& options() const { return options_; }
  // Where the network runs: "cpu", "cuda" or "tensorrt" (after any fall-back).
  const std::string& device() const { return model_->provider(); }

 private:
  BlazeFaceDetector() = default;
  // Runs the network on the square region `roi` of `bgr` (it may extend past the frame: the
  // outside is black) and appends detections in frame pixels.
  Status DetectRegion(const cv::Mat& bgr, const cv::Rect& roi, std::vector<Detection>* out);
  // Weighted NMS, then the size and count limits of options_.
  std::vector<Detection> Finish(std::vector<Detection> all) const;

  DetectorOptions options_;
  std::shared_ptr<infer::OrtModel> model_;
  int input_size_ = 256;
  int score_output_[2] = {-1, -1};  // output indices: 512-anchor scores, 384-anchor scores
  int box_output_[2] = {-1, -1};    // output indices: 512-anchor regressors, 384-anchor ones
  cv::Mat canvas_;                  // letterboxed input, reused
  std::vector<float> input_;        // NHWC float input, reused
  std::vector<std::vector<float>> outputs_;
  std::vector<std::vector<int64_t>> shapes_;
  std::vector<float> scores_, regressors_;
};

}  // namespace deepscan::face

#endif  // DEEPSCAN_FACE_BLAZEFACE_H_
