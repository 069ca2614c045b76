// Test support: a synthetic upright face in a 256 px crop, its 6 BlazeFace keypoints and its 68
// iBUG landmarks, for the pseudo-fake and training tests (no shared data needed).
#ifndef DEEPSCAN_TESTS_SUPPORT_SYNTHETIC_FACE_H_
#define DEEPSCAN_TESTS_SUPPORT_SYNTHETIC_FACE_H_

#include <cmath>
#include <cstdint>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "train/augment.h"
#include "train/sbi.h"

namespace deepscan::testing {

using train::kLeftEar;
using train::kLeftEye;
using train::kMouth;
using train::kNoseTip;
using train::kRightEar;
using train::kRightEye;

inline constexpr int kSyntheticSide = 256;

// An upright face in a 256 crop: eyes 40 px apart, eye-mouth distance 40 px.
inline train::Keypoints FaceKeypoints() {
  train::Keypoints k;
  k[kRightEye] = {108, 110};
  k[kLeftEye] = {148, 110};
  k[kNoseTip] = {128, 130};
  k[kMouth] = {128, 150};
  k[kRightEar] = {88, 120};
  k[kLeftEar] = {168, 120};
  return k;
}

// A textured background, a skin-coloured oval, eyes and a mouth at `k`, fine noise everywhere
// (so that sharpening, blurring and shifting all change pixels).
inline cv::Mat SyntheticFace(const train::Keypoints& k, int side, uint64_t seed) {
  cv::RNG rng(seed);
  cv::Mat img(side, side, CV_8UC3);
  rng.fill(img, cv::RNG::UNIFORM, 30, 220);
  cv::GaussianBlur(img, img, cv::Size(0, 0), 4);
  const cv::Point2f eyes((k[kRightEye].x + k[kLeftEye].x) / 2, (k[kRightEye].y + k[kLeftEye].y) / 2);
  const cv::Point2f mouth(k[kMouth].x, k[kMouth].y);
  const float d = static_cast<float>(cv::norm(mouth - eyes));
  const cv::Point2f centre = eyes + (mouth - eyes) * 0.4f;
  const double angle = std::atan2(mouth.y - eyes.y, mouth.x - eyes.x) * 180 / CV_PI - 90;
  cv::ellipse(img, cv::RotatedRect(centre, cv::Size2f(2.0f * d, 2.6f * d), static_cast<float>(angle)),
              cv::Scalar(120, 150, 200), cv::FILLED);
  for (int i : {kRightEye, kLeftEye}) cv::circle(img, cv::Point(k[i].x, k[i].y), 5, cv::Scalar(40, 30, 30), -1);
  cv::ellipse(img, cv::Point(k[kMouth].x, k[kMouth].y), cv::Size(12, 4), angle, 0, 360, cv::Scalar(60, 60, 170), -1);
  cv::Mat noise(img.size(), CV_8UC3);
  rng.fill(noise, cv::RNG::UNIFORM, 0, 24);
  img += noise;
  return img;
}

// 68 iBUG-ordered landmarks of the synthetic face of FaceKeypoints(): jaw a lower half-ellipse
// (x 78-178, chin at y 178), brows at y ~96, nose 110-136, eyes at y 110, mouth at y 152.
inline train::Landmarks68 FaceLandmarks() {
  train::Landmarks68 l;
  for (int i = 0; i <= 16; ++i) {
    const double t = CV_PI - i * CV_PI / 16;
    l[i] = {static_cast<float>(128 + 50 * std::cos(t)), static_cast<float>(115 + 63 * std::sin(t))};
  }
  for (int i = 0; i < 5; ++i) {
    const float arc = static_cast<float>(4 * std::sin(CV_PI * i / 4));
    l[17 + i] = {90.0f + 8 * i, 96 - arc};
    l[22 + i] = {134.0f + 8 * i, 96 - static_cast<float>(4 * std::sin(CV_PI * (4 - i) / 4))};
  }
  for (int i = 0; i < 4; ++i) l[27 + i] = {128, 110.0f + 7 * i};
  for (int i = 0; i < 5; ++i) l[31 + i] = {118.0f + 5 * i, 136};
  for (int e = 0; e < 2; ++e) {
    const float cx = e == 0 ? 108 : 148;
    for (int i = 0; i < 6; ++i) {
      const double t = CV_PI - i * CV_PI / 3;
      l[36 + 6 * e + i] = {static_cast<float>(cx + 8 * std::cos(t)), static_cast<float>(110 - 3 * std::sin(t))};
    }
  }
  for (int i = 0; i < 12; ++i) {
    const double t = CV_PI - i * CV_PI / 6;
    l[48 + i] = {static_cast<float>(128 + 16 * std::cos(t)), static_cast<float>(152 - 6 * std::sin(t))};
  }
  for (int i = 0; i < 8; ++i) {
    const double t = CV_PI - i * CV_PI / 4;
    l[60 + i] = {static_cast<float>(128 + 10 * std::cos(t)), static_cast<float>(152 - 3 * std::sin(t))};
  }
  return l;
}

}  // namespace deepscan::testing

#endif  // DEEPSCAN_TESTS_SUPPORT_SYNTHETIC_FACE_H_
