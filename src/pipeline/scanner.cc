// The Scanner wires the stages for one video at a time on the calling thread:
//   Source.Next -> Sampler.Offer -> Source.ToBgr -> Detector.Detect -> CropFace -> (batch)
//   -> Classifier.Classify -> Aggregate.
// Memory is bounded by one held decoded frame, the kept frames of one Offer call and at most
// max_batch pending crops; per-frame results are small.
#include "deepscan/scanner.h"

#include <chrono>
#include <thread>

#include <opencv2/core.hpp>

#include "face/blazeface.h"
#include "face/crop.h"
#include "infer/registry.h"
#include "pipeline/aggregate.h"
#include "video/sampler.h"
#include "video/source.h"

namespace deepscan {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int ResolveThreads(int requested) {
  if (requested > 0) return requested;
  unsigned hc = std::thread::hardware_concurrency();
  return hc > 0 ? static_cast<int>(hc) : 1;
}

}  // namespace

struct Scanner::Impl {
  ScanOptions options;
  int threads = 1;
  std::unique_ptr<face::BlazeFaceDetector> detector;
  std::unique_ptr<infer::Classifier> classifier;
  ModelInfo model;

  // Crops waiting for the classifier and where their scores go.
  std::vector<cv::Mat> pending;
  std::vector<std::pair<size_t, size_t>> pending_slots;  // (frame index in verdict, face index)
  std::vector<float> scores;
  cv::Mat frame_bgr;

  Status Flush(VideoVerdict* v) {
    if (pending.empty()) return Status::Ok();
    auto t = Clock::now();
    RETURN_IF_ERROR(classifier->Classify(pending, &scores));
    for (size_t i = 0; i < pending.size(); ++i) {
      auto [fi, face] = pending_slots[i];
      v->frames[fi].faces[face].score = scores[i];
    }
    v->timings.faces_classified += static_cast<int64_t>(pending.size());
    v->timings.classify_s += Since(t);
    pending.clear();
    pending_slots.clear();
    return Status::Ok();
  }

  // Detects, crops and queues the faces of one kept frame.
  Status Examine(video::Source& source, const video::FrameRef& ref, VideoVerdict* v) {
    auto t = Clock::now();
    RETURN_IF_ERROR(source.ToBgr(ref, &frame_bgr));
    v->timings.convert_s += Since(t);
    t = Clock::now();
    ASSIGN_OR_RETURN(std::vector<face::Detection> dets, detector->Detect(frame_bgr));
    v->timings.detect_s += Since(t);
    FrameResult fr;
    fr.index = ref.index();
    fr.timestamp_s = ref.timestamp_s();
    const int size = classifier->metadata().input_size;
    t = Clock::now();
    for (const face::Detection& d : dets) {
      FaceResult face;
      face.box = d.box;
      face.detector_score = d.score;
      face.keypoints = d.keypoints;
      pending_slots.emplace_back(v->frames.size(), fr.faces.size());
      pending.emplace_back();
      face::CropFace(frame_bgr, d.box, options.crop.margin, size, &pending.back());
      fr.faces.push_back(face);
    }
    v->timings.detect_s += Since(t);  // cropping is counted with detection
    v->frames.push_back(std::move(fr));
    ++v->timings.frames_sampled;
    if (static_cast<int>(pending.size()) >= options.classifier.max_batch) return Flush(v);
    return Status::Ok();
  }

  Status Run(const std::string& path, const ProgressFn& progress, VideoVerdict* v) {
    auto t = Clock::now();
    video::SourceOptions so;
    so.threads = threads;
    so.timeout_s = options.timeout_s;
    so.max_pixels = options.max_pixels;
    so.keyframes_only = options.sampling.policy == SamplingPolicy::kKeyframes;
    ASSIGN_OR_RETURN(std::unique_ptr<video::Source> source, video::Source::Open(path, so));
    const video::StreamInfo& si = source->info();
    v->info.width = si.width;
    v->info.height = si.height;
    v->info.rotation = si.rotation;
    v->info.fps = si.fps;
    v->info.duration_s = si.duration_s;
    v->info.start_s = si.start_s;
    v->info.frame_count = si.frame_count;
    v->info.codec = si.codec;
    v->info.container = si.container;
    ASSIGN_OR_RETURN(std::unique_ptr<video::Sampler> sampler, video::MakeSampler(si, options.sampling));
    v->timings.open_s = Since(t);

    std::vector<video::FrameRef> keep;
    double decode_s = 0;
    while (true) {
      auto td = Clock::now();
      video::FrameRef ref;
      Result<bool> got = source->Next(&ref);
      decode_s += Since(td);
      if (!got.ok()) return got.status();
      keep.clear();
      if (*got) {
        sampler->Offer(std::move(ref), &keep);
      } else {
        sampler->Finish(&keep);
      }
      for (const video::FrameRef& k : keep) RETURN_IF_ERROR(Examine(*source, k, v));
      if (progress && si.duration_s > 0 && !v->frames.empty()) {
        progress(std::min(1.0, (v->frames.back().timestamp_s - si.start_s) / si.duration_s));
      }
      if (!*got || sampler->Done()) break;
    }
    RETURN_IF_ERROR(Flush(v));
    v->timings.decode_s = decode_s;
    v->timings.frames_decoded = source->frames_decoded();
    v->warnings = source->warnings();
    pipeline::Aggregate(options.aggregation, model.threshold, v);
    return Status::Ok();
  }
};

Scanner::Scanner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Scanner::~Scanner() = default;
const ModelInfo& Scanner::model() const { return impl_->model; }
const ScanOptions& Scanner::options() const { return impl_->options; }

Result<std::unique_ptr<Scanner>> Scanner::Create(const ScanOptions& options) {
  if (options.crop.margin < 0 || options.crop.margin > 3) return Status::InvalidArgument("margin must be in [0, 3]");
  if (options.classifier.max_batch < 1) return Status::InvalidArgument("batch size must be at least 1");
  if (options.aggregation.threshold >= 1) return Status::InvalidArgument("threshold must be below 1");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->threads = ResolveThreads(options.threads);
  cv::setNumThreads(impl->threads);
  ASSIGN_OR_RETURN(impl->detector,
                   face::BlazeFaceDetector::Create(options.detector, impl->threads, options.accel.device));
  infer::ClassifierConfig cc;
  cc.model_path = options.classifier.model_path;
  cc.backend = options.classifier.backend;
  cc.device = options.accel.device;
  cc.threads = impl->threads;
  cc.max_batch = options.classifier.max_batch;
  ASSIGN_OR_RETURN(impl->classifier, infer::CreateClassifier(cc));
  const infer::ModelMetadata& m = impl->classifier->metadata();
  impl->model = {m.name, m.version, impl->classifier->backend(), impl->classifier->device(), m.trained, m.threshold};
  return std::unique_ptr<Scanner>(new Scanner(std::move(impl)));
}

VideoVerdict Scanner::Scan(const std::string& path, const ProgressFn& progress) {
  auto t = Clock::now();
  VideoVerdict v;
  v.path = path;
  // The threshold in force, also for a video that fails before aggregation.
  v.threshold =
      impl_->options.aggregation.threshold >= 0 ? impl_->options.aggregation.threshold : impl_->model.threshold;
  v.aggregation = impl_->options.aggregation.strategy == Aggregation::kConfident ? "confident" : "mean";
  impl_->pending.clear();
  impl_->pending_slots.clear();
  Status st;
  try {
    st = impl_->Run(path, progress, &v);
  } catch (const std::exception& e) {  // OpenCV or the standard library; never cross the API
    st = Status::Internal(std::string("unexpected exception: ") + e.what());
  }
  if (!st.ok()) {
    v.status = VideoStatus::kError;
    v.error = st;
    v.score.reset();
    v.label.clear();
  }
  v.timings.total_s = Since(t);
  return v;
}

}  // namespace deepscan
