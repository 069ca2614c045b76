// serve::FrameScorer: scores the faces of one still image for POST /v1/frames.
//
// In:  an upright BGR image.
// Out: the faces BlazeFace finds (box, keypoints, detector confidence), each with its
//      calibrated P(fake) from the classifier, and the frame score (the max over its faces, as a
//      scan's frame score). No tracking: track ids stay -1.
// How: detection and crops as in a scan (ScanOptions::detector, crop margin); the crops of one
//      image are classified in one call of Classify(), the one place a classifier is used, so
//      a dynamic batcher across requests can replace it without touching the rest.
// Threading: Score() is called from many request threads at once. Detectors and classifiers
//      sit in two SessionPools of `sessions` each: a call leases one detector, then one
//      classifier; no lock is held while a network runs.
#ifndef DEEPSCAN_SERVE_FRAME_SCORER_H_
#define DEEPSCAN_SERVE_FRAME_SCORER_H_

#include <memory>
#include <optional>
#include <vector>

#include <opencv2/core.hpp>

#include "deepscan/options.h"
#include "deepscan/status.h"
#include "deepscan/verdict.h"
#include "face/blazeface.h"
#include "infer/classifier.h"
#include "serve/batcher.h"
#include "serve/session_pool.h"

namespace deepscan::serve {

struct FrameScore {
  std::vector<FaceResult> faces;  // detector order (most confident first)
  std::optional<float> score;     // max over faces; none without a face
  double detect_s = 0, classify_s = 0;
};

class FrameScorer {
 public:
  // Loads `sessions` detectors and classifiers from the scan options' models, each running on
  // `threads_per_session` ONNX Runtime threads. Errors: kInvalidModel, kNotSupported,
  // kInvalidArgument.
  // `max_queue_delay_us`: the batcher's queue delay (serve/batcher.h); its max batch is the scan
  // options' classifier max_batch (--batch).
  static Result<std::unique_ptr<FrameScorer>> Create(const ScanOptions& options, int sessions, int threads_per_session,
                                                     int max_queue_delay_us = 0);

  // Errors: kInvalidModel (inference failed), kInternal.
  Result<FrameScore> Score(const cv::Mat& bgr);

  // The threshold that labels a frame "fake": --threshold, else the model's calibrated one.
  float threshold() const { return threshold_; }
  const ModelInfo& model() const { return model_; }
  int input_size() const { return input_size_; }  // the classifier's crop side, pixels
  BatcherStats batcher_stats() const { return batcher_->Stats(); }
  int max_batch() const { return options_.classifier.max_batch; }

  // The faces `found` in `bgr` (by any detection schedule: streams bring their own), cropped and
  // classified: fills out->faces (track ids -1), out->score and out->classify_s. Errors: the
  // batcher's (kTooLarge "overloaded: ..." when its queue is full), the classifier's.
  Status ScoreFaces(const cv::Mat& bgr, const std::vector<face::Detection>& found, FrameScore* out);

 private:
  // Calibrated P(fake) of each crop (face::CropFace at input_size()), through the dynamic
  // batcher: the crops of concurrent requests and streams share classifier calls
  // (docs/serve-batching.md).
  Status Classify(const std::vector<cv::Mat>& crops, std::vector<float>* scores);

  FrameScorer(std::vector<std::unique_ptr<face::BlazeFaceDetector>> detectors, std::unique_ptr<Batcher> batcher)
      : detectors_(std::move(detectors)), batcher_(std::move(batcher)) {}

  SessionPool<face::BlazeFaceDetector> detectors_;
  std::unique_ptr<Batcher> batcher_;
  ScanOptions options_;
  ModelInfo model_;
  float threshold_ = 0.5f;
  int input_size_ = 224;
};

}  // namespace deepscan::serve

#endif  // DEEPSCAN_SERVE_FRAME_SCORER_H_
