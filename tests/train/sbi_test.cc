// Tests for train/sbi: Self-Blended Images and cross-identity blends on synthetic faces, plus
// an example figure from shared real faces (skipped when the data or the detector is absent).
#include "train/sbi.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "deepscan/options.h"
#include "face/blazeface.h"
#include "face/crop.h"
#include "synthetic_face.h"
#include "test_env.h"
#include "train/augment.h"
#include "video/frame_stats.h"

namespace deepscan::train {
namespace {

namespace fs = std::filesystem;
using testing::FaceKeypoints;
using testing::FaceLandmarks;
using testing::SyntheticFace;

constexpr int kSide = testing::kSyntheticSide;

BlendSample MustSbi(const cv::Mat& crop, const Keypoints& k, uint32_t seed, const SbiOptions& o = {}) {
  std::mt19937 rng(seed);
  Result<BlendSample> r = MakeSelfBlended(crop, k, o, rng);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : BlendSample{};
}

// The documented bound for mask > 0.1 with the default options on FaceKeypoints(): the largest
// ellipse (centre 0.35-0.55 of eyes->mouth, semi-axes 1.0 × max(inter-eye, 0.8 d) across and
// 1.3 d along, radial noise +8%) grown by a margin M = 40 px, which covers the largest dilation
// (radius 7), where the two blurs (combined sigma <= 8.9) still exceed 0.1 (< 18 px), and the
// source affine (scale 1.05 about the crop centre: < 5 px here; shift 3% of 256: < 8 px).
cv::Rect2f DocumentedBound(const Keypoints& k) {
  const float ie = k[kLeftEye].x - k[kRightEye].x;
  const float eyes_y = k[kRightEye].y, d = k[kMouth].y - eyes_y, cx = k[kMouth].x;
  const float semi_x = 1.08f * 1.0f * std::max(ie, 0.8f * d), semi_y = 1.08f * 1.3f * d;
  const float margin = 40;
  const float top = eyes_y + 0.35f * d - semi_y - margin, bottom = eyes_y + 0.55f * d + semi_y + margin;
  return {cx - semi_x - margin, top, 2 * (semi_x + margin), bottom - top};
}

TEST(BlendMask, ShapeValuesAndOrientation) {
  const Keypoints k = FaceKeypoints();
  for (uint32_t seed = 0; seed < 50; ++seed) {
    std::mt19937 rng(seed);
    Result<cv::Mat> m = MakeBlendMask(k, cv::Size(kSide, kSide), MaskOptions{}, rng);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    ASSERT_EQ(m->type(), CV_32FC1);
    double lo = 0, hi = 0;
    cv::minMaxLoc(*m, &lo, &hi);
    EXPECT_GE(lo, 0.0);
    EXPECT_FLOAT_EQ(hi, 1.0f);
    // The face centre (between the eyes and the mouth) is fully inside.
    EXPECT_GT(m->at<float>(125, 128), 0.9f) << "seed " << seed;
  }
  // A face lying on its side (eyes above each other, mouth to the right): the mask is wider
  // than tall, since the long axis follows eyes->mouth.
  Keypoints side;
  side[kRightEye] = {110, 148};
  side[kLeftEye] = {110, 108};
  side[kNoseTip] = {130, 128};
  side[kMouth] = {150, 128};
  side[kRightEar] = {120, 168};
  side[kLeftEar] = {120, 88};
  std::mt19937 rng(7);
  MaskOptions o;
  o.erode_p = o.dilate_p = 0;
  Result<cv::Mat> m = MakeBlendMask(side, cv::Size(kSide, kSide), o, rng);
  ASSERT_TRUE(m.ok());
  const cv::Rect box = cv::boundingRect(*m > 0.5f);
  EXPECT_GT(box.width, box.height * 1.1) << box;
}

TEST(BlendMask, RejectsBadKeypoints) {
  std::mt19937 rng(1);
  Keypoints k = FaceKeypoints();
  k[kMouth] = {128, 110.5f};  // mouth on the eyes' line, 0.5 px away
  EXPECT_EQ(MakeBlendMask(k, cv::Size(kSide, kSide), {}, rng).status().code(), Code::kInvalidArgument);
  k = FaceKeypoints();
  k[kLeftEye].x = NAN;
  EXPECT_EQ(MakeBlendMask(k, cv::Size(kSide, kSide), {}, rng).status().code(), Code::kInvalidArgument);
  k = FaceKeypoints();
  for (auto& p : k) p.x += 5000;  // face far outside the image
  EXPECT_EQ(MakeBlendMask(k, cv::Size(kSide, kSide), {}, rng).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(MakeSelfBlended(cv::Mat(), FaceKeypoints(), {}, rng).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(MakeSelfBlended(cv::Mat(kSide, kSide, CV_8UC1, cv::Scalar(0)), FaceKeypoints(), {}, rng).status().code(),
            Code::kInvalidArgument);
}

TEST(SelfBlended, MaskLiesInsideTheFaceRegion) {
  const Keypoints k = FaceKeypoints();
  const cv::Mat crop = SyntheticFace(k, kSide, 1);
  const cv::Rect2f bound = DocumentedBound(k);
  ASSERT_GT(bound.x, 0);  // the bound must be tighter than the crop for the test to mean anything
  ASSERT_LT(bound.x + bound.width, kSide);
  constexpr int kCorner = 24;
  for (uint32_t seed = 0; seed < 200; ++seed) {
    const BlendSample s = MustSbi(crop, k, seed);
    ASSERT_EQ(s.mask.size(), crop.size());
    ASSERT_EQ(s.mask.type(), CV_32FC1);
    const cv::Mat shape = s.mask / s.alpha;
    for (int y = 0; y < kSide; ++y) {
      for (int x = 0; x < kSide; ++x) {
        if (shape.at<float>(y, x) > 0.1f) {
          ASSERT_TRUE(bound.contains(cv::Point2f(x, y))) << "seed " << seed << " pixel " << x << "," << y;
        }
      }
    }
    for (const cv::Point corner : {cv::Point(0, 0), cv::Point(kSide - kCorner, 0), cv::Point(0, kSide - kCorner),
                                   cv::Point(kSide - kCorner, kSide - kCorner)}) {
      EXPECT_EQ(cv::countNonZero(s.mask(cv::Rect(corner, cv::Size(kCorner, kCorner)))), 0)
          << "seed " << seed << " corner " << corner;
    }
  }
}

TEST(SelfBlended, ImageEqualsTargetExactlyWhereMaskIsZero) {
  const Keypoints k = FaceKeypoints();
  const cv::Mat crop = SyntheticFace(k, kSide, 2);
  int changed_samples = 0, unswapped = 0;
  for (uint32_t seed = 0; seed < 60; ++seed) {
    const BlendSample s = MustSbi(crop, k, seed);
    ASSERT_EQ(s.image.size(), crop.size());
    ASSERT_EQ(s.image.type(), CV_8UC3);
    const cv::Mat zero = s.mask == 0.0f;
    ASSERT_GT(cv::countNonZero(zero), kSide * kSide / 4);
    cv::Mat diff_target;
    cv::absdiff(s.image, s.target, diff_target);
    cv::Mat differs_from_target = diff_target.reshape(1, kSide * kSide);
    cv::Mat any_diff;
    cv::reduce(differs_from_target, any_diff, 1, cv::REDUCE_MAX);
    any_diff = any_diff.reshape(1, kSide);
    EXPECT_EQ(cv::countNonZero(any_diff & zero), 0) << "seed " << seed;
    if (!s.swapped) {
      // The target is the untouched crop: outside the mask the pseudo-fake is the input.
      ++unswapped;
      cv::Mat diff_input;
      cv::absdiff(s.image, crop, diff_input);
      cv::Mat diff_input_any;
      cv::reduce(diff_input.reshape(1, kSide * kSide), diff_input_any, 1, cv::REDUCE_MAX);
      EXPECT_EQ(cv::countNonZero(diff_input_any.reshape(1, kSide) & zero), 0) << "seed " << seed;
      if (cv::countNonZero(diff_input_any) > 100) ++changed_samples;
    } else if (cv::countNonZero(any_diff) > 100) {
      ++changed_samples;
    }
    // Everywhere: image = round(target + mask * (source - target)).
    for (int y = 0; y < kSide; y += 3) {
      for (int x = 0; x < kSide; x += 3) {
        const float m = s.mask.at<float>(y, x);
        for (int c = 0; c < 3; ++c) {
          const float t = s.target.at<cv::Vec3b>(y, x)[c], src = s.source.at<cv::Vec3b>(y, x)[c];
          ASSERT_NEAR(s.image.at<cv::Vec3b>(y, x)[c], t + m * (src - t), 0.51f) << seed << " " << x << "," << y;
        }
      }
    }
  }
  EXPECT_GT(unswapped, 10);
  EXPECT_GE(changed_samples, 54);  // the blend visibly changes the face in (nearly) every sample
}

TEST(SelfBlended, DeterministicForASeedDifferentAcrossSeeds) {
  const Keypoints k = FaceKeypoints();
  const cv::Mat crop = SyntheticFace(k, kSide, 3);
  for (uint32_t seed : {0u, 1u, 12345u}) {
    const BlendSample a = MustSbi(crop, k, seed), b = MustSbi(crop, k, seed);
    EXPECT_EQ(cv::norm(a.image, b.image, cv::NORM_INF), 0.0);
    EXPECT_EQ(cv::norm(a.mask, b.mask, cv::NORM_INF), 0.0);
    EXPECT_EQ(a.alpha, b.alpha);
    const BlendSample c = MustSbi(crop, k, seed + 1);
    EXPECT_GT(cv::norm(a.mask, c.mask, cv::NORM_L1), 1.0);
    EXPECT_GT(cv::norm(a.image, c.image, cv::NORM_L1), 1000.0);
  }
  // The input is not modified.
  const cv::Mat again = SyntheticFace(k, kSide, 3);
  EXPECT_EQ(cv::norm(crop, again, cv::NORM_INF), 0.0);
}

TEST(SelfBlended, AlphaSwapAndFrequencyDistributions) {
  const Keypoints k = FaceKeypoints();
  const cv::Mat crop = SyntheticFace(k, kSide, 4);
  Keypoints small = k;
  for (auto& p : small) p = {p.x * 160 / kSide, p.y * 160 / kSide};
  const cv::Mat crop160 = SyntheticFace(small, 160, 4);
  constexpr int kN = 400;
  float lo = 2, hi = -1;
  int swapped = 0;
  std::map<FrequencyOp, int> ops;
  for (uint32_t seed = 0; seed < kN; ++seed) {
    const BlendSample s = MustSbi(crop160, small, seed);
    ASSERT_GE(s.alpha, 0.25f);
    ASSERT_LE(s.alpha, 1.0f);
    double mask_max = 0;
    cv::minMaxLoc(s.mask, nullptr, &mask_max);
    ASSERT_NEAR(mask_max, s.alpha, 1e-5) << "the mask returned must be the weight used: shape (max 1) × alpha";
    lo = std::min(lo, s.alpha);
    hi = std::max(hi, s.alpha);
    swapped += s.swapped;
    ++ops[s.frequency];
  }
  EXPECT_LT(lo, 0.3f);
  EXPECT_GT(hi, 0.95f);
  EXPECT_NEAR(swapped / double(kN), 0.5, 0.08);
  EXPECT_NEAR(ops[FrequencyOp::kSharpen] / double(kN), 0.30, 0.07);
  EXPECT_NEAR(ops[FrequencyOp::kBlur] / double(kN), 0.25, 0.07);
  EXPECT_NEAR(ops[FrequencyOp::kResize] / double(kN), 0.25, 0.07);
  EXPECT_NEAR(ops[FrequencyOp::kNone] / double(kN), 0.20, 0.07);

  // Options are honoured: a fixed alpha.
  SbiOptions fixed;
  fixed.alpha_min = fixed.alpha_max = 0.6f;
  EXPECT_FLOAT_EQ(MustSbi(crop, k, 9, fixed).alpha, 0.6f);
}

// High-frequency energy: the variance of the Laplacian of the grey image (video::Sharpness).
double Sharpness(const cv::Mat& bgr) {
  cv::Mat grey;
  cv::cvtColor(bgr, grey, cv::COLOR_BGR2GRAY);
  return video::Sharpness(grey);
}

// SBI's published frequency change: only sharpen or a x2-x4 down-up resize, which takes away much
// more detail than the default's x0.5-0.9; SetSbiFrequency(false) restores the default mix.
TEST(SelfBlended, PublishedFrequencyChangeSharpensOrDownscalesHard) {
  Keypoints small = FaceKeypoints();
  for (auto& p : small) p = {p.x * 160 / kSide, p.y * 160 / kSide};
  const cv::Mat crop = SyntheticFace(small, 160, 6);
  const double original = Sharpness(crop);
  SbiOptions published;
  SetSbiFrequency(&published, true);
  EXPECT_TRUE(HasSbiPublishedFrequency(published));
  EXPECT_FALSE(HasSbiPublishedFrequency(SbiOptions{}));
  auto resized_sharpness = [&](const SbiOptions& o, std::map<FrequencyOp, int>* ops) {
    std::vector<double> kept;  // of the swapped samples, whose target is the transformed copy (no affine)
    for (uint32_t seed = 0; seed < 400; ++seed) {
      const BlendSample s = MustSbi(crop, small, seed, o);
      ++(*ops)[s.frequency];
      if (s.swapped && s.frequency == FrequencyOp::kResize) kept.push_back(Sharpness(s.target) / original);
    }
    return kept;
  };
  std::map<FrequencyOp, int> ops, default_ops;
  const std::vector<double> hard = resized_sharpness(published, &ops);
  const std::vector<double> mild = resized_sharpness(SbiOptions{}, &default_ops);
  EXPECT_NEAR(ops[FrequencyOp::kSharpen] / 400.0, 0.5, 0.08);
  EXPECT_NEAR(ops[FrequencyOp::kResize] / 400.0, 0.5, 0.08);
  EXPECT_EQ(ops[FrequencyOp::kBlur] + ops[FrequencyOp::kNone], 0);
  ASSERT_GT(hard.size(), 50u);
  ASSERT_GT(mild.size(), 20u);
  const double hard_mean = std::accumulate(hard.begin(), hard.end(), 0.0) / hard.size();
  const double mild_mean = std::accumulate(mild.begin(), mild.end(), 0.0) / mild.size();
  EXPECT_LT(hard_mean, 0.7 * mild_mean) << "published " << hard_mean << ", default " << mild_mean;
  EXPECT_LT(*std::max_element(hard.begin(), hard.end()), 1.0);

  SbiOptions back = published;
  SetSbiFrequency(&back, false);
  EXPECT_FALSE(HasSbiPublishedFrequency(back));
  EXPECT_FLOAT_EQ(back.blur_p, SbiOptions{}.blur_p);
  EXPECT_FLOAT_EQ(back.resize_min, SbiOptions{}.resize_min);
}

TEST(CrossBlended, AlignsColourMatchesAndBlendsOnlyInsideTheMask) {
  const Keypoints k = FaceKeypoints();
  const cv::Mat target = SyntheticFace(k, kSide, 5);
  // The donor: the same picture, made smaller, rotated and moved, with a strong colour cast.
  // Aligning it back must land it on the target.
  const cv::Mat warp = cv::getRotationMatrix2D(cv::Point2f(120, 140), 15, 0.8);
  cv::Mat donor;
  cv::warpAffine(target, donor, warp, target.size(), cv::INTER_LINEAR, cv::BORDER_REFLECT_101);
  Keypoints donor_k;
  for (int i = 0; i < 6; ++i) {
    donor_k[i].x =
        static_cast<float>(warp.at<double>(0, 0) * k[i].x + warp.at<double>(0, 1) * k[i].y + warp.at<double>(0, 2));
    donor_k[i].y =
        static_cast<float>(warp.at<double>(1, 0) * k[i].x + warp.at<double>(1, 1) * k[i].y + warp.at<double>(1, 2));
  }
  cv::Mat cast = donor.clone();
  cast.convertTo(cast, -1, 0.6, 0);
  cv::add(cast, cv::Scalar(90, 0, 0), cast);

  CrossBlendOptions o;
  std::mt19937 rng(11);
  Result<BlendSample> r = MakeCrossBlended(target, k, cast, donor_k, o, rng);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const BlendSample& s = *r;
  ASSERT_EQ(s.image.size(), target.size());
  EXPECT_EQ(cv::norm(s.target, target, cv::NORM_INF), 0.0);
  // Outside the mask: exactly the target.
  cv::Mat diff;
  cv::absdiff(s.image, target, diff);
  cv::Mat any;
  cv::reduce(diff.reshape(1, kSide * kSide), any, 1, cv::REDUCE_MAX);
  EXPECT_EQ(cv::countNonZero(any.reshape(1, kSide) & (s.mask == 0.0f)), 0);
  // Inside the face: the aligned, colour-matched source is close to the target (the cast is gone
  // and the geometry matches to within interpolation).
  const cv::Mat core = s.mask > 0.9f * s.alpha;
  ASSERT_GT(cv::countNonZero(core), 1000);
  cv::Mat src_diff;
  cv::absdiff(s.source, target, src_diff);
  const cv::Scalar mean_diff = cv::mean(src_diff, core);
  for (int c = 0; c < 3; ++c) EXPECT_LT(mean_diff[c], 12.0) << "channel " << c << " " << mean_diff;
  // Without colour transfer the aligned donor keeps its cast (blue +90 after ×0.6): the
  // geometry alone does not explain the match above.
  o.color_transfer = false;
  std::mt19937 rng2(11);
  Result<BlendSample> plain = MakeCrossBlended(target, k, cast, donor_k, o, rng2);
  ASSERT_TRUE(plain.ok());
  cv::Mat plain_diff;
  cv::absdiff(plain->source, target, plain_diff);
  EXPECT_GT(cv::mean(plain_diff, core)[0], 30.0) << cv::mean(plain_diff, core) << " vs " << mean_diff;
}

TEST(CrossBlended, ReinhardTransferMatchesMeanAndSpread) {
  cv::RNG rng(3);
  cv::Mat target(64, 64, CV_8UC3), source(64, 64, CV_8UC3);
  rng.fill(target, cv::RNG::NORMAL, cv::Scalar(120, 110, 140), cv::Scalar(20, 20, 20));
  rng.fill(source, cv::RNG::NORMAL, cv::Scalar(60, 160, 90), cv::Scalar(8, 8, 8));
  const cv::Mat region(64, 64, CV_32FC1, cv::Scalar(1.0f));
  const cv::Mat out = ReinhardTransfer(source, target, region);
  cv::Scalar out_mean, out_std, t_mean, t_std;
  cv::meanStdDev(out, out_mean, out_std);
  cv::meanStdDev(target, t_mean, t_std);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(out_mean[c], t_mean[c], 6.0) << c;
    EXPECT_NEAR(out_std[c], t_std[c], 6.0) << c;
  }
}

// ---- Landmark hull masks ----------------------------------------------------------------------

HullMaskOptions OnlyRegion(HullRegion r) {
  HullMaskOptions o;
  o.face_w = r == HullRegion::kFace;
  o.forehead_w = r == HullRegion::kForehead;
  o.inner_w = r == HullRegion::kInner;
  o.lower_w = r == HullRegion::kLower;
  return o;
}

// The rows/columns where the mask is at least `level`.
cv::Rect Extent(const cv::Mat& mask, float level) { return cv::boundingRect(mask >= level); }

// Each region's mask, at its half level, stays within the region's landmarks grown by the largest
// dilation (7.5 px), the elastic displacement (5% of the 100 px face) and a pixel of blur shift;
// far from the face it is exactly zero; and the regions differ as their names say.
TEST(HullMask, EachRegionStaysOnItsPartOfTheFace) {
  const Landmarks68 l = FaceLandmarks();
  const cv::Size size(kSide, kSide);
  const cv::Rect2f face(78, 92, 100, 86);  // the landmarks' bounding box
  const float slack = 7.5f + 5.0f + 2.0f;
  std::map<HullRegion, double> area;
  std::map<HullRegion, int> top;
  for (HullRegion r : {HullRegion::kFace, HullRegion::kForehead, HullRegion::kInner, HullRegion::kLower}) {
    cv::Rect2f allowed = face;
    if (r == HullRegion::kForehead) allowed.y -= 38, allowed.height += 38;  // brows raised by up to 1 × 36 px
    for (uint32_t seed = 0; seed < 25; ++seed) {
      std::mt19937 rng(seed);
      HullRegion got;
      Result<cv::Mat> m = MakeHullMask(l, size, OnlyRegion(r), rng, &got);
      ASSERT_TRUE(m.ok()) << m.status().ToString();
      EXPECT_EQ(got, r);
      double lo, hi;
      cv::minMaxLoc(*m, &lo, &hi);
      EXPECT_EQ(lo, 0.0);
      EXPECT_FLOAT_EQ(static_cast<float>(hi), 1.0f);
      const cv::Rect half = Extent(*m, 0.5f);
      ASSERT_GT(half.area(), 0) << HullRegionName(r) << " seed " << seed;
      EXPECT_GE(half.x, allowed.x - slack) << HullRegionName(r) << " seed " << seed;
      EXPECT_GE(half.y, allowed.y - slack) << HullRegionName(r) << " seed " << seed;
      EXPECT_LE(half.br().x, allowed.br().x + slack) << HullRegionName(r) << " seed " << seed;
      EXPECT_LE(half.br().y, allowed.br().y + slack) << HullRegionName(r) << " seed " << seed;
      // Exactly 0 beyond where two blurs (sigma <= 8.9 combined) of the slack-grown hull can reach.
      cv::Mat far = cv::Mat::ones(size, CV_8U) * 255;
      const float reach = slack + 40;
      cv::rectangle(far, cv::Rect(cv::Point(allowed.x - reach, allowed.y - reach),
                                  cv::Point(allowed.br().x + reach, allowed.br().y + reach)), cv::Scalar(0), cv::FILLED);
      EXPECT_EQ(cv::countNonZero((*m > 0.0f) & far), 0) << HullRegionName(r) << " seed " << seed;
      area[r] += cv::countNonZero(*m >= 0.5f) / 25.0;
      top[r] += half.y;
    }
  }
  EXPECT_LT(area[HullRegion::kInner], 0.8 * area[HullRegion::kFace]) << "no jaw line in the inner face";
  EXPECT_GT(area[HullRegion::kForehead], 1.1 * area[HullRegion::kFace]);
  EXPECT_LT(top[HullRegion::kForehead] / 25, top[HullRegion::kFace] / 25 - 10) << "the forehead is higher";
  EXPECT_GT(top[HullRegion::kLower] / 25, top[HullRegion::kFace] / 25 + 10) << "the lower face starts below";
}

TEST(HullMask, RegionsDrawnInProportionAndElasticChangesTheOutline) {
  const Landmarks68 l = FaceLandmarks();
  HullMaskOptions o;
  o.elastic_p = 0;
  o.edge.blur_sigma_min = o.edge.blur_sigma_max = 0;  // fast: only the region draw matters here
  o.edge.second_blur_p = 0;
  std::map<HullRegion, int> count;
  std::mt19937 rng(4);
  const int n = 600;
  for (int i = 0; i < n; ++i) {
    HullRegion r;
    ASSERT_TRUE(MakeHullMask(l, cv::Size(kSide, kSide), o, rng, &r).ok());
    ++count[r];
  }
  EXPECT_NEAR(count[HullRegion::kFace] / double(n), 0.4, 0.06);
  for (HullRegion r : {HullRegion::kForehead, HullRegion::kInner, HullRegion::kLower}) {
    EXPECT_NEAR(count[r] / double(n), 0.2, 0.05) << HullRegionName(r);
  }
  // Same seed, elastic off vs on: the outline moves, the mask stays mostly the same region.
  HullMaskOptions rigid = OnlyRegion(HullRegion::kFace), elastic = rigid;
  rigid.elastic_p = 0;
  elastic.elastic_p = 1;
  rigid.edge.erode_p = rigid.edge.dilate_p = elastic.edge.erode_p = elastic.edge.dilate_p = 0;
  std::mt19937 a(9), b(9);
  cv::Mat ma = *MakeHullMask(l, cv::Size(kSide, kSide), rigid, a) >= 0.5f;
  cv::Mat mb = *MakeHullMask(l, cv::Size(kSide, kSide), elastic, b) >= 0.5f;
  const double inter = cv::countNonZero(ma & mb), uni = cv::countNonZero(ma | mb);
  EXPECT_LT(inter / uni, 0.995) << "the elastic deformation changed nothing";
  EXPECT_GT(inter / uni, 0.8) << "the elastic deformation tore the mask off the face";
}

TEST(HullMask, RejectsBadLandmarks) {
  std::mt19937 rng(1);
  Landmarks68 l = FaceLandmarks();
  l[30].x = std::nanf("");
  EXPECT_EQ(MakeHullMask(l, cv::Size(kSide, kSide), {}, rng).status().code(), Code::kInvalidArgument);
  Landmarks68 dot;
  dot.fill(Point{50, 50});
  EXPECT_EQ(MakeHullMask(dot, cv::Size(kSide, kSide), {}, rng).status().code(), Code::kInvalidArgument);
  HullMaskOptions none;
  none.face_w = none.forehead_w = none.inner_w = none.lower_w = 0;
  EXPECT_EQ(MakeHullMask(FaceLandmarks(), cv::Size(kSide, kSide), none, rng).status().code(), Code::kInvalidArgument);
  Landmarks68 outside = FaceLandmarks();
  for (Point& p : outside) p.x += 1000;
  EXPECT_EQ(MakeHullMask(outside, cv::Size(kSide, kSide), {}, rng).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(MakeHullMask(FaceLandmarks(), cv::Size(0, 0), {}, rng).status().code(), Code::kInvalidArgument);
}

// With landmarks, a self-blend uses a hull mask (hull_p 1) and still changes only inside it;
// blend ratios drawn from SBI's set when asked.
TEST(SelfBlended, HullMaskBlendsOnlyInsideItAndSbiRatios) {
  const Keypoints k = FaceKeypoints();
  const Landmarks68 l = FaceLandmarks();
  const cv::Mat crop = SyntheticFace(k, kSide, 3);
  SbiOptions o;
  o.alpha_choices = kSbiBlendRatios;
  int ones = 0;
  const int n = 120;
  for (uint32_t seed = 0; seed < n; ++seed) {
    std::mt19937 rng(seed);
    Result<BlendSample> r = MakeSelfBlended(crop, k, o, rng, &l);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->hull);
    EXPECT_TRUE(std::find(kSbiBlendRatios.begin(), kSbiBlendRatios.end(), r->alpha) != kSbiBlendRatios.end())
        << r->alpha;
    ones += r->alpha == 1.0f;
    cv::Mat d;
    cv::absdiff(r->image, r->target, d);
    cv::Mat any;
    cv::reduce(d.reshape(1, kSide * kSide), any, 1, cv::REDUCE_MAX);
    any = any.reshape(1, kSide);
    EXPECT_EQ(cv::countNonZero(any & (r->mask == 0.0f)), 0) << "seed " << seed;
    EXPECT_GT(cv::countNonZero(any), 100) << "seed " << seed;
  }
  EXPECT_NEAR(ones / double(n), 0.5, 0.12);
  // hull_p 0, or no landmarks: the 6-keypoint ellipse, and the same stream as before landmarks existed.
  o.hull_p = 0;
  std::mt19937 a(5), b(5);
  Result<BlendSample> with = MakeSelfBlended(crop, k, o, a, &l);
  ASSERT_TRUE(with.ok());
  EXPECT_FALSE(with->hull);
  SbiOptions plain;
  std::mt19937 c(5), d(5);
  Result<BlendSample> old_way = MakeSelfBlended(crop, k, plain, c);
  Result<BlendSample> no_landmarks = MakeSelfBlended(crop, k, plain, d, nullptr);
  ASSERT_TRUE(old_way.ok() && no_landmarks.ok());
  EXPECT_EQ(cv::norm(old_way->image, no_landmarks->image, cv::NORM_INF), 0);
}


// Example figure: real | SBI pseudo-fake | its mask | cross-identity pseudo-fake | its mask, one
// row per face from shared/data/images/real_faces, after the shared base augmentation. Written
// to $DEEPSCAN_SBI_FIGURE when set (docs/pseudo-fakes.md), else into the test's temp dir.
TEST(SbiFigure, WritesExampleGridFromSharedData) {
  const std::string data = testing::SharedDataDir();
  if (data.empty() || !fs::is_directory(data + "/images/real_faces") || !fs::exists(testing::DetectorPath())) {
    GTEST_SKIP() << "shared data or BlazeFace model absent";
  }
  DetectorOptions det_options;
  det_options.model_path = testing::DetectorPath();
  auto detector = face::BlazeFaceDetector::Create(det_options, 1);
  ASSERT_TRUE(detector.ok()) << detector.status().ToString();

  constexpr int kCrop = 160, kTile = 112, kRows = 4;
  struct Face {
    cv::Mat crop;
    Keypoints k;
  };
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(data + "/images/real_faces")) {
    if (e.is_directory()) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  std::vector<Face> faces;
  for (const fs::path& dir : dirs) {
    if (faces.size() >= kRows + 1) break;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string ext = e.path().extension().string();
      if (ext == ".jpg" || ext == ".png") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
      const cv::Mat frame = cv::imread(f.string(), cv::IMREAD_COLOR);
      if (frame.empty()) continue;
      auto dets = (*detector)->Detect(frame);
      if (!dets.ok() || dets->empty()) continue;
      const face::Detection& d = dets->front();
      if (d.box.w < 80) continue;  // large, clear faces only, for a readable figure
      Face face;
      face::CropFace(frame, d.box, 0.3f, kCrop, &face.crop);
      for (int i = 0; i < 6; ++i) face.k[i] = face::ToCrop(d.keypoints[i], d.box, 0.3f, kCrop);
      faces.push_back(std::move(face));
      break;
    }
  }
  ASSERT_GE(faces.size(), static_cast<size_t>(kRows + 1)) << "too few detectable faces in " << data;

  std::mt19937 rng(2026);
  cv::Mat grid(kRows * kTile, 5 * kTile, CV_8UC3, cv::Scalar(255, 255, 255));
  auto put = [&](const cv::Mat& img, int row, int col) {
    cv::Mat tile = img;
    if (img.type() == CV_32FC1) {
      img.convertTo(tile, CV_8U, 255.0);
      cv::cvtColor(tile, tile, cv::COLOR_GRAY2BGR);
    }
    cv::resize(tile, grid(cv::Rect(col * kTile, row * kTile, kTile, kTile)), cv::Size(kTile, kTile), 0, 0,
               cv::INTER_AREA);
  };
  for (int row = 0; row < kRows; ++row) {
    const Face& f = faces[row];
    const BaseAugmentParams base = SampleBaseAugment(BaseAugmentOptions{}, rng);
    Result<cv::Mat> real = ApplyBaseAugment(base, f.crop);
    ASSERT_TRUE(real.ok());
    const Keypoints k = TransformKeypoints(base, f.k, f.crop.size());
    Result<BlendSample> sbi = MakeSelfBlended(*real, k, SbiOptions{}, rng);
    ASSERT_TRUE(sbi.ok()) << sbi.status().ToString();
    const Face& donor = faces[row + 1];
    Result<BlendSample> cross = MakeCrossBlended(*real, k, donor.crop, donor.k, CrossBlendOptions{}, rng);
    ASSERT_TRUE(cross.ok()) << cross.status().ToString();
    put(*real, row, 0);
    put(sbi->image, row, 1);
    put(sbi->mask, row, 2);
    put(cross->image, row, 3);
    put(cross->mask, row, 4);
  }
  const char* env = std::getenv("DEEPSCAN_SBI_FIGURE");
  const std::string path = env && *env ? env : testing::TempDir() + "/sbi_examples.png";
  ASSERT_TRUE(cv::imwrite(path, grid, {cv::IMWRITE_PNG_COMPRESSION, 9}));
  const auto bytes = fs::file_size(path);
  EXPECT_GT(bytes, 10'000u);
  EXPECT_LT(bytes, 300'000u) << "keep the figure small";
  std::printf("SBI example figure: %s (%ju bytes)\n", path.c_str(), static_cast<uintmax_t>(bytes));
}

}  // namespace
}  // namespace deepscan::train
