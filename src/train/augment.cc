#include "train/augment.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "train/random.h"
#include "video/recompress.h"

namespace deepscan::train {
namespace {

uint8_t Saturate(double v) { return cv::saturate_cast<uint8_t>(v); }

Status CheckBgr(const cv::Mat& bgr) {
  if (bgr.empty()) return Status::InvalidArgument("augment: empty image");
  if (bgr.type() != CV_8UC3) return Status::InvalidArgument("augment: image must be CV_8UC3 (BGR)");
  return Status::Ok();
}

}  // namespace

cv::Mat ResizeSquare(const cv::Mat& in, int side) {
  if (in.cols == side && in.rows == side) return in;
  cv::Mat out;
  const bool shrinking = in.cols > side || in.rows > side;
  cv::resize(in, out, cv::Size(side, side), 0, 0, shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
  return out;
}

ColorJitterParams SampleColorJitter(const ColorJitterOptions& o, float p, std::mt19937& rng) {
  ColorJitterParams params;
  params.apply = Chance(rng, p);
  if (!params.apply) return params;
  for (float& s : params.bgr_shift) s = Uniform(rng, -o.rgb_shift, o.rgb_shift);
  params.hue_shift = Uniform(rng, -o.hue_shift, o.hue_shift);
  params.saturation = Uniform(rng, o.saturation_min, o.saturation_max);
  params.value = Uniform(rng, o.value_min, o.value_max);
  params.contrast = Uniform(rng, o.contrast_min, o.contrast_max);
  params.brightness = Uniform(rng, -o.brightness, o.brightness);
  return params;
}

void ApplyColorJitter(const ColorJitterParams& params, cv::Mat* bgr) {
  if (!params.apply || bgr == nullptr || bgr->empty() || bgr->type() != CV_8UC3) return;
  // 1. RGB shift (saturating add).
  cv::add(*bgr, cv::Scalar(params.bgr_shift[0], params.bgr_shift[1], params.bgr_shift[2]), *bgr);
  // 2. HSV through one 3-channel lookup table (8-bit HSV: hue 0..179, saturation and value 0..255).
  cv::Mat hsv;
  cv::cvtColor(*bgr, hsv, cv::COLOR_BGR2HSV);
  cv::Mat lut(1, 256, CV_8UC3);
  const int hue_shift = static_cast<int>(std::lround(params.hue_shift));
  for (int i = 0; i < 256; ++i) {
    auto& e = lut.at<cv::Vec3b>(0, i);
    e[0] = static_cast<uint8_t>(i < 180 ? ((i + hue_shift) % 180 + 180) % 180 : i);
    e[1] = Saturate(i * static_cast<double>(params.saturation));
    e[2] = Saturate(i * static_cast<double>(params.value));
  }
  cv::LUT(hsv, lut, hsv);
  cv::cvtColor(hsv, *bgr, cv::COLOR_HSV2BGR);
  // 3. Contrast about mid-gray (a fixed pivot, not the image mean, so that the same parameters
  //    give the same per-pixel mapping on every image), then brightness.
  const double c = params.contrast;
  bgr->convertTo(*bgr, -1, c, 128.0 * (1.0 - c) + params.brightness);
}

BaseAugmentParams SampleBaseAugment(const BaseAugmentOptions& o, std::mt19937& rng) {
  BaseAugmentParams p;
  p.rotation_deg = Uniform(rng, -o.max_rotation_deg, o.max_rotation_deg);
  p.scale = Uniform(rng, o.scale_min, o.scale_max);
  p.shift_x = Uniform(rng, -o.max_shift, o.max_shift);
  p.shift_y = Uniform(rng, -o.max_shift, o.max_shift);
  p.color = SampleColorJitter(o.color, o.color_jitter_p, rng);
  p.grayscale = Chance(rng, o.grayscale_p);
  if (Chance(rng, o.low_res_p)) p.low_res_factor = Uniform(rng, o.low_res_min, o.low_res_max);
  if (Chance(rng, o.noise_p)) {
    p.noise_sigma = Uniform(rng, o.noise_sigma_min, o.noise_sigma_max);
    p.noise_seed = static_cast<uint32_t>(rng());
  }
  return p;
}

cv::Matx23d BaseAffine(const BaseAugmentParams& params, cv::Size size) {
  const cv::Point2f centre((size.width - 1) * 0.5f, (size.height - 1) * 0.5f);
  cv::Mat m = cv::getRotationMatrix2D(centre, params.rotation_deg, params.scale);  // CV_64F
  cv::Matx23d a(m.ptr<double>());
  a(0, 2) += params.shift_x * size.width;
  a(1, 2) += params.shift_y * size.height;
  return a;
}

Result<cv::Mat> ApplyBaseAugment(const BaseAugmentParams& params, const cv::Mat& bgr) {
  RETURN_IF_ERROR(CheckBgr(bgr));
  cv::Mat out;
  cv::warpAffine(bgr, out, cv::Mat(BaseAffine(params, bgr.size())), bgr.size(), cv::INTER_LINEAR,
                 cv::BORDER_REFLECT_101);
  ApplyColorJitter(params.color, &out);
  if (params.grayscale) {
    cv::Mat gray;
    cv::cvtColor(out, gray, cv::COLOR_BGR2GRAY);
    cv::cvtColor(gray, out, cv::COLOR_GRAY2BGR);
  }
  if (params.low_res_factor > 0 && params.low_res_factor < 1) {
    const cv::Size small(std::max(1, static_cast<int>(std::lround(out.cols * params.low_res_factor))),
                         std::max(1, static_cast<int>(std::lround(out.rows * params.low_res_factor))));
    cv::Mat down;
    cv::resize(out, down, small, 0, 0, cv::INTER_AREA);
    cv::resize(down, out, out.size(), 0, 0, cv::INTER_LINEAR);
  }
  if (params.noise_sigma > 0) {
    cv::Mat noise(out.size(), CV_32FC3);
    cv::RNG noise_rng(params.noise_seed);
    noise_rng.fill(noise, cv::RNG::NORMAL, 0.0, params.noise_sigma);
    cv::Mat f;
    out.convertTo(f, CV_32FC3);
    f += noise;
    f.convertTo(out, CV_8UC3);  // rounds and saturates
  }
  return out;
}

void TransformPoints(const BaseAugmentParams& params, cv::Size size, Point* points, size_t count) {
  const cv::Matx23d a = BaseAffine(params, size);
  for (size_t i = 0; i < count; ++i) {
    const double x = points[i].x, y = points[i].y;
    points[i].x = static_cast<float>(a(0, 0) * x + a(0, 1) * y + a(0, 2));
    points[i].y = static_cast<float>(a(1, 0) * x + a(1, 1) * y + a(1, 2));
  }
}

Keypoints TransformKeypoints(const BaseAugmentParams& params, const Keypoints& keypoints, cv::Size size) {
  Keypoints out = keypoints;
  TransformPoints(params, size, out.data(), out.size());
  return out;
}

DegradeParams SampleDegrade(const DegradeOptions& o, std::mt19937& rng) {
  DegradeParams p;
  if (!Chance(rng, o.p)) return p;
  p.apply = true;
  p.heavy = Chance(rng, o.heavy_p);
  if (Chance(rng, o.downscale_p)) p.downscale = Chance(rng, o.downscale4_share) ? 4 : 2;
  if (Chance(rng, o.h264_share)) {
    p.h264_crf = std::clamp(p.heavy ? UniformInt(rng, o.crf_heavy_min, o.crf_heavy_max)
                                    : UniformInt(rng, o.crf_light_min, o.crf_light_max),
                            0, 51);
  } else {
    p.jpeg_quality = std::clamp(p.heavy ? UniformInt(rng, o.jpeg_heavy_min, o.jpeg_heavy_max)
                                        : UniformInt(rng, o.jpeg_light_min, o.jpeg_light_max),
                                1, 100);
  }
  return p;
}

Result<cv::Mat> ApplyDegrade(const DegradeParams& params, const cv::Mat& bgr) {
  RETURN_IF_ERROR(CheckBgr(bgr));
  if (!params.apply) return bgr.clone();
  cv::Mat out = bgr;
  if (params.downscale > 1) {
    const cv::Size small(std::max(8, static_cast<int>(std::lround(bgr.cols / static_cast<double>(params.downscale)))),
                         std::max(8, static_cast<int>(std::lround(bgr.rows / static_cast<double>(params.downscale)))));
    cv::resize(bgr, out, small, 0, 0, cv::INTER_AREA);
  }
  if (params.h264_crf >= 0) {
    ASSIGN_OR_RETURN(out, video::H264RoundTrip(out, params.h264_crf));
  } else if (params.jpeg_quality > 0) {
    std::vector<uint8_t> bytes;
    const std::vector<int> flags = {cv::IMWRITE_JPEG_QUALITY, params.jpeg_quality};
    if (!cv::imencode(".jpg", out, bytes, flags)) return Status::Internal("degrade: JPEG encode failed");
    cv::Mat decoded = cv::imdecode(bytes, cv::IMREAD_COLOR);
    if (decoded.empty() || decoded.size() != out.size()) return Status::Internal("degrade: JPEG decode failed");
    out = decoded;
  }
  if (out.size() != bgr.size()) {
    cv::Mat up;
    cv::resize(out, up, bgr.size(), 0, 0, cv::INTER_LINEAR);
    return up;
  }
  return out.data == bgr.data ? bgr.clone() : out;
}

FinalAugmentParams SampleFinalAugment(const FinalAugmentOptions& o, std::mt19937& rng) {
  FinalAugmentParams p;
  p.crop_side = std::clamp(Uniform(rng, o.crop_min, o.crop_max), 0.0f, 1.0f);
  p.crop_x = Uniform(rng, 0.0f, 1.0f);
  p.crop_y = Uniform(rng, 0.0f, 1.0f);
  p.flip = Chance(rng, o.flip_p);
  if (Chance(rng, o.blur_p)) p.blur_sigma = Uniform(rng, o.blur_sigma_min, o.blur_sigma_max);
  if (Chance(rng, o.jpeg_p)) {
    p.jpeg_quality = std::clamp(UniformInt(rng, o.jpeg_quality_min, o.jpeg_quality_max), 1, 100);
  }
  if (Chance(rng, o.h264_p)) p.h264_crf = std::clamp(UniformInt(rng, o.h264_crf_min, o.h264_crf_max), 0, 51);
  p.output_size = o.output_size;
  return p;
}

cv::Rect FinalCropRect(const FinalAugmentParams& params, cv::Size size) {
  const int shorter = std::min(size.width, size.height);
  const int side = std::clamp(static_cast<int>(std::lround(params.crop_side * shorter)), 1, shorter);
  const int x = static_cast<int>(std::lround(std::clamp(params.crop_x, 0.0f, 1.0f) * (size.width - side)));
  const int y = static_cast<int>(std::lround(std::clamp(params.crop_y, 0.0f, 1.0f) * (size.height - side)));
  return {x, y, side, side};
}

Result<cv::Mat> ApplyFinalAugment(const FinalAugmentParams& params, const cv::Mat& bgr) {
  RETURN_IF_ERROR(CheckBgr(bgr));
  if (params.output_size < 1) return Status::InvalidArgument("augment: output_size must be >= 1");
  cv::Mat out = bgr(FinalCropRect(params, bgr.size())).clone();
  if (params.flip) cv::flip(out, out, 1);
  if (params.blur_sigma > 0) {
    cv::GaussianBlur(out, out, cv::Size(0, 0), params.blur_sigma, params.blur_sigma, cv::BORDER_REFLECT_101);
  }
  if (params.jpeg_quality > 0) {
    std::vector<uint8_t> bytes;
    const std::vector<int> flags = {cv::IMWRITE_JPEG_QUALITY, params.jpeg_quality};
    if (!cv::imencode(".jpg", out, bytes, flags)) return Status::Internal("augment: JPEG encode failed");
    cv::Mat decoded = cv::imdecode(bytes, cv::IMREAD_COLOR);
    if (decoded.empty() || decoded.size() != out.size()) {
      return Status::Internal("augment: JPEG decode failed");
    }
    out = decoded;
  }
  if (params.h264_crf >= 0) {
    ASSIGN_OR_RETURN(out, video::H264RoundTrip(out, params.h264_crf));
  }
  return ResizeSquare(out, params.output_size);
}

Result<cv::Mat> ApplyFinalAugmentToMask(const FinalAugmentParams& params, const cv::Mat& mask) {
  if (mask.empty() || mask.type() != CV_32FC1) {
    return Status::InvalidArgument("augment: mask must be a non-empty CV_32FC1 image");
  }
  if (params.output_size < 1) return Status::InvalidArgument("augment: output_size must be >= 1");
  cv::Mat out = mask(FinalCropRect(params, mask.size())).clone();
  if (params.flip) cv::flip(out, out, 1);
  return ResizeSquare(out, params.output_size);
}

}  // namespace deepscan::train
