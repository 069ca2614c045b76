#include "serve/frame_scorer.h"

#include <algorithm>
#include <chrono>

#include "face/crop.h"
#include "infer/registry.h"

namespace deepscan::serve {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

Result<std::unique_ptr<FrameScorer>> FrameScorer::Create(const ScanOptions& options, int sessions,
                                                         int threads_per_session, int max_queue_delay_us) {
  if (sessions < 1) return Status::InvalidArgument("--frame-sessions must be at least 1");
  if (threads_per_session < 1) threads_per_session = 1;
  std::vector<std::unique_ptr<face::BlazeFaceDetector>> detectors;
  std::vector<std::unique_ptr<infer::Classifier>> classifiers;
  infer::ClassifierConfig cc;
  cc.model_path = options.classifier.model_path;
  cc.backend = options.classifier.backend;
  cc.device = options.accel.device;
  cc.threads = threads_per_session;
  cc.max_batch = options.classifier.max_batch;
  for (int i = 0; i < sessions; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<face::BlazeFaceDetector> d,
                     face::BlazeFaceDetector::Create(options.detector, threads_per_session, options.accel.device));
    detectors.push_back(std::move(d));
    ASSIGN_OR_RETURN(std::unique_ptr<infer::Classifier> c, infer::CreateClassifier(cc));
    if (options.classifier.flip_tta) c = infer::WithFlipTta(std::move(c));  // frames score as scans do
    classifiers.push_back(std::move(c));
  }
  const infer::ModelMetadata m = classifiers.front()->metadata();
  const ModelInfo model{m.name,    m.version,  classifiers.front()->backend(), classifiers.front()->device(),
                        m.trained, m.threshold};
  // No queue delay by default: measured here, holding a crop back to fill a batch never paid off
  // at any concurrency with two sessions (docs/serve-batching.md); batches still form from the
  // crops that arrive while a session is busy.
  BatcherOptions bo;
  bo.max_batch = options.classifier.max_batch;
  bo.max_queue_delay_us = std::max(0, max_queue_delay_us);
  ASSIGN_OR_RETURN(std::unique_ptr<Batcher> batcher, Batcher::Create(std::move(classifiers), bo));
  std::unique_ptr<FrameScorer> s(new FrameScorer(std::move(detectors), std::move(batcher)));
  s->options_ = options;
  s->model_ = model;
  s->threshold_ = options.aggregation.threshold >= 0 ? options.aggregation.threshold : m.threshold;
  s->input_size_ = m.input_size;
  return s;
}

Status FrameScorer::Classify(const std::vector<cv::Mat>& crops, std::vector<float>* scores) {
  if (crops.empty()) {
    scores->clear();
    return Status::Ok();
  }
  Result<std::vector<float>> r = batcher_->SubmitMany(crops).get();
  if (!r.ok()) return r.status();
  *scores = std::move(*r);
  return Status::Ok();
}

Result<FrameScore> FrameScorer::Score(const cv::Mat& bgr) {
  FrameScore out;
  std::vector<face::Detection> found;
  auto t = Clock::now();
  {
    auto detector = detectors_.Acquire();
    ASSIGN_OR_RETURN(found, detector->Detect(bgr));
  }
  out.detect_s = Since(t);
  RETURN_IF_ERROR(ScoreFaces(bgr, found, &out));
  return out;
}

Status FrameScorer::ScoreFaces(const cv::Mat& bgr, const std::vector<face::Detection>& found, FrameScore* out) {
  out->faces.clear();
  out->score.reset();
  out->classify_s = 0;
  if (found.empty()) return Status::Ok();
  std::vector<cv::Mat> crops(found.size());
  for (size_t i = 0; i < found.size(); ++i) {
    face::CropFace(bgr, found[i].box, options_.crop.margin, input_size_, &crops[i]);
  }
  std::vector<float> scores;
  const auto t = Clock::now();
  RETURN_IF_ERROR(Classify(crops, &scores));
  out->classify_s = Since(t);
  if (scores.size() != found.size()) return Status::Internal("classifier returned a wrong number of scores");
  for (size_t i = 0; i < found.size(); ++i) {
    FaceResult f;
    f.box = found[i].box;
    f.detector_score = found[i].score;
    f.keypoints = found[i].keypoints;
    f.score = scores[i];
    out->score = std::max(out->score.value_or(0.0f), scores[i]);
    out->faces.push_back(f);
  }
  return Status::Ok();
}

}  // namespace deepscan::serve
