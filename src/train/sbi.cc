#include "train/sbi.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <tuple>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "train/random.h"

namespace deepscan::train {
namespace {

cv::Point2d P(const Point& p) { return {p.x, p.y}; }

bool Finite(const Keypoints& k) {
  return std::all_of(k.begin(), k.end(), [](const Point& p) { return std::isfinite(p.x) && std::isfinite(p.y); });
}

Status CheckCrop(const cv::Mat& bgr, const char* what) {
  if (bgr.empty() || bgr.type() != CV_8UC3) {
    return Status::InvalidArgument(std::string("pseudo-fake: ") + what + " must be a non-empty CV_8UC3 image");
  }
  return Status::Ok();
}

// Divides by the maximum so it becomes 1; false when the mask is all zero.
bool NormaliseMax(cv::Mat* mask) {
  double max_value = 0;
  cv::minMaxLoc(*mask, nullptr, &max_value);
  if (!(max_value > 0)) return false;
  *mask *= 1.0 / max_value;
  cv::min(*mask, 1.0, *mask);  // guard against rounding above 1
  cv::max(*mask, 0.0, *mask);
  return true;
}

// image = target + mask * (source - target), per pixel in float, rounded; exact where mask == 0.
cv::Mat Blend(const cv::Mat& source, const cv::Mat& target, const cv::Mat& mask) {
  cv::Mat out(target.size(), CV_8UC3);
  for (int y = 0; y < target.rows; ++y) {
    const auto* s = source.ptr<cv::Vec3b>(y);
    const auto* t = target.ptr<cv::Vec3b>(y);
    const auto* m = mask.ptr<float>(y);
    auto* o = out.ptr<cv::Vec3b>(y);
    for (int x = 0; x < target.cols; ++x) {
      if (m[x] == 0.0f) {
        o[x] = t[x];
        continue;
      }
      for (int c = 0; c < 3; ++c) {
        o[x][c] = cv::saturate_cast<uint8_t>(t[x][c] + m[x] * (static_cast<float>(s[x][c]) - t[x][c]));
      }
    }
  }
  return out;
}

// Least-squares similarity (rotation, uniform scale, translation) taking `from` onto `to`.
cv::Matx23d FitSimilarity(const std::vector<cv::Point2d>& from, const std::vector<cv::Point2d>& to) {
  cv::Point2d mf(0, 0), mt(0, 0);
  for (size_t i = 0; i < from.size(); ++i) {
    mf += from[i];
    mt += to[i];
  }
  mf *= 1.0 / from.size();
  mt *= 1.0 / to.size();
  double num_a = 0, num_b = 0, den = 0;
  for (size_t i = 0; i < from.size(); ++i) {
    const cv::Point2d p = from[i] - mf, q = to[i] - mt;
    num_a += p.x * q.x + p.y * q.y;
    num_b += p.x * q.y - p.y * q.x;
    den += p.x * p.x + p.y * p.y;
  }
  const double a = den > 0 ? num_a / den : 1.0, b = den > 0 ? num_b / den : 0.0;
  // [x'; y'] = [a -b; b a] (p - mf) + mt
  return {a, -b, mt.x - (a * mf.x - b * mf.y), b, a, mt.y - (b * mf.x + a * mf.y)};
}

// Sharpen: mixes a 3x3 Laplacian sharpening kernel (sums to 1) into the identity by `amount`.
cv::Mat Sharpen(const cv::Mat& bgr, float amount) {
  cv::Mat kernel = (cv::Mat_<float>(3, 3) << -1, -1, -1, -1, 9, -1, -1, -1, -1) * amount;
  kernel.at<float>(1, 1) += 1.0f - amount;
  cv::Mat out;
  cv::filter2D(bgr, out, -1, kernel, cv::Point(-1, -1), 0, cv::BORDER_REFLECT_101);
  return out;
}

cv::Mat DownUp(const cv::Mat& bgr, float factor) {
  const cv::Size small(std::max(1, static_cast<int>(std::lround(bgr.cols * factor))),
                       std::max(1, static_cast<int>(std::lround(bgr.rows * factor))));
  cv::Mat down, up;
  cv::resize(bgr, down, small, 0, 0, cv::INTER_AREA);
  cv::resize(down, up, bgr.size(), 0, 0, cv::INTER_LINEAR);
  return up;
}

// The edge steps every mask shape gets: erode or dilate (an erosion that would remove everything
// is skipped), one or two Gaussian blurs, renormalised to max 1.
Status FinishEdges(const MaskOptions& o, std::mt19937& rng, cv::Mat* mask_ptr) {
  cv::Mat& mask = *mask_ptr;
  const float pick = Uniform(rng, 0.0f, 1.0f);
  const int k_side = UniformInt(rng, o.morph_min, o.morph_max);
  if (k_side > 1 && pick < o.erode_p + o.dilate_p) {
    const cv::Mat element = cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(k_side, k_side));
    cv::Mat changed;
    if (pick < o.erode_p) {
      cv::erode(mask, changed, element);
    } else {
      cv::dilate(mask, changed, element);
    }
    if (cv::countNonZero(changed) > 0) mask = changed;
  }

  const float sigma = Uniform(rng, o.blur_sigma_min, o.blur_sigma_max);
  if (sigma > 0) cv::GaussianBlur(mask, mask, cv::Size(0, 0), sigma, sigma, cv::BORDER_CONSTANT);
  if (Chance(rng, o.second_blur_p)) {
    const float sigma2 = Uniform(rng, o.second_blur_sigma_min, o.second_blur_sigma_max);
    if (sigma2 > 0) cv::GaussianBlur(mask, mask, cv::Size(0, 0), sigma2, sigma2, cv::BORDER_CONSTANT);
  }
  if (!NormaliseMax(&mask)) return Status::InvalidArgument("blend mask: empty after blurring");
  return Status::Ok();
}

}  // namespace

Result<cv::Mat> MakeBlendMask(const Keypoints& k, cv::Size size, const MaskOptions& o, std::mt19937& rng) {
  if (size.width < 1 || size.height < 1) return Status::InvalidArgument("blend mask: empty size");
  if (!Finite(k)) return Status::InvalidArgument("blend mask: non-finite keypoints");
  if (o.vertices < 3) return Status::InvalidArgument("blend mask: vertices must be >= 3");
  const cv::Point2d eyes = (P(k[kRightEye]) + P(k[kLeftEye])) * 0.5;
  const cv::Point2d down_vec = P(k[kMouth]) - eyes;
  const double eye_mouth = std::hypot(down_vec.x, down_vec.y);
  if (eye_mouth < 2.0) return Status::InvalidArgument("blend mask: eyes and mouth under 2 px apart");
  const cv::Point2d eye_vec = P(k[kLeftEye]) - P(k[kRightEye]);
  const double inter_eye = std::hypot(eye_vec.x, eye_vec.y);
  const cv::Point2d v = down_vec * (1.0 / eye_mouth);  // along the face, downwards
  const cv::Point2d u(-v.y, v.x);                      // across the face

  const cv::Point2d centre = eyes + down_vec * static_cast<double>(Uniform(rng, o.centre_min, o.centre_max));
  const double semi_v = eye_mouth * Uniform(rng, o.vertical_min, o.vertical_max);
  const double semi_u =
      std::max(inter_eye, o.eye_mouth_floor * eye_mouth) * Uniform(rng, o.horizontal_min, o.horizontal_max);

  // Radial noise: uniform per vertex, smoothed twice around the ring with [1 2 1]/4, then scaled
  // so that its largest deviation is exactly radial_noise.
  const int n = o.vertices;
  std::vector<double> noise(n);
  for (double& e : noise) e = Uniform(rng, -1.0f, 1.0f);
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<double> smoothed(n);
    for (int i = 0; i < n; ++i) {
      smoothed[i] = 0.25 * noise[(i + n - 1) % n] + 0.5 * noise[i] + 0.25 * noise[(i + 1) % n];
    }
    noise = std::move(smoothed);
  }
  double largest = 0;
  for (double e : noise) largest = std::max(largest, std::abs(e));
  const double noise_scale = largest > 0 ? o.radial_noise / largest : 0.0;

  constexpr int kShift = 4;  // sub-pixel bits for fillPoly
  std::vector<cv::Point> polygon(n);
  for (int i = 0; i < n; ++i) {
    const double theta = 2.0 * std::numbers::pi * i / n;
    const double r = 1.0 + noise[i] * noise_scale;
    const cv::Point2d p = centre + u * (semi_u * r * std::cos(theta)) + v * (semi_v * r * std::sin(theta));
    polygon[i] = cv::Point(static_cast<int>(std::lround(p.x * (1 << kShift))),
                           static_cast<int>(std::lround(p.y * (1 << kShift))));
  }
  cv::Mat mask = cv::Mat::zeros(size, CV_32FC1);
  cv::fillPoly(mask, std::vector<std::vector<cv::Point>>{polygon}, cv::Scalar(1.0), cv::LINE_8, kShift);
  if (cv::countNonZero(mask) == 0) {
    return Status::InvalidArgument("blend mask: the face polygon lies outside the image");
  }

  RETURN_IF_ERROR(FinishEdges(o, rng, &mask));
  return mask;
}

const char* HullRegionName(HullRegion r) {
  switch (r) {
    case HullRegion::kFace: return "face";
    case HullRegion::kForehead: return "forehead";
    case HullRegion::kInner: return "inner";
    case HullRegion::kLower: return "lower";
  }
  return "unknown";
}

Result<cv::Mat> MakeHullMask(const Landmarks68& l, cv::Size size, const HullMaskOptions& o, std::mt19937& rng,
                             HullRegion* region_out) {
  if (size.width < 1 || size.height < 1) return Status::InvalidArgument("hull mask: empty size");
  for (const Point& p : l) {
    if (!std::isfinite(p.x) || !std::isfinite(p.y)) return Status::InvalidArgument("hull mask: non-finite landmarks");
  }
  const float weights[] = {o.face_w, o.forehead_w, o.inner_w, o.lower_w};
  float total = 0;
  for (float w : weights) total += std::max(0.0f, w);
  if (!(total > 0)) return Status::InvalidArgument("hull mask: every region weight is 0");
  float pick = Uniform(rng, 0.0f, total);
  int chosen = 0;
  while (chosen < 3 && pick >= std::max(0.0f, weights[chosen])) pick -= std::max(0.0f, weights[chosen++]);
  while (chosen > 0 && !(weights[chosen] > 0)) --chosen;  // never a zero-weight region (rounding at the end)
  const auto region = static_cast<HullRegion>(chosen);
  if (region_out) *region_out = region;

  std::vector<cv::Point2f> pts;
  auto add = [&](int from, int to) {
    for (int i = from; i <= to; ++i) pts.emplace_back(l[i].x, l[i].y);
  };
  switch (region) {
    case HullRegion::kFace: add(0, 67); break;
    case HullRegion::kForehead: {
      add(0, 67);
      // The brows raised along the face's axis (nose tip -> brow centre), so the hull reaches the
      // forehead as SBI's 81-point model does.
      cv::Point2d brow(0, 0);
      for (int i = 17; i <= 26; ++i) brow += P(l[i]);
      brow *= 0.1;
      const cv::Point2d up = brow - P(l[30]);
      const double lift = Uniform(rng, o.forehead_min, o.forehead_max);
      for (int i = 17; i <= 26; ++i) {
        const cv::Point2d q = P(l[i]) + up * lift;
        pts.emplace_back(static_cast<float>(q.x), static_cast<float>(q.y));
      }
      break;
    }
    case HullRegion::kInner: add(17, 67); break;
    case HullRegion::kLower: add(1, 15); add(29, 35); add(48, 67); break;
  }
  std::vector<cv::Point2f> hull;
  cv::convexHull(pts, hull);
  const cv::Rect2f box = cv::boundingRect(hull);
  const double face = std::max(box.width, box.height);
  if (!(face >= 4)) return Status::InvalidArgument("hull mask: the landmarks span under 4 px");

  constexpr int kShift = 4;
  std::vector<cv::Point> polygon;
  for (const cv::Point2f& p : hull) {
    polygon.emplace_back(static_cast<int>(std::lround(p.x * (1 << kShift))),
                         static_cast<int>(std::lround(p.y * (1 << kShift))));
  }
  cv::Mat mask = cv::Mat::zeros(size, CV_32FC1);
  cv::fillConvexPoly(mask, polygon, cv::Scalar(1.0), cv::LINE_8, kShift);
  if (cv::countNonZero(mask) == 0) return Status::InvalidArgument("hull mask: the hull lies outside the image");

  if (Chance(rng, o.elastic_p) && o.elastic_alpha > 0) {
    // A smooth random displacement field (uniform noise, Gaussian-smoothed, scaled so its largest
    // component is alpha × face size) warps the hull's outline; the seed is drawn from `rng`.
    cv::Mat dx(size, CV_32FC1), dy(size, CV_32FC1);
    cv::RNG field(static_cast<uint64_t>(rng()) << 32 | rng());
    field.fill(dx, cv::RNG::UNIFORM, -1.0, 1.0);
    field.fill(dy, cv::RNG::UNIFORM, -1.0, 1.0);
    const double sigma = std::max(1.0, o.elastic_sigma * face);
    cv::GaussianBlur(dx, dx, cv::Size(0, 0), sigma, sigma, cv::BORDER_REFLECT_101);
    cv::GaussianBlur(dy, dy, cv::Size(0, 0), sigma, sigma, cv::BORDER_REFLECT_101);
    double lo, hi, largest = 0;
    for (const cv::Mat& d : {dx, dy}) {
      cv::minMaxLoc(d, &lo, &hi);
      largest = std::max({largest, std::abs(lo), std::abs(hi)});
    }
    if (largest > 0) {
      const double gain = o.elastic_alpha * face / largest;
      cv::Mat map_x(size, CV_32FC1), map_y(size, CV_32FC1);
      for (int y = 0; y < size.height; ++y) {
        const float* ux = dx.ptr<float>(y);
        const float* uy = dy.ptr<float>(y);
        float* mx = map_x.ptr<float>(y);
        float* my = map_y.ptr<float>(y);
        for (int x = 0; x < size.width; ++x) {
          mx[x] = static_cast<float>(x + gain * ux[x]);
          my[x] = static_cast<float>(y + gain * uy[x]);
        }
      }
      cv::Mat warped;
      cv::remap(mask, warped, map_x, map_y, cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar(0));
      cv::threshold(warped, warped, 0.5, 1.0, cv::THRESH_BINARY);
      if (cv::countNonZero(warped) > 0) mask = warped;
    }
  }
  RETURN_IF_ERROR(FinishEdges(o.edge, rng, &mask));
  return mask;
}

namespace {

// The fields of SbiOptions that make the frequency change, as one tuple (of references).
template <typename Options>
auto FrequencyFields(Options& o) {
  return std::tie(o.sharpen_p, o.blur_p, o.resize_p, o.sharpen_min, o.sharpen_max, o.resize_min, o.resize_max);
}

SbiOptions PublishedFrequency() {
  SbiOptions p;
  p.sharpen_p = 0.5f;
  p.blur_p = 0.0f;
  p.resize_p = 0.5f;
  p.sharpen_min = 0.2f;
  p.sharpen_max = 0.5f;
  p.resize_min = 0.25f;
  p.resize_max = 0.5f;
  return p;
}

}  // namespace

void SetSbiFrequency(SbiOptions* o, bool published) {
  const SbiOptions from = published ? PublishedFrequency() : SbiOptions{};
  FrequencyFields(*o) = FrequencyFields(from);
}

bool HasSbiPublishedFrequency(const SbiOptions& o) {
  const SbiOptions published = PublishedFrequency();
  return FrequencyFields(o) == FrequencyFields(published);
}

Result<BlendSample> MakeSelfBlended(const cv::Mat& crop, const Keypoints& keypoints, const SbiOptions& o,
                                    std::mt19937& rng, const Landmarks68* landmarks) {
  RETURN_IF_ERROR(CheckCrop(crop, "crop"));
  BlendSample sample;
  cv::Mat shape;
  if (landmarks != nullptr && Chance(rng, o.hull_p)) {
    sample.hull = true;
    ASSIGN_OR_RETURN(shape, MakeHullMask(*landmarks, crop.size(), o.hull, rng, &sample.region));
  } else {
    ASSIGN_OR_RETURN(shape, MakeBlendMask(keypoints, crop.size(), o.mask, rng));
  }

  // The source transform: colour jitter, then one frequency change.
  cv::Mat transformed = crop.clone();
  ApplyColorJitter(SampleColorJitter(o.color, o.color_jitter_p, rng), &transformed);
  const float pick = Uniform(rng, 0.0f, 1.0f);
  if (pick < o.sharpen_p) {
    sample.frequency = FrequencyOp::kSharpen;
    transformed = Sharpen(transformed, Uniform(rng, o.sharpen_min, o.sharpen_max));
  } else if (pick < o.sharpen_p + o.blur_p) {
    sample.frequency = FrequencyOp::kBlur;
    const float sigma = Uniform(rng, o.blur_sigma_min, o.blur_sigma_max);
    cv::GaussianBlur(transformed, transformed, cv::Size(0, 0), sigma, sigma, cv::BORDER_REFLECT_101);
  } else if (pick < o.sharpen_p + o.blur_p + o.resize_p) {
    sample.frequency = FrequencyOp::kResize;
    transformed = DownUp(transformed, Uniform(rng, o.resize_min, o.resize_max));
  }

  sample.swapped = Chance(rng, o.swap_p);
  cv::Mat source = sample.swapped ? crop.clone() : transformed;
  sample.target = sample.swapped ? transformed : crop.clone();

  // The same small affine moves the source and the mask: the blended face sits slightly off.
  const double scale = Uniform(rng, o.affine_scale_min, o.affine_scale_max);
  const double dx = Uniform(rng, -o.affine_max_shift, o.affine_max_shift) * crop.cols;
  const double dy = Uniform(rng, -o.affine_max_shift, o.affine_max_shift) * crop.rows;
  cv::Mat affine = cv::getRotationMatrix2D(cv::Point2f((crop.cols - 1) * 0.5f, (crop.rows - 1) * 0.5f), 0.0, scale);
  affine.at<double>(0, 2) += dx;
  affine.at<double>(1, 2) += dy;
  cv::warpAffine(source, sample.source, affine, crop.size(), cv::INTER_LINEAR, cv::BORDER_REFLECT_101);
  cv::Mat moved;
  cv::warpAffine(shape, moved, affine, crop.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar(0));
  if (!NormaliseMax(&moved)) return Status::InvalidArgument("self-blend: the mask left the crop");

  if (o.alpha_choices.empty()) {
    sample.alpha = Uniform(rng, o.alpha_min, o.alpha_max);
  } else {
    sample.alpha = std::clamp(o.alpha_choices[UniformInt(rng, 0, static_cast<int>(o.alpha_choices.size()) - 1)],
                              0.0f, 1.0f);
  }
  sample.mask = moved * sample.alpha;
  sample.image = Blend(sample.source, sample.target, sample.mask);
  return sample;
}

cv::Mat ReinhardTransfer(const cv::Mat& source, const cv::Mat& target, const cv::Mat& region) {
  cv::Mat src_f, tgt_f, src_lab, tgt_lab;
  source.convertTo(src_f, CV_32FC3, 1.0 / 255.0);
  target.convertTo(tgt_f, CV_32FC3, 1.0 / 255.0);
  cv::cvtColor(src_f, src_lab, cv::COLOR_BGR2Lab);
  cv::cvtColor(tgt_f, tgt_lab, cv::COLOR_BGR2Lab);
  cv::Mat select = region > 0.5f;  // CV_8U
  if (cv::countNonZero(select) < 16) select = cv::Mat(region.size(), CV_8U, cv::Scalar(255));
  cv::Scalar src_mean, src_std, tgt_mean, tgt_std;
  cv::meanStdDev(src_lab, src_mean, src_std, select);
  cv::meanStdDev(tgt_lab, tgt_mean, tgt_std, select);
  std::vector<cv::Mat> channels;
  cv::split(src_lab, channels);
  for (int c = 0; c < 3; ++c) {
    const double gain = tgt_std[c] / std::max(src_std[c], 1e-3);
    channels[c].convertTo(channels[c], CV_32F, gain, tgt_mean[c] - gain * src_mean[c]);
  }
  cv::merge(channels, src_lab);
  cv::Mat bgr_f, out;
  cv::cvtColor(src_lab, bgr_f, cv::COLOR_Lab2BGR);
  bgr_f.convertTo(out, CV_8UC3, 255.0);  // rounds and saturates
  return out;
}

Result<BlendSample> MakeCrossBlended(const cv::Mat& target, const Keypoints& target_keypoints, const cv::Mat& donor,
                                     const Keypoints& donor_keypoints, const CrossBlendOptions& o, std::mt19937& rng) {
  RETURN_IF_ERROR(CheckCrop(target, "target"));
  RETURN_IF_ERROR(CheckCrop(donor, "donor"));
  if (!Finite(donor_keypoints)) return Status::InvalidArgument("cross-blend: non-finite donor keypoints");
  ASSIGN_OR_RETURN(cv::Mat shape, MakeBlendMask(target_keypoints, target.size(), o.mask, rng));

  std::vector<cv::Point2d> from, to;
  for (int i : {kRightEye, kLeftEye, kNoseTip, kMouth}) {
    from.push_back(P(donor_keypoints[i]));
    to.push_back(P(target_keypoints[i]));
  }
  const cv::Matx23d similarity = FitSimilarity(from, to);
  if (!(std::abs(similarity(0, 0)) + std::abs(similarity(1, 0)) > 1e-6)) {
    return Status::InvalidArgument("cross-blend: degenerate donor keypoints");
  }
  BlendSample sample;
  cv::Mat aligned;
  cv::warpAffine(donor, aligned, cv::Mat(similarity), target.size(), cv::INTER_LINEAR, cv::BORDER_REFLECT_101);
  sample.source = o.color_transfer ? ReinhardTransfer(aligned, target, shape) : aligned;
  sample.target = target.clone();
  sample.alpha = Uniform(rng, o.alpha_min, o.alpha_max);
  sample.mask = shape * sample.alpha;
  sample.image = Blend(sample.source, sample.target, sample.mask);
  return sample;
}

}  // namespace deepscan::train
