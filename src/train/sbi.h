// train::sbi: pseudo-fakes made from real face crops only, for training without fake data
// (docs/pseudo-fakes.md).
//
// Two families, same output (BlendSample: image + the per-pixel blend weight actually used):
//   * Self-Blended Images (SBI; Shiohara & Yamasaki, CVPR 2022): a crop is blended into itself.
//     One copy ("source transform") gets colour jitter and one frequency change (sharpen, blur,
//     down-up resize or none), the other stays untouched; which copy is the source and which the
//     target is swapped with p 0.5. The source and the mask get a small affine (scale, shift), so
//     the blended face sits slightly off its own position. The result keeps the identity but
//     carries a blend boundary and colour/frequency mismatch: the generic traces of a face swap.
//   * Cross-identity (Face X-ray style; Li et al., CVPR 2020): a donor crop is aligned onto the
//     target by a similarity transform on the keypoints (eyes, nose, mouth), colour-matched to it
//     (Reinhard mean/std transfer in Lab, within the mask), and blended through the same kind of
//     mask built from the target's keypoints.
// The mask shape is either the convex hull of the 68 landmarks, as SBI publishes it, in one of
// four Face X-ray-style regions (MakeHullMask: whole face, face extended to the forehead, inner
// face: brows, eyes, nose and mouth, lower face), optionally elastically deformed; or, without
// landmarks, an ellipse-like polygon from the 6 keypoints with smoothed radial noise
// (MakeBlendMask). Either is then eroded or dilated, blurred once or twice and renormalised to
// max 1; the blend is
//   image = mask * source + (1 - mask) * target,   mask = shape * alpha,   alpha in [0.25, 1],
// computed in float and rounded, so image == target exactly wherever mask == 0.
//
// In:  square BGR uint8 (CV_8UC3) face crops (src/face/crop.h, margin 0.3) and their 6
//      keypoints in crop pixels; a std::mt19937 that alone decides every random choice (same
//      seed, same result). Apply the shared base augmentation (train/augment.h) BEFORE these.
// Out: a BlendSample; the inputs are not modified. No Torch here: OpenCV only.
#ifndef DEEPSCAN_TRAIN_SBI_H_
#define DEEPSCAN_TRAIN_SBI_H_

#include <array>
#include <random>
#include <vector>

#include <opencv2/core.hpp>

#include "deepscan/status.h"
#include "face/landmarks.h"
#include "train/augment.h"

namespace deepscan::train {

// The blend-mask shape, as in the SBI recipe of TRAINING-NOTES.md.
struct MaskOptions {
  float centre_min = 0.35f;    // ellipse centre: this fraction of the way from the eyes' midpoint
  float centre_max = 0.55f;    //   to the mouth, uniform in [min, max]
  float vertical_min = 1.05f;  // semi-axis along eyes->mouth, × eye-mouth distance, uniform
  float vertical_max = 1.3f;
  float horizontal_min = 0.75f;  // semi-axis across, × max(inter-eye, eye_mouth_floor × eye-mouth)
  float horizontal_max = 1.0f;
  float eye_mouth_floor = 0.8f;  // keeps the ellipse wide enough on profile faces (eyes close)
  int vertices = 24;             // polygon vertices
  float radial_noise = 0.08f;    // the vertices' radii vary by up to ±this (smoothed, relative)
  float erode_p = 0.35f;         // probability of erosion
  float dilate_p = 0.35f;        // probability of dilation (else neither)
  int morph_min = 5;             // erosion/dilation kernel side in pixels, uniform integer
  int morph_max = 15;
  float blur_sigma_min = 1.5f;  // Gaussian blur sigma of the mask edge, uniform in [min, max]
  float blur_sigma_max = 8.0f;
  float second_blur_p = 0.5f;          // probability of a second blur
  float second_blur_sigma_min = 1.0f;  // its sigma, uniform in [min, max]
  float second_blur_sigma_max = 4.0f;
};

// The 68 iBUG / dlib landmarks of a face, in crop pixels: 0-16 jaw (right to left), 17-21 right
// brow, 22-26 left brow, 27-30 nose bridge, 31-35 nostrils, 36-41 right eye, 42-47 left eye,
// 48-67 mouth ("right" = the person's right, on the image's left).
using Landmarks68 = face::Landmarks;  // face/landmarks.h (dlib's predictor, run by `deepscan extract`)

// The region a landmark hull mask covers (Face X-ray's mask variety).
enum class HullRegion { kFace, kForehead, kInner, kLower };
const char* HullRegionName(HullRegion r);  // "face", "forehead", "inner", "lower"

struct HullMaskOptions {
  // Region weights, drawn in proportion:
  float face_w = 0.4f;      // convex hull of all 68 points (SBI)
  float forehead_w = 0.2f;  // + the brows raised onto the forehead (SBI's 81-point hull, approximated)
  float inner_w = 0.2f;     // brows, eyes, nose and mouth (17-67): no jaw line
  float lower_w = 0.2f;     // below the eyes: jaw 1-15, nose 29-35, mouth
  float forehead_min = 0.5f;  // forehead: brows raised by this × the brow-centre-to-nose-tip distance
  float forehead_max = 1.0f;
  float elastic_p = 0.5f;       // probability of an elastic deformation of the hull
  float elastic_alpha = 0.05f;  // its largest displacement, × the face size (hull's bounding-box side)
  float elastic_sigma = 0.12f;  // smoothness of its displacement field (Gaussian sigma), × face size
  MaskOptions edge;             // erosion/dilation and the two blurs (the ellipse fields are not read)
};

// The SBI paper's blend ratios: alpha is drawn from these, uniformly (1 has weight 3).
inline const std::vector<float> kSbiBlendRatios = {0.25f, 0.5f, 0.75f, 1.0f, 1.0f, 1.0f};

// Self-Blended Images.
struct SbiOptions {
  float color_jitter_p = 0.9f;  // probability of colour jitter in the source transform
  ColorJitterOptions color;     // its ranges (hue ±8, saturation ×0.75-1.25, value ×0.8-1.2, ...)
  float sharpen_p = 0.30f;      // frequency change, one of: sharpen,
  float blur_p = 0.25f;         //   Gaussian blur,
  float resize_p = 0.25f;       //   down-up resize; with the remaining probability (0.2) none
  float sharpen_min = 0.2f;     // sharpen strength (3x3 Laplacian sharpen mixed in), uniform
  float sharpen_max = 0.5f;
  float blur_sigma_min = 0.4f;  // Gaussian blur sigma, uniform in [min, max]
  float blur_sigma_max = 1.2f;
  float resize_min = 0.5f;  // down-up resize factor, uniform in [min, max]
  float resize_max = 0.9f;
  float affine_scale_min = 0.95f;  // source and mask affine: scale about the centre, uniform
  float affine_scale_max = 1.05f;
  float affine_max_shift = 0.03f;  // and translation, each axis uniform in ±this × side
  float swap_p = 0.5f;             // probability that the transformed copy is the target instead
  MaskOptions mask;                // mask shape (the 6-keypoint ellipse)
  float hull_p = 1.0f;             // with landmarks: share of masks from the landmark hull, else the ellipse
  HullMaskOptions hull;            // landmark hull masks
  float alpha_min = 0.25f;         // blend strength alpha, uniform in [min, max] ...
  float alpha_max = 1.0f;
  std::vector<float> alpha_choices;  // ... unless this is not empty: then one of these (kSbiBlendRatios)
};

// SBI's published frequency change (Shiohara & Yamasaki's source transform): half of the sources
// sharpened (0.2-0.5), half down-scaled by 2 to 4 and back (the resolution gap of a face generated
// small and pasted into a larger one), never blurred or left as is. SBI draws the factor from
// {2, 4}; here it is uniform in [1/4, 1/2]. The defaults above are milder (resize by 0.5-0.9).
// SetSbiFrequency(o, true) sets those fields; (o, false) puts back SbiOptions' defaults; the
// other fields are kept either way.
void SetSbiFrequency(SbiOptions* o, bool published);
// Whether `o`'s frequency fields are the published ones.
bool HasSbiPublishedFrequency(const SbiOptions& o);

// Cross-identity (Face X-ray-style) blends.
struct CrossBlendOptions {
  bool color_transfer = true;  // match the donor's Lab mean/std to the target within the mask
  MaskOptions mask;            // mask shape (built from the target's keypoints)
  float alpha_min = 0.25f;     // blend strength alpha, uniform in [min, max]
  float alpha_max = 1.0f;
};

// The frequency change the SBI source transform applied.
enum class FrequencyOp { kNone, kSharpen, kBlur, kResize };

struct BlendSample {
  cv::Mat image;         // CV_8UC3, the pseudo-fake, same size as the input crop
  cv::Mat mask;          // CV_32FC1 in [0, 1], same size: the blend weight used per pixel
                         //   (shape * alpha, so its max is alpha); the dense auxiliary target
  cv::Mat source;        // CV_8UC3: what was blended in (after its transforms and affine/alignment)
  cv::Mat target;        // CV_8UC3: what it was blended into; image == target where mask == 0
  float alpha = 1;       // blend strength drawn for this sample
  bool swapped = false;  // SBI: the transformed copy became the target (source = untouched crop)
  FrequencyOp frequency = FrequencyOp::kNone;  // SBI: the frequency change in the source transform
  bool hull = false;                           // SBI: the mask came from the landmark hull ...
  HullRegion region = HullRegion::kFace;       //   ... of this region
};

// Builds a blend-mask shape for a face with `keypoints` in an image of `size`: CV_32FC1, values
// in [0, 1], max exactly 1, exactly 0 far from the face. Errors: kInvalidArgument (empty size,
// non-finite keypoints, eyes-mouth distance under 2 pixels).
Result<cv::Mat> MakeBlendMask(const Keypoints& keypoints, cv::Size size, const MaskOptions& options, std::mt19937& rng);

// Builds a hull mask for a face with `landmarks` in an image of `size`: the region drawn by the
// weights (written to `*region` when given), its convex hull (for kInner, the hull of 17-67),
// elastically deformed with p elastic_p, then the edge steps of MaskOptions. CV_32FC1 in [0, 1],
// max exactly 1. Errors: kInvalidArgument (empty size, non-finite landmarks, a hull under 4 px
// across, all weights 0, the hull outside the image).
Result<cv::Mat> MakeHullMask(const Landmarks68& landmarks, cv::Size size, const HullMaskOptions& options,
                             std::mt19937& rng, HullRegion* region = nullptr);

// Makes a Self-Blended Image of `crop` (CV_8UC3, any size, usually square) whose face has
// `keypoints` and, when not null, `landmarks` (then the mask is a hull mask with p hull_p).
// Errors: kInvalidArgument (bad crop, keypoints or landmarks).
Result<BlendSample> MakeSelfBlended(const cv::Mat& crop, const Keypoints& keypoints, const SbiOptions& options,
                                    std::mt19937& rng, const Landmarks68* landmarks = nullptr);

// Blends the face of `donor` (another identity's real crop, CV_8UC3, with `donor_keypoints`)
// into `target` (CV_8UC3, `target_keypoints`): similarity-aligns the donor on the eyes, nose and
// mouth, transfers colour, blends through a mask from the target's keypoints. The donor may have
// any size; the output has the target's. Errors: kInvalidArgument (bad images or keypoints).
Result<BlendSample> MakeCrossBlended(const cv::Mat& target, const Keypoints& target_keypoints, const cv::Mat& donor,
                                     const Keypoints& donor_keypoints, const CrossBlendOptions& options,
                                     std::mt19937& rng);

// Reinhard colour transfer: returns `source` (CV_8UC3) with its Lab mean and standard deviation,
// measured over the pixels where `region` (CV_32FC1, same size) > 0.5, moved to those of `target`
// over the same pixels (the whole image when fewer than 16 pixels qualify).
cv::Mat ReinhardTransfer(const cv::Mat& source, const cv::Mat& target, const cv::Mat& region);

}  // namespace deepscan::train

#endif  // DEEPSCAN_TRAIN_SBI_H_
