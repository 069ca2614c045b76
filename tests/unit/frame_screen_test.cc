#include "pipeline/frame_screen.h"

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

namespace deepscan::pipeline {
namespace {

// A 160x90 luma thumbnail: a gradient scene with a "face" blob; `mouth` opens a dark bar in it.
cv::Mat Scene(int seed, double mouth = 0, double noise = 0) {
  cv::Mat m(90, 160, CV_8UC1);
  for (int y = 0; y < m.rows; ++y) {
    for (int x = 0; x < m.cols; ++x)
      m.at<uint8_t>(y, x) = static_cast<uint8_t>((x * (2 + seed) + y * 3 * seed) % 200 + 20);
  }
  cv::circle(m, {80, 45}, 20, cv::Scalar(180), cv::FILLED);
  if (mouth > 0) cv::rectangle(m, cv::Rect(70, 52, 20, static_cast<int>(mouth)), cv::Scalar(30), cv::FILLED);
  if (noise > 0) {
    cv::Mat n(m.size(), CV_16SC1);
    cv::randn(n, 0, noise);
    cv::Mat w;
    m.convertTo(w, CV_16SC1);
    w += n;
    w.convertTo(m, CV_8UC1);
  }
  return m;
}

TEST(FrameScreenTest, StillPictureIsADuplicateOfTheFirstExamined) {
  FrameScreen s(true, 2);
  EXPECT_EQ(s.LookAt(Scene(1), 0, 0).same_as_slot, -1);
  Screened b = s.LookAt(Scene(1, 0, 0.3), 1, 10);  // re-encoding noise only
  EXPECT_EQ(b.same_as_slot, 0);
  EXPECT_EQ(b.same_as_index, 0);
  EXPECT_FALSE(b.cut);
  EXPECT_FALSE(b.changed);
  EXPECT_EQ(s.LookAt(Scene(1), 2, 20).same_as_slot, 0);  // still compared with the examined one
}

TEST(FrameScreenTest, MovingMouthIsNotADuplicate) {
  // The coarse dHash does not see the mouth: only the pixel difference can tell.
  ASSERT_LE(video::HammingDistance(video::DHash(Scene(1)), video::DHash(Scene(1, 4))), 2);
  FrameScreen s(true, 2);
  s.LookAt(Scene(1), 0, 0);
  Screened b = s.LookAt(Scene(1, 4), 1, 10);
  EXPECT_EQ(b.same_as_slot, -1) << "a local change the coarse dHash may miss must still be scored";
  EXPECT_FALSE(b.cut);
  // The open-mouth frame is now the reference.
  EXPECT_EQ(s.LookAt(Scene(1, 4), 2, 20).same_as_slot, 1);
}

TEST(FrameScreenTest, CutsAndBigChanges) {
  FrameScreen s(true, 2);
  s.LookAt(Scene(1), 0, 0);
  cv::Mat other(90, 160, CV_8UC1, cv::Scalar(230));
  cv::rectangle(other, cv::Rect(0, 0, 80, 90), cv::Scalar(10), cv::FILLED);
  Screened c = s.LookAt(other, 1, 10);
  EXPECT_TRUE(c.cut);
  EXPECT_TRUE(c.changed);
  EXPECT_EQ(c.same_as_slot, -1);
  Screened d = s.LookAt(other, 2, 20);
  EXPECT_FALSE(d.cut);
  EXPECT_FALSE(d.changed);
}

TEST(FrameScreenTest, DedupeOffNeverReuses) {
  FrameScreen s(false, 2);
  s.LookAt(Scene(1), 0, 0);
  EXPECT_EQ(s.LookAt(Scene(1), 1, 10).same_as_slot, -1);
}

}  // namespace
}  // namespace deepscan::pipeline
