#include "train/extract.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "face/blazeface.h"
#include "face/crop.h"
#include "video/sampler.h"
#include "video/source.h"

namespace deepscan::train {
namespace {

struct Context {
  const ExtractOptions& options;
  face::BlazeFaceDetector& detector;
  const face::LandmarkModel* landmarks;  // null when turned off
  CropStoreWriter& store;
  ExtractReport& report;
  cv::Mat crop;
};

// Detects faces in `frame` and appends the largest ones. `offset` maps frame pixels back to the
// source (photos are padded). Returns the number of crops appended.
Result<int> AddFaces(Context& ctx, const cv::Mat& frame, const LabelledInput& in, double ts, int64_t index,
                     const Point& offset) {
  ASSIGN_OR_RETURN(std::vector<face::Detection> dets, ctx.detector.Detect(frame));
  std::sort(dets.begin(), dets.end(),
            [](const face::Detection& a, const face::Detection& b) { return a.box.w * a.box.h > b.box.w * b.box.h; });
  int added = 0;
  for (const face::Detection& d : dets) {
    if (added >= ctx.options.faces_per_frame) break;
    face::CropFace(frame, d.box, ctx.options.margin, ctx.options.crop_size, &ctx.crop);
    CropRecord r;
    for (int k = 0; k < 6; ++k)
      r.keypoints[k] = face::ToCrop(d.keypoints[k], d.box, ctx.options.margin, ctx.options.crop_size);
    if (ctx.landmarks) {
      const auto t0 = std::chrono::steady_clock::now();
      ASSIGN_OR_RETURN(face::Landmarks points, ctx.landmarks->Predict(frame, d.box));
      ctx.report.landmark_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      for (Point& p : points) p = face::ToCrop(p, d.box, ctx.options.margin, ctx.options.crop_size);
      r.landmarks = points;
    }
    r.box = {d.box.x - offset.x, d.box.y - offset.y, d.box.w, d.box.h};
    r.timestamp_s = ts;
    r.frame_index = index;
    r.det_score = d.score;
    r.label = in.label;
    r.source = in.name;
    r.group = in.group;
    RETURN_IF_ERROR(ctx.store.Append(ctx.crop, r));
    if (r.landmarks) ++ctx.report.landmark_faces;
    ++added;
  }
  return added;
}

Result<int> ExtractPhoto(Context& ctx, const LabelledInput& in) {
  cv::Mat img = cv::imread(in.path, cv::IMREAD_COLOR);
  if (img.empty()) return Status::CorruptInput("cannot read image " + in.path);
  int px = static_cast<int>(img.cols * ctx.options.image_pad), py = static_cast<int>(img.rows * ctx.options.image_pad);
  cv::Mat padded;
  cv::copyMakeBorder(img, padded, py, py, px, px, cv::BORDER_REFLECT_101);
  return AddFaces(ctx, padded, in, 0.0, 0, {static_cast<float>(px), static_cast<float>(py)});
}

Result<int> ExtractVideo(Context& ctx, const LabelledInput& in, int threads) {
  video::SourceOptions so;
  so.threads = threads;
  so.timeout_s = ctx.options.timeout_s;
  ASSIGN_OR_RETURN(std::unique_ptr<video::Source> source, video::Source::Open(in.path, so));
  std::unique_ptr<video::Sampler> sampler =
      video::MakeUniformSampler(source->info(), ctx.options.frames_per_video, 1.0);
  video::SampledFrames frames(source.get(), sampler.get());
  video::FrameRef k;
  cv::Mat bgr;
  int added = 0;
  while (true) {
    ASSIGN_OR_RETURN(bool more, frames.Next(&k));
    if (!more) break;
    RETURN_IF_ERROR(source->ToBgr(k, &bgr));
    ASSIGN_OR_RETURN(int n, AddFaces(ctx, bgr, in, k.timestamp_s(), k.index(), {0, 0}));
    added += n;
  }
  return added;
}

}  // namespace

bool IsPhotoPath(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".webp";
}

Result<ExtractReport> ExtractCrops(const std::vector<LabelledInput>& inputs, const ExtractOptions& options,
                                   CropStoreWriter* store, const ExtractProgress& progress) {
  int threads = options.threads > 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  cv::setNumThreads(threads);
  ASSIGN_OR_RETURN(std::unique_ptr<face::BlazeFaceDetector> detector,
                   face::BlazeFaceDetector::Create(options.detector, threads));
  ExtractReport report;
  std::unique_ptr<face::LandmarkModel> landmarks;
  if (options.landmarks) {
    const auto t0 = std::chrono::steady_clock::now();
    ASSIGN_OR_RETURN(landmarks, face::LandmarkModel::Load(options.landmark_model));
    report.landmark_load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  Context ctx{options, *detector, landmarks.get(), *store, report, {}};
  for (size_t i = 0; i < inputs.size(); ++i) {
    const LabelledInput& in = inputs[i];
    Result<int> n = IsPhotoPath(in.path) ? ExtractPhoto(ctx, in) : ExtractVideo(ctx, in, threads);
    if (!n.ok()) {
      Code c = n.status().code();
      if (c == Code::kIoError || c == Code::kInvalidModel || c == Code::kInternal) return n.status();
      report.failures.emplace_back(in.name, n.status());
    } else {
      ++report.inputs_ok;
      report.crops += *n;
      if (*n == 0) report.without_face.push_back(in.name);
    }
    if (progress) progress(static_cast<int>(i + 1), static_cast<int>(inputs.size()), report.crops);
  }
  return report;
}

}  // namespace deepscan::train
