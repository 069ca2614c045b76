// Tests for train/augment: parameters sampled once apply identically to several images, the
// keypoints follow the affine, the final stage crops, flips, re-compresses and resizes.
#include "train/augment.h"
#include "video/recompress.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>
#include <random>

namespace deepscan::train {
namespace {

cv::Mat Textured(int side, uint64_t seed) {
  cv::RNG rng(seed);
  cv::Mat img(side, side, CV_8UC3);
  rng.fill(img, cv::RNG::UNIFORM, 0, 256);
  cv::GaussianBlur(img, img, cv::Size(0, 0), 1.5);
  return img;
}

// Everything on, so that every step is exercised.
BaseAugmentOptions AllOn() {
  BaseAugmentOptions o;
  o.color_jitter_p = 1;
  o.low_res_p = 1;
  o.noise_p = 1;
  return o;
}

// Geometry only: no colour, gray, low resolution or noise.
BaseAugmentOptions GeometryOnly() {
  BaseAugmentOptions o;
  o.color_jitter_p = 0;
  o.grayscale_p = 0;
  o.low_res_p = 0;
  o.noise_p = 0;
  return o;
}

cv::Mat Must(Result<cv::Mat> r) {
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : cv::Mat();
}

TEST(BaseAugment, SameParametersGiveIdenticalOutputs) {
  const cv::Mat a = Textured(160, 1);
  const cv::Mat b = a.clone();
  for (uint32_t seed = 0; seed < 20; ++seed) {
    std::mt19937 rng(seed);
    const BaseAugmentParams p = SampleBaseAugment(AllOn(), rng);
    ASSERT_GT(p.noise_sigma, 0);
    const cv::Mat out_a = Must(ApplyBaseAugment(p, a)), out_b = Must(ApplyBaseAugment(p, b));
    ASSERT_EQ(out_a.size(), a.size());
    EXPECT_EQ(cv::norm(out_a, out_b, cv::NORM_INF), 0.0) << "seed " << seed;
    EXPECT_GT(cv::norm(out_a, a, cv::NORM_L1), 0.0);  // it did something
    // Parameters from another draw give another image.
    const BaseAugmentParams q = SampleBaseAugment(AllOn(), rng);
    EXPECT_GT(cv::norm(Must(ApplyBaseAugment(q, a)), out_a, cv::NORM_L1), 1000.0);
  }
}

// The no-leak property: a real crop and its pseudo-fake differ only in the blended face; after
// the shared augmentation they still differ only there (plus the reach of the interpolation).
TEST(BaseAugment, SharedParametersKeepDifferencesLocal) {
  const cv::Mat real = Textured(160, 2);
  cv::Mat fake = real.clone();
  cv::circle(fake, cv::Point(80, 80), 20, cv::Scalar(0, 255, 0), cv::FILLED);
  for (uint32_t seed = 0; seed < 20; ++seed) {
    std::mt19937 rng(seed);
    const BaseAugmentParams p = SampleBaseAugment(AllOn(), rng);
    const cv::Mat out_real = Must(ApplyBaseAugment(p, real)), out_fake = Must(ApplyBaseAugment(p, fake));
    // Where the changed disc went: centre through the affine, radius × scale, + 4 px for the
    // bilinear warp and the down-up resize.
    const cv::Matx23d a = BaseAffine(p, real.size());
    const cv::Point2d c(a(0, 0) * 80 + a(0, 1) * 80 + a(0, 2), a(1, 0) * 80 + a(1, 1) * 80 + a(1, 2));
    const double reach = 20 * p.scale + 4 + (p.low_res_factor > 0 ? 2.0 / p.low_res_factor : 0);
    cv::Mat diff;
    cv::absdiff(out_real, out_fake, diff);
    int outside = 0, inside = 0;
    for (int y = 0; y < diff.rows; ++y) {
      for (int x = 0; x < diff.cols; ++x) {
        const cv::Vec3b d = diff.at<cv::Vec3b>(y, x);
        if (d[0] + d[1] + d[2] == 0) continue;
        (std::hypot(x - c.x, y - c.y) > reach ? outside : inside)++;
      }
    }
    EXPECT_EQ(outside, 0) << "seed " << seed;
    EXPECT_GT(inside, 100) << "seed " << seed;
  }
}

TEST(BaseAugment, KeypointsFollowTheAffine) {
  constexpr int kSide = 160;
  Keypoints k;
  k[kRightEye] = {62.3f, 66.7f};
  k[kLeftEye] = {98.6f, 65.2f};
  k[kNoseTip] = {80.4f, 84.9f};
  k[kMouth] = {79.1f, 101.5f};
  k[kRightEar] = {50.2f, 78.8f};
  k[kLeftEar] = {110.7f, 77.3f};
  for (uint32_t seed = 0; seed < 25; ++seed) {
    std::mt19937 rng(seed);
    const BaseAugmentParams p = SampleBaseAugment(GeometryOnly(), rng);
    const Keypoints moved = TransformKeypoints(p, k, cv::Size(kSide, kSide));
    for (int i = 0; i < 6; ++i) {
      // A small bright dot at the keypoint (sub-pixel Gaussian blob), on black.
      cv::Mat img(kSide, kSide, CV_8UC3, cv::Scalar(0, 0, 0));
      for (int y = 0; y < kSide; ++y) {
        for (int x = 0; x < kSide; ++x) {
          const double r2 = std::pow(x - k[i].x, 2) + std::pow(y - k[i].y, 2);
          const auto v = cv::saturate_cast<uint8_t>(255 * std::exp(-r2 / (2 * 1.5 * 1.5)));
          img.at<cv::Vec3b>(y, x) = cv::Vec3b(v, v, v);
        }
      }
      const cv::Mat out = Must(ApplyBaseAugment(p, img));
      double sx = 0, sy = 0, sw = 0;
      for (int y = 0; y < kSide; ++y) {
        for (int x = 0; x < kSide; ++x) {
          const double w = out.at<cv::Vec3b>(y, x)[1];
          sx += w * x, sy += w * y, sw += w;
        }
      }
      ASSERT_GT(sw, 0);
      EXPECT_NEAR(sx / sw, moved[i].x, 1.5) << "seed " << seed << " keypoint " << i;
      EXPECT_NEAR(sy / sw, moved[i].y, 1.5) << "seed " << seed << " keypoint " << i;
    }
  }
}

TEST(BaseAugment, SampledRangesAndProbabilities) {
  const BaseAugmentOptions o;
  std::mt19937 rng(5);
  constexpr int kN = 4000;
  int color = 0, gray = 0, low = 0, noise = 0;
  for (int i = 0; i < kN; ++i) {
    const BaseAugmentParams p = SampleBaseAugment(o, rng);
    ASSERT_LE(std::abs(p.rotation_deg), 12.0f);
    ASSERT_GE(p.scale, 0.85f);
    ASSERT_LE(p.scale, 1.15f);
    ASSERT_LE(std::abs(p.shift_x), 0.06f);
    ASSERT_LE(std::abs(p.shift_y), 0.06f);
    color += p.color.apply;
    gray += p.grayscale;
    if (p.low_res_factor > 0) {
      ++low;
      ASSERT_GE(p.low_res_factor, 0.4f);
      ASSERT_LE(p.low_res_factor, 0.9f);
    }
    if (p.noise_sigma > 0) {
      ++noise;
      ASSERT_GE(p.noise_sigma, 2.0f);
      ASSERT_LE(p.noise_sigma, 6.0f);
    }
    if (p.color.apply) {
      ASSERT_LE(std::abs(p.color.hue_shift), 8.0f);
      ASSERT_GE(p.color.saturation, 0.75f);
      ASSERT_LE(p.color.saturation, 1.25f);
      ASSERT_GE(p.color.value, 0.8f);
      ASSERT_LE(p.color.value, 1.2f);
      ASSERT_LE(std::abs(p.color.brightness), 20.0f);
      for (float s : p.color.bgr_shift) ASSERT_LE(std::abs(s), 15.0f);
    }
  }
  EXPECT_NEAR(color / double(kN), 0.8, 0.03);
  EXPECT_NEAR(gray / double(kN), 0.05, 0.015);
  EXPECT_NEAR(low / double(kN), 0.3, 0.03);
  EXPECT_NEAR(noise / double(kN), 0.2, 0.03);
}

TEST(ColorJitter, KnownParametersOnGray) {
  // Gray survives the 8-bit HSV round trip exactly, so the brightness/contrast mapping is exact.
  cv::Mat img(8, 8, CV_8UC3, cv::Scalar(100, 100, 100));
  ColorJitterParams p;
  ApplyColorJitter(p, &img);  // apply == false: untouched
  EXPECT_EQ(img.at<cv::Vec3b>(0, 0), cv::Vec3b(100, 100, 100));
  p.apply = true;
  p.brightness = 10;
  ApplyColorJitter(p, &img);
  EXPECT_EQ(img.at<cv::Vec3b>(3, 3), cv::Vec3b(110, 110, 110));
  p.brightness = 0;
  p.contrast = 1.2f;  // about 128: 110 -> 128 - 18 * 1.2 = 106.4
  ApplyColorJitter(p, &img);
  EXPECT_EQ(img.at<cv::Vec3b>(3, 3), cv::Vec3b(106, 106, 106));
  p.contrast = 1;
  p.bgr_shift = {0, 0, 30};  // red up: no longer gray, and red is the largest channel
  ApplyColorJitter(p, &img);
  const cv::Vec3b v = img.at<cv::Vec3b>(3, 3);
  EXPECT_NEAR(v[2], 136, 2);
  EXPECT_NEAR(v[0], 106, 2);
}

TEST(BaseAugment, RejectsBadImages) {
  const BaseAugmentParams p;
  EXPECT_EQ(ApplyBaseAugment(p, cv::Mat()).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ApplyBaseAugment(p, cv::Mat(8, 8, CV_8UC1)).status().code(), Code::kInvalidArgument);
  FinalAugmentParams f;
  EXPECT_EQ(ApplyFinalAugment(f, cv::Mat(8, 8, CV_32FC3)).status().code(), Code::kInvalidArgument);
  f.output_size = 0;
  EXPECT_EQ(ApplyFinalAugment(f, Textured(8, 1)).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ApplyFinalAugmentToMask(FinalAugmentParams{}, cv::Mat(8, 8, CV_8UC1)).status().code(),
            Code::kInvalidArgument);
}

TEST(FinalAugment, IdentityPassesThroughAndJpegChangesPixelsKeepingSize) {
  const cv::Mat img = Textured(160, 3);
  FinalAugmentParams p;  // full crop, no flip, no blur, no JPEG
  p.output_size = 160;
  EXPECT_EQ(cv::norm(Must(ApplyFinalAugment(p, img)), img, cv::NORM_INF), 0.0);
  p.jpeg_quality = 40;
  const cv::Mat jpeg = Must(ApplyFinalAugment(p, img));
  EXPECT_EQ(jpeg.size(), img.size());
  EXPECT_EQ(jpeg.type(), CV_8UC3);
  EXPECT_GT(cv::norm(jpeg, img, cv::NORM_L1) / img.total(), 1.0);
  // Same parameters, same result (JPEG is deterministic).
  EXPECT_EQ(cv::norm(Must(ApplyFinalAugment(p, img.clone())), jpeg, cv::NORM_INF), 0.0);
  // Higher quality, closer to the input.
  p.jpeg_quality = 95;
  EXPECT_LT(cv::norm(Must(ApplyFinalAugment(p, img)), img, cv::NORM_L1), cv::norm(jpeg, img, cv::NORM_L1));
}

TEST(FinalAugment, CropFlipBlurResize) {
  const cv::Mat img = Textured(160, 4);
  FinalAugmentParams p;
  p.output_size = 160;
  p.flip = true;
  cv::Mat flipped;
  cv::flip(img, flipped, 1);
  EXPECT_EQ(cv::norm(Must(ApplyFinalAugment(p, img)), flipped, cv::NORM_INF), 0.0);

  p.flip = false;
  p.crop_side = 0.9f;
  p.crop_x = 1.0f;  // right edge
  p.crop_y = 0.0f;  // top edge
  const cv::Rect r = FinalCropRect(p, img.size());
  EXPECT_EQ(r, cv::Rect(16, 0, 144, 144));
  p.output_size = 144;
  EXPECT_EQ(cv::norm(Must(ApplyFinalAugment(p, img)), img(r), cv::NORM_INF), 0.0);

  p.output_size = 128;
  EXPECT_EQ(Must(ApplyFinalAugment(p, img)).size(), cv::Size(128, 128));

  p.output_size = 144;
  p.blur_sigma = 0.8f;
  const cv::Mat blurred = Must(ApplyFinalAugment(p, img));
  cv::Mat lap_in, lap_out;
  cv::Laplacian(img(r), lap_in, CV_32F);
  cv::Laplacian(blurred, lap_out, CV_32F);
  EXPECT_LT(cv::norm(lap_out, cv::NORM_L1), 0.8 * cv::norm(lap_in, cv::NORM_L1));  // softer
}

TEST(FinalAugment, MaskFollowsTheImageGeometry) {
  // An image whose green channel is the mask × 255: after the same final parameters (no JPEG, no
  // blur), the transformed mask × 255 matches the transformed green channel.
  cv::Mat mask(160, 160, CV_32FC1, cv::Scalar(0));
  cv::ellipse(mask, cv::Point(60, 90), cv::Size(30, 45), 20, 0, 360, cv::Scalar(1.0), cv::FILLED);
  cv::GaussianBlur(mask, mask, cv::Size(0, 0), 3);
  cv::Mat green;
  mask.convertTo(green, CV_8U, 255.0);
  cv::Mat zeros = cv::Mat::zeros(160, 160, CV_8U), img;
  cv::merge(std::vector<cv::Mat>{zeros, green, zeros}, img);
  std::mt19937 rng(8);
  FinalAugmentOptions o;
  o.jpeg_p = 0;
  for (int i = 0; i < 10; ++i) {
    const FinalAugmentParams p = SampleFinalAugment(o, rng);
    const cv::Mat out_img = Must(ApplyFinalAugment(p, img)), out_mask = Must(ApplyFinalAugmentToMask(p, mask));
    ASSERT_EQ(out_mask.size(), cv::Size(128, 128));
    ASSERT_EQ(out_mask.type(), CV_32FC1);
    std::vector<cv::Mat> ch;
    cv::split(out_img, ch);
    cv::Mat g;
    ch[1].convertTo(g, CV_32F, 1.0 / 255);
    EXPECT_LT(cv::norm(g, out_mask, cv::NORM_INF), 2.5 / 255) << "draw " << i;
  }
}

TEST(FinalAugment, SampledRanges) {
  const FinalAugmentOptions o;
  std::mt19937 rng(6);
  constexpr int kN = 4000;
  int flips = 0, jpegs = 0, blurs = 0, q_min = 100, q_max = 0;
  for (int i = 0; i < kN; ++i) {
    const FinalAugmentParams p = SampleFinalAugment(o, rng);
    ASSERT_GE(p.crop_side, 0.9f);
    ASSERT_LE(p.crop_side, 1.0f);
    ASSERT_EQ(p.output_size, 128);
    flips += p.flip;
    blurs += p.blur_sigma > 0;
    if (p.jpeg_quality > 0) {
      ++jpegs;
      q_min = std::min(q_min, p.jpeg_quality);
      q_max = std::max(q_max, p.jpeg_quality);
    }
  }
  EXPECT_NEAR(flips / double(kN), 0.5, 0.03);
  EXPECT_NEAR(jpegs / double(kN), 0.5, 0.03);
  EXPECT_EQ(blurs, 0);  // off by default (the recipe has no blur here)
  EXPECT_EQ(q_min, 40);
  EXPECT_EQ(q_max, 95);
}

}  // namespace
}  // namespace deepscan::train

namespace deepscan::train {
namespace {

double Psnr(const cv::Mat& a, const cv::Mat& b) { return cv::PSNR(a, b); }

TEST(H264AugmentTest, RoundTripDegradesWithCrf) {
  cv::Mat img(96, 97, CV_8UC3);  // odd width: padded for 4:2:0 and cropped back
  cv::RNG rng(11);
  rng.fill(img, cv::RNG::UNIFORM, 0, 256);
  cv::GaussianBlur(img, img, cv::Size(0, 0), 2.0);  // image-like, not white noise
  auto good = video::H264RoundTrip(img, 18);
  auto bad = video::H264RoundTrip(img, 45);
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(good->size(), img.size());
  EXPECT_EQ(good->type(), CV_8UC3);
  EXPECT_GT(cv::norm(*good, img, cv::NORM_INF), 0);  // it did change the pixels
  EXPECT_GT(Psnr(*good, img), 30.0);
  EXPECT_LT(Psnr(*bad, img), Psnr(*good, img) - 3.0);  // a higher crf costs quality
  EXPECT_EQ(video::H264RoundTrip(img, 60).status().code(), Code::kInvalidArgument);
}

TEST(H264AugmentTest, SampledAndAppliedThroughTheFinalAugmentation) {
  FinalAugmentOptions o;
  o.h264_p = 1.0f;
  o.jpeg_p = 0.0f;
  o.flip_p = 0.0f;
  o.crop_min = o.crop_max = 1.0f;
  o.output_size = 64;
  std::mt19937 rng(3);
  FinalAugmentParams p = SampleFinalAugment(o, rng);
  EXPECT_GE(p.h264_crf, 23);
  EXPECT_LE(p.h264_crf, 40);
  cv::Mat img(64, 64, CV_8UC3, cv::Scalar(40, 120, 200));
  cv::rectangle(img, cv::Rect(10, 10, 30, 30), cv::Scalar(250, 250, 250), cv::FILLED);
  auto out = ApplyFinalAugment(p, img);
  ASSERT_TRUE(out.ok());
  EXPECT_GT(cv::norm(*out, img, cv::NORM_L1), 0);
  // Off by default: the shipped recipe's rng stream and images are unchanged.
  FinalAugmentOptions d;
  std::mt19937 a(5), b(5);
  FinalAugmentParams pd = SampleFinalAugment(d, a);
  d.h264_p = 0.0f;
  EXPECT_EQ(pd.h264_crf, -1);
  EXPECT_EQ(SampleFinalAugment(d, b).jpeg_quality, pd.jpeg_quality);
}

}  // namespace
}  // namespace deepscan::train

namespace deepscan::train {
namespace {

// A face-sized, image-like crop (blurred noise) and its "pseudo-fake": the same crop with a
// blended-in patch inside `region` only.
std::pair<cv::Mat, cv::Mat> PairWithPatch(int side, cv::Rect region) {
  cv::Mat real(side, side, CV_8UC3);
  cv::RNG rng(21);
  rng.fill(real, cv::RNG::UNIFORM, 0, 256);
  cv::GaussianBlur(real, real, cv::Size(0, 0), 1.5);
  cv::Mat fake = real.clone();
  cv::Mat patch = fake(region);
  patch.convertTo(patch, -1, 1.0, 35);  // a brightness mismatch, as a blend leaves
  return {real, fake};
}

double MeanAbsDiff(const cv::Mat& a, const cv::Mat& b, const cv::Mat& where) {
  cv::Mat d;
  cv::absdiff(a, b, d);
  return cv::mean(d, where)[0];
}

// The point of sharing: one draw applied to both keeps their difference where the blend is; the
// rest of the crop, degraded alike, stays (almost) alike. Independent draws differ everywhere.
TEST(Degrade, OneDrawForThePairKeepsTheirDifferenceAtTheBlend) {
  const cv::Rect blend(48, 48, 64, 64);
  auto [real, fake] = PairWithPatch(160, blend);
  cv::Mat far = cv::Mat::ones(160, 160, CV_8U) * 255;  // more than one 16 px macroblock (x4: 64 px) away
  far(cv::Rect(0, 0, 160, 160) & cv::Rect(blend.x - 40, blend.y - 40, blend.width + 80, blend.height + 80)) = 0;
  cv::Mat near = cv::Mat::zeros(160, 160, CV_8U);
  near(blend) = 255;
  for (DegradeParams d : {DegradeParams{true, false, 1, 28, 0}, DegradeParams{true, true, 1, -1, 45},
                          DegradeParams{true, true, 2, 40, 0}}) {
    cv::Mat r = Must(ApplyDegrade(d, real)), f = Must(ApplyDegrade(d, fake));
    ASSERT_EQ(r.size(), real.size());
    const double outside = MeanAbsDiff(r, f, far), inside = MeanAbsDiff(r, f, near);
    EXPECT_GT(inside, 10.0) << "the blend must survive the codec";
    EXPECT_LT(outside, inside / 10) << "crf " << d.h264_crf << " jpeg " << d.jpeg_quality << " x" << d.downscale;
    if (d.jpeg_quality > 0 && d.downscale == 1) EXPECT_EQ(outside, 0.0) << "JPEG blocks are independent";
  }
  // Independent draws (a light H.264 for the real, a heavy JPEG for the fake): the whole crop differs.
  cv::Mat r = Must(ApplyDegrade(DegradeParams{true, false, 1, 24, 0}, real));
  cv::Mat f = Must(ApplyDegrade(DegradeParams{true, true, 4, -1, 40}, fake));
  EXPECT_GT(MeanAbsDiff(r, f, far), 2.0) << "independent degradation would tell real from fake everywhere";
}

TEST(Degrade, HeavierAndSmallerCostMoreQualityAndIdentityWhenOff) {
  auto [img, unused] = PairWithPatch(160, cv::Rect(0, 0, 1, 1));
  const double light = cv::PSNR(Must(ApplyDegrade(DegradeParams{true, false, 1, 23, 0}, img)), img);
  const double heavy = cv::PSNR(Must(ApplyDegrade(DegradeParams{true, true, 1, 45, 0}, img)), img);
  const double quarter = cv::PSNR(Must(ApplyDegrade(DegradeParams{true, false, 4, 23, 0}, img)), img);
  EXPECT_LT(heavy, light - 3);
  EXPECT_LT(quarter, light - 3);
  cv::Mat off = Must(ApplyDegrade(DegradeParams{}, img));
  EXPECT_EQ(cv::norm(off, img, cv::NORM_INF), 0);
  EXPECT_NE(off.data, img.data) << "a copy, never the input";
  cv::Mat odd(75, 61, CV_8UC3, cv::Scalar(90, 100, 110));
  EXPECT_EQ(Must(ApplyDegrade(DegradeParams{true, true, 4, 40, 0}, odd)).size(), odd.size());
  EXPECT_EQ(ApplyDegrade(DegradeParams{true, false, 1, 30, 0}, cv::Mat(8, 8, CV_8UC1)).status().code(),
            Code::kInvalidArgument);
}

TEST(Degrade, SampledSharesAndRanges) {
  DegradeOptions o;
  o.p = 0.8f;
  std::mt19937 rng(7);
  int applied = 0, heavy = 0, scaled = 0, by4 = 0, h264 = 0;
  const int n = 5000;
  for (int i = 0; i < n; ++i) {
    DegradeParams d = SampleDegrade(o, rng);
    if (!d.apply) {
      EXPECT_EQ(d.h264_crf, -1);
      continue;
    }
    ++applied;
    heavy += d.heavy;
    scaled += d.downscale > 1;
    by4 += d.downscale == 4;
    ASSERT_NE(d.h264_crf >= 0, d.jpeg_quality > 0) << "exactly one codec";
    if (d.h264_crf >= 0) {
      ++h264;
      EXPECT_TRUE(d.heavy ? d.h264_crf >= 33 && d.h264_crf <= 45 : d.h264_crf >= 23 && d.h264_crf <= 32);
    } else {
      EXPECT_TRUE(d.heavy ? d.jpeg_quality >= 40 && d.jpeg_quality <= 69
                          : d.jpeg_quality >= 70 && d.jpeg_quality <= 100);
    }
  }
  EXPECT_NEAR(applied / double(n), 0.8, 0.03);
  EXPECT_NEAR(heavy / double(applied), o.heavy_p, 0.03);
  EXPECT_NEAR(scaled / double(applied), o.downscale_p, 0.03);
  EXPECT_NEAR(by4 / double(scaled), o.downscale4_share, 0.05);
  EXPECT_NEAR(h264 / double(applied), o.h264_share, 0.03);
  DegradeOptions off;  // the default: off
  EXPECT_FALSE(SampleDegrade(off, rng).apply);
}

}  // namespace
}  // namespace deepscan::train
