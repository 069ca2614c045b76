#include "compress/calibration_data.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "face/blazeface.h"
#include "infer/classifier.h"
#include "infer/model_metadata.h"
#include "pipeline/face_finder.h"
#include "train/augment.h"
#include "train/crop_store.h"
#include "train/extract.h"
#include "video/sampler.h"
#include "video/source.h"

namespace deepscan::compress {
namespace {

namespace fs = std::filesystem;

bool IsVideoPath(const std::string& p) {
  std::string ext = fs::path(p).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".mp4" || ext == ".mov" || ext == ".mkv" || ext == ".avi" || ext == ".webm" || ext == ".m4v";
}

// Files named by `inputs`: the files themselves, and the videos and photos in named folders.
std::vector<std::string> ListInputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> files;
  for (const auto& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      std::vector<std::string> here;
      for (const auto& e : fs::directory_iterator(in, ec)) {
        const std::string p = e.path().string();
        if (e.is_regular_file() && (IsVideoPath(p) || train::IsPhotoPath(p))) here.push_back(p);
      }
      std::sort(here.begin(), here.end());
      files.insert(files.end(), here.begin(), here.end());
    } else {
      files.push_back(in);
    }
  }
  return files;
}

}  // namespace

Result<std::vector<CalibrationSample>> ClassifierSamples(const std::string& model_path, const std::string& store_path,
                                                         int max_samples) {
  if (max_samples < 1) return Status::InvalidArgument("calibration samples must be at least 1");
  ASSIGN_OR_RETURN(infer::ModelMetadata meta, infer::LoadModelMetadata(model_path));
  ASSIGN_OR_RETURN(std::unique_ptr<train::CropStoreReader> store, train::CropStoreReader::Open(store_path, 16));
  std::vector<int64_t> real;
  for (int64_t i = 0; i < store->size(); ++i) {
    if (store->records()[i].label == 0) real.push_back(i);
  }
  if (real.empty()) return Status::InvalidArgument("no real crop in " + store_path + " to calibrate on");
  const size_t n = std::min<size_t>(real.size(), static_cast<size_t>(max_samples));
  const int side = meta.input_size;
  std::vector<CalibrationSample> samples;
  samples.reserve(n);
  cv::Mat crop;
  for (size_t k = 0; k < n; ++k) {
    const int64_t row = real[k * real.size() / n];  // evenly over the store
    RETURN_IF_ERROR(store->Read(row, &crop));
    CalibrationSample s;
    s.shape = {1, 3, side, side};
    s.data.resize(static_cast<size_t>(3) * side * side);
    RETURN_IF_ERROR(infer::PackNchw({train::ResizeSquare(crop, side)}, 0, 1, meta, s.data.data()));
    samples.push_back(std::move(s));
  }
  return samples;
}

Result<std::vector<CalibrationSample>> DetectorSamples(const std::string& detector_path,
                                                       const std::vector<std::string>& inputs, int frames_per_clip,
                                                       int max_samples, int* skipped) {
  if (frames_per_clip < 1 || max_samples < 1) return Status::InvalidArgument("frame and sample counts must be >= 1");
  DetectorOptions dopt;
  dopt.model_path = detector_path;
  dopt.tiling = false;
  ASSIGN_OR_RETURN(std::unique_ptr<face::BlazeFaceDetector> det, face::BlazeFaceDetector::Create(dopt, 1));
  const int in = det->input_size();
  std::vector<CalibrationSample> samples;
  cv::Mat canvas;
  auto add = [&](const cv::Mat& bgr, const cv::Rect& roi) {
    if (static_cast<int>(samples.size()) >= max_samples) return;
    CalibrationSample s;
    s.shape = {1, in, in, 3};
    s.data.resize(static_cast<size_t>(in) * in * 3);
    if (face::BlazeFaceInput(bgr, roi, in, &canvas, s.data.data()) > 0) samples.push_back(std::move(s));
  };
  // One frame: the whole-frame input, then a re-find crop around each face found.
  auto use_frame = [&](const cv::Mat& bgr) -> Status {
    const int side = std::max(bgr.cols, bgr.rows);
    add(bgr, cv::Rect(0, 0, side, side));
    ASSIGN_OR_RETURN(std::vector<face::Detection> faces, det->Detect(bgr, false, nullptr));
    for (const auto& f : faces) add(bgr, face::RefindRegion(f.box, pipeline::kRefindContext));
    return Status::Ok();
  };
  int bad = 0;
  for (const std::string& path : ListInputs(inputs)) {
    if (static_cast<int>(samples.size()) >= max_samples) break;
    if (train::IsPhotoPath(path)) {
      cv::Mat img = cv::imread(path, cv::IMREAD_COLOR);
      if (img.empty()) {
        ++bad;
        continue;
      }
      RETURN_IF_ERROR(use_frame(img));
      continue;
    }
    video::SourceOptions so;
    so.threads = 1;
    auto source = video::Source::Open(path, so);
    if (!source.ok()) {
      ++bad;
      continue;
    }
    std::unique_ptr<video::Sampler> sampler = video::MakeUniformSampler((*source)->info(), frames_per_clip, 1.0);
    video::SampledFrames frames(source->get(), sampler.get());
    video::FrameRef f;
    cv::Mat bgr;
    while (static_cast<int>(samples.size()) < max_samples) {
      auto more = frames.Next(&f);
      if (!more.ok()) {
        ++bad;
        break;
      }
      if (!*more) break;
      if (!(*source)->ToBgr(f, &bgr).ok()) {
        ++bad;
        break;
      }
      RETURN_IF_ERROR(use_frame(bgr));
    }
  }
  if (skipped) *skipped = bad;
  if (samples.empty()) return Status::InvalidArgument("no usable frame in the calibration inputs");
  return samples;
}

OutputError DetectorOutputError(int input_size, float threshold) {
  return [input_size, threshold](const std::vector<std::vector<std::vector<float>>>& ref,
                                 const std::vector<std::vector<std::vector<float>>>& got,
                                 const std::vector<std::vector<int64_t>>& shapes) -> double {
    // Output indices by shape: fine (512) and coarse (384) scores and regressors.
    int score[2] = {-1, -1}, box[2] = {-1, -1};
    for (size_t k = 0; k < shapes.size(); ++k) {
      const auto& s = shapes[k];
      if (s.size() != 3) continue;
      const int slot = s[1] == 512 ? 0 : s[1] == 384 ? 1 : -1;
      if (slot < 0) continue;
      (s[2] == 1 ? score : box)[slot] = static_cast<int>(k);
    }
    if (score[0] < 0 || score[1] < 0 || box[0] < 0 || box[1] < 0) return MeanRelativeError(ref, got, shapes);
    auto decode = [&](const std::vector<std::vector<float>>& out, float thr) {
      std::vector<float> scores(out[score[0]]), regs(out[box[0]]);
      scores.insert(scores.end(), out[score[1]].begin(), out[score[1]].end());
      regs.insert(regs.end(), out[box[1]].begin(), out[box[1]].end());
      return face::WeightedNms(face::DecodeBlazeFace(scores.data(), regs.data(), input_size, thr),
                               DetectorOptions{}.nms_iou);
    };
    double err = 0;
    int faces = 0;
    for (size_t i = 0; i < ref.size() && i < got.size(); ++i) {
      std::vector<face::Detection> a = decode(ref[i], threshold), b = decode(got[i], threshold / 2);
      std::vector<bool> used(b.size(), false);
      for (const auto& d : a) {
        ++faces;
        int best = -1;
        float best_iou = 0.5f;
        for (size_t j = 0; j < b.size(); ++j) {
          const float iou = face::IoU(d.box, b[j].box);
          if (!used[j] && iou >= best_iou) best = static_cast<int>(j), best_iou = iou;
        }
        if (best < 0) {
          err += 1;
          continue;
        }
        used[best] = true;
        err += (1 - best_iou) + std::fabs(d.score - b[best].score);
      }
      for (size_t j = 0; j < b.size(); ++j) {
        if (!used[j] && b[j].score >= threshold) err += 1;
      }
    }
    return err / std::max(1, faces);
  };
}

QuantizeOptions ClassifierQuantizeOptions() {
  QuantizeOptions o;
  o.method = CalibrationMethod::kPercentile;
  o.max_float_layers = 4;
  o.target_error = 0.1;
  return o;
}

QuantizeOptions DetectorQuantizeOptions(int input_size) {
  QuantizeOptions o;
  o.method = CalibrationMethod::kPercentile;
  o.max_float_layers = 16;
  o.pad_channels = 16;
  o.target_error = 0.02;
  o.error = DetectorOutputError(input_size, DetectorOptions{}.score_threshold);
  return o;
}

Status WriteVariantMetadata(const std::string& source_onnx, const std::string& variant_onnx, const std::string& suffix,
                            const std::string& key, const std::string& extra_json) {
  ASSIGN_OR_RETURN(infer::ModelMetadata checked, infer::LoadModelMetadata(source_onnx));  // validates it
  (void)checked;
  return infer::EditMetadataJson(source_onnx, variant_onnx, [&](nlohmann::json& j) {
    nlohmann::json extra = nlohmann::json::parse(extra_json, nullptr, false);
    if (extra.is_discarded()) return Status::InvalidArgument("the " + key + " entry is not JSON");
    j["name"] = j.value("name", std::string("unnamed")) + suffix;
    j[key] = std::move(extra);
    return Status::Ok();
  });
}

}  // namespace deepscan::compress
