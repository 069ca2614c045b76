// train::augment: image augmentation for training the face-crop classifier on real faces and
// their pseudo-fakes (docs/pseudo-fakes.md).
//
// Three stages, each split into "sample the parameters from an rng" and "apply those parameters":
//   1. Base augmentation, shared: sampled ONCE per real crop and applied identically to the real
//      crop before synthesis, so that the real crop and the pseudo-fake made from it carry the
//      same rotation, scale, shift, colour, grayscale, low resolution and noise, and no label
//      leaks through them. It moves the keypoints too (TransformKeypoints), since the blend mask
//      is built from them after it.
//   2. Codec degradation, shared, after the blend (DegradeOptions below): down-scale and H.264 or
//      JPEG, drawn once per pair and applied to the real crop and its pseudo-fake alike.
//   3. Final augmentation, independent: sampled separately for each training image (the real and
//      its fake each get their own): random 90-100% square crop, horizontal flip, optional mild
//      Gaussian blur, JPEG re-compression, resize to the network input size.
// Applying one parameter struct to several images gives identical results for identical
// inputs: no hidden randomness lives in the Apply* functions (the noise field is generated from
// a seed stored in the parameters).
//
// In:  BGR uint8 (CV_8UC3) images, usually square face crops (src/face/crop.h), keypoints in
//      crop pixels (pixel centres at integer coordinates, as cv::warpAffine uses them).
// Out: new images; inputs are never modified (except ApplyColorJitter, which works in place).
// No Torch here: OpenCV only.
#ifndef DEEPSCAN_TRAIN_AUGMENT_H_
#define DEEPSCAN_TRAIN_AUGMENT_H_

#include <array>
#include <cstdint>
#include <random>

#include <opencv2/core.hpp>

#include "deepscan/status.h"
#include "deepscan/verdict.h"

namespace deepscan::train {

// The 6 BlazeFace keypoints, in crop pixels, in this order (deepscan::FaceResult::keypoints).
using Keypoints = std::array<Point, 6>;
inline constexpr int kRightEye = 0;
inline constexpr int kLeftEye = 1;
inline constexpr int kNoseTip = 2;
inline constexpr int kMouth = 3;
inline constexpr int kRightEar = 4;
inline constexpr int kLeftEar = 5;

// ---- Colour jitter (used by the base augmentation and by the SBI source transform) ----------

struct ColorJitterOptions {
  float hue_shift = 8.0f;        // hue shift, uniform in ±this, in OpenCV 8-bit hue units (0..180)
  float saturation_min = 0.75f;  // saturation multiplier, uniform in [min, max]
  float saturation_max = 1.25f;
  float value_min = 0.8f;  // HSV value multiplier, uniform in [min, max]
  float value_max = 1.2f;
  float contrast_min = 0.8f;  // contrast multiplier (pixel * c + b), uniform in [min, max]
  float contrast_max = 1.2f;
  float brightness = 20.0f;  // brightness offset b, uniform in ±this (0..255 scale)
  float rgb_shift = 15.0f;   // per-channel additive shift, each uniform in ±this
};

struct ColorJitterParams {
  bool apply = false;  // false: ApplyColorJitter leaves the image alone
  float hue_shift = 0, saturation = 1, value = 1, contrast = 1, brightness = 0;
  std::array<float, 3> bgr_shift{};  // blue, green, red additive shifts
};

// Draws jitter parameters; `apply` is true with probability `p`.
ColorJitterParams SampleColorJitter(const ColorJitterOptions& options, float p, std::mt19937& rng);

// In place on a CV_8UC3 BGR image: RGB shift, then HSV hue/saturation/value, then
// contrast/brightness; every step saturates to 0..255. Does nothing when !params.apply.
void ApplyColorJitter(const ColorJitterParams& params, cv::Mat* bgr);

// ---- Base augmentation: shared by a real crop and its pseudo-fake ---------------------------

struct BaseAugmentOptions {
  float max_rotation_deg = 12.0f;  // rotation about the image centre, uniform in ±this
  float scale_min = 0.85f;         // zoom, uniform in [min, max] (>1 enlarges the face)
  float scale_max = 1.15f;
  float max_shift = 0.06f;      // translation, each axis uniform in ±this × side
  float color_jitter_p = 0.8f;  // probability of colour jitter
  ColorJitterOptions color;     // its ranges
  float grayscale_p = 0.05f;    // probability of converting to gray (kept 3-channel)
  float low_res_p = 0.3f;       // probability of a down-up resize
  float low_res_min = 0.4f;     // its down-scale factor, uniform in [min, max]
  float low_res_max = 0.9f;
  float noise_p = 0.2f;          // probability of additive Gaussian noise
  float noise_sigma_min = 2.0f;  // its standard deviation (0..255 scale), uniform in [min, max]
  float noise_sigma_max = 6.0f;
};

struct BaseAugmentParams {
  float rotation_deg = 0;  // counter-clockwise, as cv::getRotationMatrix2D
  float scale = 1;
  float shift_x = 0, shift_y = 0;  // fractions of the image width / height
  ColorJitterParams color;
  bool grayscale = false;
  float low_res_factor = 0;  // 0: off; else the down-scale factor of the down-up resize
  float noise_sigma = 0;     // 0: off
  uint32_t noise_seed = 0;   // seeds the noise field, so every image gets the same field
};

// Draws one set of base parameters.
BaseAugmentParams SampleBaseAugment(const BaseAugmentOptions& options, std::mt19937& rng);

// The 2x3 affine (input pixels -> output pixels) that `params` applies to an image of `size`.
cv::Matx23d BaseAffine(const BaseAugmentParams& params, cv::Size size);

// Applies `params` to `bgr` (CV_8UC3): affine warp (bilinear, reflected border), colour jitter,
// grayscale, down-up resize, noise, in that order. Same size out. Errors: kInvalidArgument
// (empty or not CV_8UC3).
Result<cv::Mat> ApplyBaseAugment(const BaseAugmentParams& params, const cv::Mat& bgr);

// Where keypoints of an image of `size` land after ApplyBaseAugment(params, ...).
Keypoints TransformKeypoints(const BaseAugmentParams& params, const Keypoints& keypoints, cv::Size size);
// The same for any points (the 68 landmarks), in place.
void TransformPoints(const BaseAugmentParams& params, cv::Size size, Point* points, size_t count);

// ---- Codec degradation: after blending, shared by a real crop and its pseudo-fake -----------
// What the channel does to a video before anyone crops a face from it: down-scaling (×2 or ×4, then
// back up) and lossy compression (an H.264 intra round trip through libx264, or JPEG), drawn
// ONCE per pair and applied identically to the real crop and to the pseudo-fake made from it, so
// the pair differs only by the blend (an independent draw would let compression itself tell
// them apart). A share `heavy_p` of the degraded pairs is in the heavy regime (CRF 33-45, JPEG
// 40-69: FF++ c40, re-uploaded social video), the rest light (CRF 23-32, JPEG 70-100).
// Applied at the crop's resolution, before the final augmentation (its random crop and resize).

struct DegradeOptions {
  float p = 0.0f;                  // share of pairs degraded at all (0: the stage is off)
  float heavy_p = 0.4f;            // of those, the share in the heavy regime
  float downscale_p = 0.35f;       // of those, the share first down-scaled (then back up after the codec)
  float downscale4_share = 0.35f;  // of the down-scaled, the share by ×4 (else ×2)
  float h264_share = 0.65f;        // the codec: H.264 intra round trip with this probability, else JPEG
  int crf_light_min = 23, crf_light_max = 32;
  int crf_heavy_min = 33, crf_heavy_max = 45;
  int jpeg_light_min = 70, jpeg_light_max = 100;
  int jpeg_heavy_min = 40, jpeg_heavy_max = 69;
};

struct DegradeParams {
  bool apply = false;
  bool heavy = false;
  int downscale = 1;      // 1, 2 or 4
  int h264_crf = -1;      // < 0: not H.264
  int jpeg_quality = 0;   // 0: not JPEG (exactly one codec is set when apply)
};

// Draws one pair's degradation. Errors: none (ranges are clamped: CRF 0..51, JPEG 1..100).
DegradeParams SampleDegrade(const DegradeOptions& options, std::mt19937& rng);

// Applies `params` to `bgr` (CV_8UC3): area down-scale by `downscale` (sides rounded, at least
// 8 px), the codec round trip at that size, bilinear back to the input size. Identity when
// !params.apply. Errors: kInvalidArgument (not CV_8UC3), those of video::H264RoundTrip, kInternal
// (JPEG codec failed).
Result<cv::Mat> ApplyDegrade(const DegradeParams& params, const cv::Mat& bgr);

// ---- Final augmentation: independent per training image -------------------------------------

struct FinalAugmentOptions {
  float crop_min = 0.9f;  // random square crop side, uniform in [min, max] × shorter side
  float crop_max = 1.0f;
  float flip_p = 0.5f;          // probability of a horizontal flip
  float blur_p = 0.0f;          // probability of a mild Gaussian blur (off in the recipe)
  float blur_sigma_min = 0.3f;  // its sigma in input pixels, uniform in [min, max]
  float blur_sigma_max = 1.0f;
  float jpeg_p = 0.5f;        // probability of JPEG re-compression
  int jpeg_quality_min = 40;  // its quality, uniform integer in [min, max]
  int jpeg_quality_max = 95;
  float h264_p = 0.0f;    // probability of an H.264 intra-frame round trip (off in the shipped recipe)
  int h264_crf_min = 23;  // its constant rate factor, uniform integer in [min, max] (51 = worst)
  int h264_crf_max = 40;
  int output_size = 128;  // side of the square output (the network input)
};

struct FinalAugmentParams {
  float crop_side = 1;           // fraction of the shorter side
  float crop_x = 0, crop_y = 0;  // position of the crop in [0, 1] of the free room on each axis
  bool flip = false;
  float blur_sigma = 0;  // 0: off
  int jpeg_quality = 0;  // 0: off
  int h264_crf = -1;     // < 0: off; else video::H264RoundTrip at this crf, after JPEG
  int output_size = 128;
};

// Draws one set of final parameters.
FinalAugmentParams SampleFinalAugment(const FinalAugmentOptions& options, std::mt19937& rng);

// The square crop rectangle that `params` takes from an image of `size`.
cv::Rect FinalCropRect(const FinalAugmentParams& params, cv::Size size);

// Applies `params` to `bgr` (CV_8UC3): crop, flip, blur, JPEG encode/decode (at the crop's
// resolution, as a compressed video frame is decoded before cropping), resize to
// output_size x output_size (area interpolation when shrinking, bilinear when enlarging).
// Errors: kInvalidArgument (empty, not CV_8UC3, output_size < 1); kInternal (JPEG codec failed).
Result<cv::Mat> ApplyFinalAugment(const FinalAugmentParams& params, const cv::Mat& bgr);

// The geometric part only (crop, flip, the same resize) for a single-channel CV_32F mask, so a
// blend mask stays aligned with the image ApplyFinalAugment made from its pseudo-fake.
// Errors: kInvalidArgument (empty, not CV_32FC1, output_size < 1).
Result<cv::Mat> ApplyFinalAugmentToMask(const FinalAugmentParams& params, const cv::Mat& mask);

// Resizes to `side` x `side`: area interpolation when shrinking, bilinear when enlarging; `in`
// itself (shared, not copied) when it is that size already. How a stored crop meets a network's
// input everywhere (training, threshold calibration, INT8 calibration, the benches).
cv::Mat ResizeSquare(const cv::Mat& in, int side);

}  // namespace deepscan::train

#endif  // DEEPSCAN_TRAIN_AUGMENT_H_
