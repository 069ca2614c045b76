#include "face/landmarks.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <utility>

#include <dlib/image_processing/shape_predictor.h>
#include <dlib/opencv/cv_image.h>
#include <dlib/serialize.h>

namespace deepscan::face {

struct LandmarkModel::Impl {
  dlib::shape_predictor predictor;
};

Box MapBox(const Box& box, const LandmarkBoxMapping& m) {
  const float cx = box.x + box.w / 2 + m.dx * box.w, cy = box.y + box.h / 2 + m.dy * box.h;
  const float w = box.w * m.sx, h = box.h * m.sy;
  return {cx - w / 2, cy - h / 2, w, h};
}

double NormalisedLandmarkError(const Landmarks& a, const Landmarks& b) {
  const double iod = std::hypot(b[45].x - b[36].x, b[45].y - b[36].y);
  if (iod <= 0) return std::numeric_limits<double>::infinity();
  double sum = 0;
  for (int i = 0; i < kLandmarkCount; ++i) sum += std::hypot(a[i].x - b[i].x, a[i].y - b[i].y);
  return sum / kLandmarkCount / iod;
}

LandmarkModel::LandmarkModel(std::unique_ptr<Impl> impl, const LandmarkBoxMapping& mapping, std::string path)
    : impl_(std::move(impl)), mapping_(mapping), path_(std::move(path)) {}
LandmarkModel::~LandmarkModel() = default;

Result<std::unique_ptr<LandmarkModel>> LandmarkModel::Load(const std::string& path, const LandmarkBoxMapping& mapping) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::InvalidModel("landmark model not found: " + path +
                                " (Debian: apt-get install libdlib-data, or pass --landmark-model)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidModel("cannot open landmark model " + path);
  auto impl = std::make_unique<Impl>();
  try {
    dlib::deserialize(impl->predictor, in);
  } catch (const std::exception& e) {
    // dlib::serialization_error for a wrong version tag or a truncated file (its first line says what
    // failed, the others the nesting); bad_alloc for junk lengths.
    std::string why = e.what();
    why = why.substr(0, why.find('\n'));
    while (!why.empty() && std::isspace(static_cast<unsigned char>(why.front()))) why.erase(0, 1);
    return Status::InvalidModel(path + " is not a dlib shape predictor, or is truncated: " + why);
  }
  if (impl->predictor.num_parts() != kLandmarkCount) {
    return Status::InvalidModel(path + ": a shape predictor with " + std::to_string(impl->predictor.num_parts()) +
                                " parts; expected the 68-point one");
  }
  return std::unique_ptr<LandmarkModel>(new LandmarkModel(std::move(impl), mapping, path));
}

Result<Landmarks> LandmarkModel::Predict(const cv::Mat& bgr, const Box& box) const {
  return PredictFromDlibBox(bgr, MapBox(box, mapping_));
}

Result<Landmarks> LandmarkModel::PredictFromDlibBox(const cv::Mat& bgr, const Box& box) const {
  if (bgr.empty() || bgr.type() != CV_8UC3) return Status::InvalidArgument("landmarks need an 8-bit BGR image");
  if (!std::isfinite(box.x) || !std::isfinite(box.y) || !std::isfinite(box.w) || !std::isfinite(box.h) || box.w < 1 ||
      box.h < 1) {
    return Status::InvalidArgument("landmarks need a finite face box of at least 1 px");
  }
  // dlib rectangles are inclusive: [left, right] holds right - left + 1 pixels.
  const long left = std::lround(box.x), top = std::lround(box.y);
  const long right = std::max(left, std::lround(box.x + box.w) - 1);
  const long bottom = std::max(top, std::lround(box.y + box.h) - 1);
  dlib::cv_image<dlib::bgr_pixel> image(bgr);
  const dlib::full_object_detection shape = impl_->predictor(image, dlib::rectangle(left, top, right, bottom));
  Landmarks out;
  for (int i = 0; i < kLandmarkCount; ++i) {
    out[i] = {static_cast<float>(shape.part(i).x()), static_cast<float>(shape.part(i).y())};
  }
  return out;
}

}  // namespace deepscan::face
