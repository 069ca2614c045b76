#include <cmath>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

#include "face/blazeface.h"
#include "face/crop.h"

namespace deepscan::face {
namespace {

TEST(AnchorsTest, GridLayout) {
  auto a = BlazeFaceAnchors();
  ASSERT_EQ(a.size(), 896u);
  EXPECT_FLOAT_EQ(a[0].x, 0.5f / 16);
  EXPECT_FLOAT_EQ(a[1].x, 0.5f / 16);  // two anchors per cell of the 16x16 grid
  EXPECT_FLOAT_EQ(a[2].x, 1.5f / 16);
  EXPECT_FLOAT_EQ(a[511].x, 15.5f / 16);
  EXPECT_FLOAT_EQ(a[511].y, 15.5f / 16);
  EXPECT_FLOAT_EQ(a[512].x, 0.5f / 8);  // then six per cell of the 8x8 grid
  EXPECT_FLOAT_EQ(a[517].x, 0.5f / 8);
  EXPECT_FLOAT_EQ(a[518].x, 1.5f / 8);
  EXPECT_FLOAT_EQ(a[895].y, 7.5f / 8);
}

TEST(DecodeTest, OneConfidentAnchorBecomesOneBox) {
  std::vector<float> scores(896, -10.0f), reg(896 * 16, 0.0f);
  const int i = 600;  // coarse grid: cell (600 - 512) / 6 = 14 -> x = 6, y = 1
  scores[i] = 3.0f;
  float* r = &reg[i * 16];
  r[0] = 12.8f;   // dx: +0.05 of a 256 input
  r[1] = -25.6f;  // dy: -0.1
  r[2] = 64.0f;   // w: 0.25
  r[3] = 51.2f;   // h: 0.2
  r[4] = 0.0f;
  r[5] = 25.6f;  // right eye at anchor + (0, 0.1)
  auto dets = DecodeBlazeFace(scores.data(), reg.data(), 256, 0.5f);
  ASSERT_EQ(dets.size(), 1u);
  const float ax = 6.5f / 8, ay = 1.5f / 8;
  EXPECT_NEAR(dets[0].score, 1 / (1 + std::exp(-3.0f)), 1e-6);
  EXPECT_NEAR(dets[0].box.x, ax + 0.05f - 0.125f, 1e-6);
  EXPECT_NEAR(dets[0].box.y, ay - 0.1f - 0.1f, 1e-6);
  EXPECT_NEAR(dets[0].box.w, 0.25f, 1e-6);
  EXPECT_NEAR(dets[0].box.h, 0.2f, 1e-6);
  EXPECT_NEAR(dets[0].keypoints[0].x, ax, 1e-6);
  EXPECT_NEAR(dets[0].keypoints[0].y, ay + 0.1f, 1e-6);
  EXPECT_TRUE(DecodeBlazeFace(scores.data(), reg.data(), 256, 0.96f).empty());
}

TEST(NmsTest, IoU) {
  EXPECT_FLOAT_EQ(IoU({0, 0, 10, 10}, {0, 0, 10, 10}), 1.0f);
  EXPECT_FLOAT_EQ(IoU({0, 0, 10, 10}, {5, 0, 10, 10}), 50.0f / 150.0f);
  EXPECT_FLOAT_EQ(IoU({0, 0, 10, 10}, {20, 20, 5, 5}), 0.0f);
  EXPECT_FLOAT_EQ(IoU({0, 0, 0, 0}, {0, 0, 0, 0}), 0.0f);
}

TEST(NmsTest, WeightedMergeOfOverlapsKeepsSeparateFaces) {
  Detection a{{0, 0, 10, 10}, 0.9f, {}}, b{{1, 1, 10, 10}, 0.6f, {}}, c{{50, 50, 10, 10}, 0.7f, {}};
  a.keypoints[0] = {2, 2};
  b.keypoints[0] = {4, 4};
  auto out = WeightedNms({b, c, a}, 0.3f);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_FLOAT_EQ(out[0].score, 0.9f);  // best score of the group
  EXPECT_NEAR(out[0].box.x, (0.9f * 0 + 0.6f * 1) / 1.5f, 1e-6);
  EXPECT_NEAR(out[0].keypoints[0].x, (0.9f * 2 + 0.6f * 4) / 1.5f, 1e-6);
  EXPECT_FLOAT_EQ(out[1].score, 0.7f);
  EXPECT_FLOAT_EQ(out[1].box.x, 50.0f);
}

TEST(CropTest, SquareWithMarginCentredOnTheBox) {
  cv::Rect2d sq = CropSquare({100, 50, 40, 80}, 0.3f);
  EXPECT_NEAR(sq.width, 104.0, 1e-5);
  EXPECT_NEAR(sq.height, 104.0, 1e-5);
  EXPECT_NEAR(sq.x + sq.width / 2, 120.0, 1e-5);
  EXPECT_NEAR(sq.y + sq.height / 2, 90.0, 1e-5);
}

TEST(CropTest, ContentLandsWhereTheGeometrySays) {
  // A white frame with a red square; crop around the square and find it in the crop.
  cv::Mat frame(400, 600, CV_8UC3, cv::Scalar(255, 255, 255));
  frame(cv::Rect(300, 200, 50, 50)).setTo(cv::Scalar(0, 0, 255));
  cv::Mat crop;
  Box box{300, 200, 50, 50};
  CropFace(frame, box, 1.0f, 100, &crop);  // side 100 around the 50 box: square at 25..75
  ASSERT_EQ(crop.size(), cv::Size(100, 100));
  EXPECT_EQ(crop.at<cv::Vec3b>(50, 50), cv::Vec3b(0, 0, 255));
  EXPECT_EQ(crop.at<cv::Vec3b>(10, 10), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(crop.at<cv::Vec3b>(30, 30), cv::Vec3b(0, 0, 255));
  Point p = ToCrop({300, 200}, box, 1.0f, 100);
  EXPECT_FLOAT_EQ(p.x, 25.0f);
  EXPECT_FLOAT_EQ(p.y, 25.0f);
}

TEST(CropTest, OutsideTheFrameIsBlack) {
  cv::Mat frame(100, 100, CV_8UC3, cv::Scalar(255, 255, 255));
  cv::Mat crop;
  CropFace(frame, {0, 0, 40, 40}, 1.0f, 80, &crop);  // square -20..60: a quarter outside on each axis
  EXPECT_EQ(crop.at<cv::Vec3b>(5, 5), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(crop.at<cv::Vec3b>(5, 60), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(crop.at<cv::Vec3b>(60, 60), cv::Vec3b(255, 255, 255));
  // Entirely outside: all black, no crash.
  CropFace(frame, {500, 500, 10, 10}, 0.3f, 32, &crop);
  EXPECT_EQ(cv::countNonZero(crop.reshape(1)), 0);
}

}  // namespace
}  // namespace deepscan::face
