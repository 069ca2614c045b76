// The Scanner runs each Scan/ScanMany call as a pipeline of stages joined by bounded queues:
//
//   decode workers (one per video in flight)        detect worker(s)            classify worker
//   Source.Next -> Sampler -> ToBgr  --frames-->  FaceFinder -> CropFace  --crops-->  Classifier
//   (non-reference frames no sample needs         (+ tracker ids)              (batches across
//    are never decoded)                                                         frames and videos)
//                                     \______________ Job (one video's verdict) _____/ -> Aggregate
//
// Memory is bounded by the queues: at most queue_frames decoded BGR frames wait for the detector,
// at most 4 x max_batch crops wait for the classifier, and each decode worker holds at most the
// frames its sampler holds (one or two). A video's verdict is finished by whichever stage
// completes its last piece of work. Frames of one video always go to the same detect worker, in
// order, so the face finder and the tracker see them in time order.
#include "deepscan/scanner.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/bounded_queue.h"
#include "face/blazeface.h"
#include "face/crop.h"
#include "infer/registry.h"
#include "pipeline/aggregate.h"
#include "pipeline/face_finder.h"
#include "pipeline/frame_screen.h"
#include "pipeline/result_cache.h"
#include "track/tracker.h"
#include "video/sampler.h"
#include "video/source.h"

namespace deepscan {
namespace {

using pipeline::FrameScreen;

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int ResolveThreads(int requested) {
  if (requested > 0) return requested;
  unsigned hc = std::thread::hardware_concurrency();
  return hc > 0 ? static_cast<int>(hc) : 1;
}

// How one thread budget is split between the stages for a batch of `videos` videos.
struct Budget {
  int videos = 1;          // decode workers (videos in flight)
  int decode_threads = 1;  // FFmpeg threads per video
  int detect_workers = 1;  // face-finding threads
};

Budget SplitBudget(const ScanOptions& o, int threads, size_t videos) {
  Budget b;
  const int n = static_cast<int>(std::max<size_t>(1, videos));
  // Two cores: two videos decode side by side on one thread each (frame threading has a
  // start-up cost per video that short clips never earn back). More cores: two threads each.
  int in_flight =
      o.pipeline.videos_in_flight > 0 ? o.pipeline.videos_in_flight : (threads >= 4 ? threads / 2 : threads);
  b.videos = std::clamp(in_flight, 1, n);
  b.decode_threads = o.pipeline.decode_threads > 0 ? o.pipeline.decode_threads : std::max(1, threads / b.videos);
  b.detect_workers = std::clamp(threads / 4, 1, b.videos);
  return b;
}

// One sampled frame on its way from a decode worker to a detect worker.
struct FrameTask {
  size_t job = 0;
  size_t slot = 0;       // index in the verdict's frames
  cv::Mat bgr;           // upright frame; empty for the end marker and for duplicates
  bool end = false;      // the job's decode worker is done (no more frames)
  int64_t same_as = -1;  // a near-duplicate of this earlier slot: reuse its faces
  bool cut = false;      // a scene cut since the previous sampled frame
  bool changed = false;  // the picture changed a lot since then (a cut, a jump, a fast pan)
};

// One face crop on its way to the classifier.
struct CropTask {
  size_t job = 0;
  size_t slot = 0;  // frame
  size_t face = 0;  // face within the frame
  cv::Mat crop;
};

// A scored crop kept for the HTML report (ScanOptions::report_crops).
struct KeptCrop {
  int track_id = -1;
  size_t slot = 0, face = 0;
  float score = 0;
  cv::Mat crop;
  cv::Mat heatmap;  // CV_32F in [0, 1], or empty (the model has no heatmap output)
};

// One video in flight.
struct Job {
  std::string path;
  Clock::time_point start;
  std::mutex mu;  // guards v, pending_crops, detect_done, finished, failure
  VideoVerdict v;
  int pending_crops = 0;
  bool detect_done = false;
  bool finished = false;
  bool cached = false;  // v came whole from the result cache
  Status failure;
  std::vector<KeptCrop> kept;  // per identity its report_crops highest-scoring crops so far
  // Used by its detect worker only.
  std::unique_ptr<pipeline::FaceFinder> finder;
  std::unique_ptr<track::FaceTracker> tracker;
};

}  // namespace

struct Scanner::Impl {
  ScanOptions options;
  int threads = 1;
  std::vector<std::unique_ptr<face::BlazeFaceDetector>> detectors;  // one per detect worker
  std::vector<std::unique_ptr<face::BlazeFaceDetector>> refinders;  // same; null = use the detector
  std::unique_ptr<infer::Classifier> classifier;
  ModelInfo model;
  std::unique_ptr<pipeline::ResultCache> cache;  // when options.cache_dir is set

  // State of the current ScanMany call.
  Budget budget;
  std::vector<std::unique_ptr<Job>> jobs;
  std::atomic<size_t> next_job{0};
  std::vector<std::unique_ptr<core::BoundedQueue<FrameTask>>> frame_queues;  // one per detect worker
  std::unique_ptr<core::BoundedQueue<CropTask>> crop_queue;
  std::mutex callback_mu;  // serialises the user's callbacks and the done count
  size_t done = 0;
  const VerdictFn* on_verdict = nullptr;
  const BatchProgressFn* on_progress = nullptr;
  std::vector<double> fractions;  // per job, for progress

  Status EnsureDetectors(int count) {
    while (static_cast<int>(detectors.size()) < count) {
      int per = std::max(1, threads / count);
      ASSIGN_OR_RETURN(std::unique_ptr<face::BlazeFaceDetector> d,
                       face::BlazeFaceDetector::Create(options.detector, per, options.accel.device));
      std::unique_ptr<face::BlazeFaceDetector> r;
      if (!options.detector.refind_model_path.empty()) {
        DetectorOptions ro = options.detector;
        ro.model_path = options.detector.refind_model_path;
        ASSIGN_OR_RETURN(r, face::BlazeFaceDetector::Create(ro, per, options.accel.device));
      }
      detectors.push_back(std::move(d));
      refinders.push_back(std::move(r));
    }
    return Status::Ok();
  }

  void Progress(size_t job, double fraction) {
    if (on_progress == nullptr || !*on_progress) return;
    std::lock_guard<std::mutex> lock(callback_mu);
    fractions[job] = std::max(fractions[job], fraction);
    double sum = 0;
    for (double f : fractions) sum += f;
    (*on_progress)(done, sum / static_cast<double>(fractions.size()));
  }

  // ---- decode stage ----------------------------------------------------------------------
  void DecodeWorker() {
    while (true) {
      size_t j = next_job.fetch_add(1);
      if (j >= jobs.size()) return;
      Job& job = *jobs[j];
      job.start = Clock::now();
      if (cache && options.report_crops == 0) {  // the cache keeps no crops
        if (std::optional<VideoVerdict> hit = cache->Get(job.path)) {
          std::lock_guard<std::mutex> lock(job.mu);
          job.v = std::move(*hit);
          job.cached = true;
          frame_queues[j % frame_queues.size()]->Push(FrameTask{j, 0, cv::Mat(), true, -1});
          continue;
        }
      }
      Status st;
      try {
        st = Decode(j, job);
      } catch (const std::exception& e) {  // OpenCV or the standard library; never cross the API
        st = Status::Internal(std::string("unexpected exception: ") + e.what());
      }
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(job.mu);
        if (job.failure.ok()) job.failure = st;
      }
      frame_queues[j % frame_queues.size()]->Push(FrameTask{j, 0, cv::Mat(), true, -1});
    }
  }

  Status Decode(size_t j, Job& job) {
    VideoVerdict& v = job.v;  // only info, timings and warnings are written here, under job.mu
    auto t = Clock::now();
    video::SourceOptions so;
    so.threads = budget.decode_threads;
    so.timeout_s = options.timeout_s;
    so.max_pixels = options.max_pixels;
    so.keyframes_only = options.sampling.policy == SamplingPolicy::kKeyframes;
    so.skip_nonref = options.sampling.skip_nonref;
    so.hwaccel = options.accel.hwaccel;
    ASSIGN_OR_RETURN(std::unique_ptr<video::Source> source, video::Source::Open(job.path, so));
    const video::StreamInfo& si = source->info();
    ASSIGN_OR_RETURN(std::unique_ptr<video::Sampler> sampler, video::MakeSampler(si, options.sampling));
    video::SampledFrames frames(source.get(), sampler.get());
    {
      std::lock_guard<std::mutex> lock(job.mu);
      v.info.width = si.width;
      v.info.height = si.height;
      v.info.rotation = si.rotation;
      v.info.fps = si.fps;
      v.info.duration_s = si.duration_s;
      v.info.start_s = si.start_s;
      v.info.frame_count = si.frame_count;
      v.info.codec = si.codec;
      v.info.container = si.container;
      v.timings.open_s = Since(t);
    }
    core::BoundedQueue<FrameTask>* out = frame_queues[j % frame_queues.size()].get();
    double convert_s = 0;
    size_t slot = 0;
    FrameScreen screen(options.sampling.dedupe, options.sampling.dedupe_bits);
    video::FrameRef k;
    while (true) {
      ASSIGN_OR_RETURN(bool more, frames.Next(&k));
      if (!more) break;
      auto tc = Clock::now();
      FrameTask task{j, slot++, cv::Mat(), false, -1};
      ASSIGN_OR_RETURN(pipeline::Screened screened, screen.Look(k, static_cast<int64_t>(task.slot)));
      task.cut = screened.cut;
      task.changed = screened.changed;
      task.same_as = screened.same_as_slot;
      const int64_t duplicate_of = screened.same_as_index;
      if (task.same_as < 0) RETURN_IF_ERROR(source->ToBgr(k, &task.bgr));
      convert_s += Since(tc);
      {
        std::lock_guard<std::mutex> lock(job.mu);
        FrameResult fr;
        fr.index = k.index();
        fr.timestamp_s = k.timestamp_s();
        fr.duplicate_of = duplicate_of;
        v.frames.push_back(std::move(fr));
        ++v.timings.frames_sampled;
        if (duplicate_of >= 0) ++v.timings.frames_duplicate;
      }
      if (si.duration_s > 0) Progress(j, std::min(1.0, (k.timestamp_s() - si.start_s) / si.duration_s));
      if (!out->Push(std::move(task))) return Status::Internal("pipeline closed early");
    }
    std::lock_guard<std::mutex> lock(job.mu);
    v.timings.decode_s = frames.decode_s();
    v.timings.convert_s = convert_s;
    v.timings.frames_decoded = source->frames_decoded();
    v.warnings = source->warnings();
    return Status::Ok();
  }

  // ---- detect stage ----------------------------------------------------------------------
  void DetectWorker(size_t worker) {
    face::BlazeFaceDetector* detector = detectors[worker].get();
    face::BlazeFaceDetector* refinder = refinders[worker] ? refinders[worker].get() : detector;
    const int size = classifier->metadata().input_size;
    while (std::optional<FrameTask> task = frame_queues[worker]->Pop()) {
      Job& job = *jobs[task->job];
      if (task->end) {
        {
          std::lock_guard<std::mutex> lock(job.mu);
          job.detect_done = true;
        }
        MaybeFinish(task->job);
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(job.mu);
        if (!job.failure.ok()) continue;  // the rest of a failed video is dropped
      }
      if (!job.finder) {
        job.finder = std::make_unique<pipeline::FaceFinder>(detector, refinder, options);
        job.tracker = std::make_unique<track::FaceTracker>(options.tracking);
      }
      if (task->cut) job.tracker->CloseAll();  // a new shot: new people
      if (task->changed) job.finder->Reset();  // look everywhere, not just where faces were
      if (task->same_as >= 0) {
        // A near-duplicate: the earlier frame's faces (scores are copied when the video is
        // finished); the tracker still sees them, so that no track counts a miss.
        std::lock_guard<std::mutex> lock(job.mu);
        FrameResult& fr = job.v.frames[task->slot];
        fr.faces = job.v.frames[static_cast<size_t>(task->same_as)].faces;
        std::vector<face::Detection> dets;
        for (const FaceResult& f : fr.faces) dets.push_back({f.box, f.detector_score, f.keypoints});
        std::vector<int> ids = job.tracker->Update(fr.timestamp_s, dets);
        for (size_t i = 0; i < ids.size(); ++i) fr.faces[i].track_id = ids[i];
        continue;
      }
      auto t = Clock::now();
      Result<std::vector<face::Detection>> found = [&]() -> Result<std::vector<face::Detection>> {
        try {
          return job.finder->Find(task->bgr);
        } catch (const std::exception& e) {
          return Status::Internal(std::string("unexpected exception: ") + e.what());
        }
      }();
      if (!found.ok()) {
        std::lock_guard<std::mutex> lock(job.mu);
        if (job.failure.ok()) job.failure = found.status();
        continue;
      }
      double timestamp_s = 0;
      {
        std::lock_guard<std::mutex> lock(job.mu);
        timestamp_s = job.v.frames[task->slot].timestamp_s;
      }
      const std::vector<int> ids = job.tracker->Update(timestamp_s, *found);
      std::vector<CropTask> crops;
      std::vector<FaceResult> faces;
      for (const face::Detection& d : *found) {
        FaceResult f;
        f.box = d.box;
        f.detector_score = d.score;
        f.keypoints = d.keypoints;
        f.track_id = ids[faces.size()];
        CropTask c{task->job, task->slot, faces.size(), cv::Mat()};
        face::CropFace(task->bgr, d.box, options.crop.margin, size, &c.crop);
        crops.push_back(std::move(c));
        faces.push_back(f);
      }
      {
        std::lock_guard<std::mutex> lock(job.mu);
        job.v.frames[task->slot].faces = std::move(faces);
        job.v.timings.detect_s += Since(t);
        job.v.timings.detector_runs = job.finder->runs();
        job.pending_crops += static_cast<int>(crops.size());
      }
      for (CropTask& c : crops) crop_queue->Push(std::move(c));
    }
  }

  // ---- classify stage --------------------------------------------------------------------
  void ClassifyWorker() {
    std::vector<CropTask> batch;
    std::vector<cv::Mat> images;
    std::vector<float> scores;
    std::vector<cv::Mat> heatmaps;
    // Heatmaps are read only for the crops a report keeps, from a model that has them.
    const bool want_heatmaps = options.report_crops > 0 && classifier->has_heatmaps();
    const size_t max_batch = static_cast<size_t>(options.classifier.max_batch);
    while (std::optional<CropTask> first = crop_queue->Pop()) {
      batch.clear();
      batch.push_back(std::move(*first));
      // Take what is already waiting, up to a full batch; never wait for more.
      while (batch.size() < max_batch) {
        std::optional<CropTask> more = crop_queue->TryPop();
        if (!more) break;
        batch.push_back(std::move(*more));
      }
      images.clear();
      for (const CropTask& c : batch) images.push_back(c.crop);
      auto t = Clock::now();
      Status st;
      try {
        st = want_heatmaps ? classifier->ClassifyWithHeatmaps(images, &scores, &heatmaps)
                           : classifier->Classify(images, &scores);
      } catch (const std::exception& e) {
        st = Status::Internal(std::string("unexpected exception: ") + e.what());
      }
      const double per_crop = Since(t) / static_cast<double>(batch.size());
      std::vector<size_t> touched;
      for (size_t i = 0; i < batch.size(); ++i) {
        Job& job = *jobs[batch[i].job];
        std::lock_guard<std::mutex> lock(job.mu);
        if (st.ok()) {
          FaceResult& face = job.v.frames[batch[i].slot].faces[batch[i].face];
          face.score = scores[i];
          ++job.v.timings.faces_classified;
          if (options.report_crops > 0)
            Keep(job, {face.track_id, batch[i].slot, batch[i].face, scores[i], batch[i].crop,
                       want_heatmaps ? heatmaps[i] : cv::Mat()});
        } else if (job.failure.ok()) {
          job.failure = st;
        }
        job.v.timings.classify_s += per_crop;
        --job.pending_crops;
        if (std::find(touched.begin(), touched.end(), batch[i].job) == touched.end()) touched.push_back(batch[i].job);
      }
      for (size_t j : touched) MaybeFinish(j);
    }
  }

  // Offers a scored crop to its identity's most suspicious `report_crops`; job.mu is held.
  void Keep(Job& job, KeptCrop c) const {
    if (c.track_id < 0) return;  // belongs to no identity
    const size_t limit = static_cast<size_t>(options.report_crops);
    KeptCrop* weakest = nullptr;
    size_t same = 0;
    for (KeptCrop& k : job.kept) {
      if (k.track_id != c.track_id) continue;
      ++same;
      if (weakest == nullptr || k.score < weakest->score) weakest = &k;
    }
    if (same < limit) {
      job.kept.push_back(std::move(c));
    } else if (weakest != nullptr && c.score > weakest->score) {
      *weakest = std::move(c);
    }
  }

  // The kept crops as JPEG, by identity then score (highest first).
  static std::vector<FaceCrop> EncodeCrops(std::vector<KeptCrop>& kept) {
    std::sort(kept.begin(), kept.end(), [](const KeptCrop& a, const KeptCrop& b) {
      return a.track_id != b.track_id ? a.track_id < b.track_id : a.score > b.score;
    });
    std::vector<FaceCrop> out;
    std::vector<uchar> bytes;
    for (const KeptCrop& k : kept) {
      if (k.crop.empty() || !cv::imencode(".jpg", k.crop, bytes, {cv::IMWRITE_JPEG_QUALITY, 90})) continue;
      FaceCrop f;
      f.track_id = k.track_id;
      f.frame = static_cast<int>(k.slot);
      f.face = static_cast<int>(k.face);
      f.score = k.score;
      f.jpeg.assign(bytes.begin(), bytes.end());
      if (!k.heatmap.empty()) {  // 8-bit grey over the crop's square, smoothly up-sampled
        cv::Mat up, grey;
        cv::resize(k.heatmap, up, k.crop.size(), 0, 0, cv::INTER_LINEAR);
        up.convertTo(grey, CV_8U, 255.0);
        if (cv::imencode(".png", grey, bytes)) f.heatmap_png.assign(bytes.begin(), bytes.end());
      }
      out.push_back(std::move(f));
    }
    return out;
  }

  // ---- aggregation -----------------------------------------------------------------------
  // Finishes job `j` once its detect stage is done and no crop of it is waiting.
  void MaybeFinish(size_t j) {
    Job& job = *jobs[j];
    {
      std::lock_guard<std::mutex> lock(job.mu);
      if (job.finished || !job.detect_done || job.pending_crops > 0) return;
      job.finished = true;
    }
    VideoVerdict& v = job.v;  // no other stage touches it any more
    if (job.cached) {
      v.path = job.path;
      v.timings.cache_hit = true;
      v.timings.total_s = Since(job.start);
    } else if (job.failure.ok()) {
      // Near-duplicates take the scores of the frame whose faces they reused.
      for (FrameResult& fr : v.frames) {
        if (fr.duplicate_of < 0) continue;
        for (const FrameResult& src : v.frames) {
          if (src.index != fr.duplicate_of) continue;
          for (size_t i = 0; i < fr.faces.size() && i < src.faces.size(); ++i) fr.faces[i].score = src.faces[i].score;
          break;
        }
      }
      pipeline::Aggregate(options.aggregation, model.threshold, &v);
      if (!job.kept.empty()) {
        try {
          v.crops = EncodeCrops(job.kept);
        } catch (const std::exception& e) {  // OpenCV; the verdict stands without its crops
          spdlog::warn("{}: face crops for the report could not be encoded: {}", job.path, e.what());
        }
        job.kept.clear();
      }
      v.timings.total_s = Since(job.start);
      if (cache) {
        if (Status st = cache->Put(job.path, v); !st.ok()) spdlog::warn("result cache: {}", st.ToString());
      }
    } else {
      v.status = VideoStatus::kError;
      v.error = job.failure;
      v.score.reset();
      v.label.clear();
    }
    if (!job.cached) v.timings.total_s = Since(job.start);
    std::lock_guard<std::mutex> lock(callback_mu);
    ++done;
    fractions[j] = 1.0;
    if (on_verdict != nullptr && *on_verdict) (*on_verdict)(j, std::move(v));
    if (done == jobs.size()) {  // the last one: let the workers go
      for (auto& q : frame_queues) q->Close();
      crop_queue->Close();
    }
  }

  VideoVerdict NewVerdict(const std::string& path) const {
    VideoVerdict v;
    v.path = path;
    // The threshold in force, also for a video that fails before aggregation.
    v.threshold = options.aggregation.threshold >= 0 ? options.aggregation.threshold : model.threshold;
    v.aggregation = AggregationName(options.aggregation.strategy);
    return v;
  }

  void Run(const std::vector<std::string>& paths, const VerdictFn& verdict_fn, const BatchProgressFn& progress_fn) {
    if (paths.empty()) return;
    budget = SplitBudget(options, threads, paths.size());
    jobs.clear();
    for (const std::string& p : paths) {
      auto job = std::make_unique<Job>();
      job->path = p;
      job->v = NewVerdict(p);
      job->start = Clock::now();
      jobs.push_back(std::move(job));
    }
    next_job = 0;
    done = 0;
    on_verdict = &verdict_fn;
    on_progress = &progress_fn;
    fractions.assign(paths.size(), 0.0);
    Status st = EnsureDetectors(budget.detect_workers);
    if (!st.ok()) {  // cannot happen after Create loaded the same model; report it per video anyway
      for (size_t j = 0; j < jobs.size(); ++j) {
        jobs[j]->v.error = st;
        if (verdict_fn) verdict_fn(j, std::move(jobs[j]->v));
      }
      return;
    }
    frame_queues.clear();
    const size_t per_queue = std::max<size_t>(2, options.pipeline.queue_frames / budget.detect_workers);
    for (int i = 0; i < budget.detect_workers; ++i)
      frame_queues.push_back(std::make_unique<core::BoundedQueue<FrameTask>>(per_queue));
    crop_queue = std::make_unique<core::BoundedQueue<CropTask>>(4 * static_cast<size_t>(options.classifier.max_batch));

    std::vector<std::thread> workers;
    workers.reserve(static_cast<size_t>(budget.detect_workers + 1 + budget.videos));
    for (int i = 0; i < budget.detect_workers; ++i) workers.emplace_back([this, i] { DetectWorker(i); });
    workers.emplace_back([this] { ClassifyWorker(); });
    for (int i = 0; i < budget.videos; ++i) workers.emplace_back([this] { DecodeWorker(); });
    for (std::thread& w : workers) w.join();
    jobs.clear();
    on_verdict = nullptr;
    on_progress = nullptr;
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
  if (options.detector.detect_every < 1) return Status::InvalidArgument("--detect-every must be at least 1");
  if (options.report_crops < 0) return Status::InvalidArgument("report_crops must be at least 0");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->threads = ResolveThreads(options.threads);
  cv::setNumThreads(impl->threads);
  RETURN_IF_ERROR(impl->EnsureDetectors(1));
  infer::ClassifierConfig cc;
  cc.model_path = options.classifier.model_path;
  cc.backend = options.classifier.backend;
  cc.device = options.accel.device;
  cc.threads = options.pipeline.infer_threads > 0 ? options.pipeline.infer_threads : impl->threads;
  cc.max_batch = options.classifier.max_batch;
  ASSIGN_OR_RETURN(impl->classifier, infer::CreateClassifier(cc));
  if (options.classifier.flip_tta) impl->classifier = infer::WithFlipTta(std::move(impl->classifier));
  const infer::ModelMetadata& m = impl->classifier->metadata();
  impl->model = {m.name,    m.version,   impl->classifier->backend(),  impl->classifier->device(),
                 m.trained, m.threshold, options.classifier.model_path, impl->classifier->has_heatmaps()};
  if (!options.cache_dir.empty()) {
    ASSIGN_OR_RETURN(impl->cache, pipeline::ResultCache::Open(options, impl->model));
  }
  return std::unique_ptr<Scanner>(new Scanner(std::move(impl)));
}

VideoVerdict Scanner::Scan(const std::string& path, const ProgressFn& progress) {
  VideoVerdict out = impl_->NewVerdict(path);
  BatchProgressFn batch_progress;
  if (progress) batch_progress = [&](size_t, double f) { progress(f); };
  impl_->Run(
      {path}, [&](size_t, VideoVerdict v) { out = std::move(v); }, batch_progress);
  return out;
}

void Scanner::ScanMany(const std::vector<std::string>& paths, const VerdictFn& on_verdict,
                       const BatchProgressFn& progress) {
  impl_->Run(paths, on_verdict, progress);
}

}  // namespace deepscan
