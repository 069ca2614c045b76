// face::LandmarkModel without the shared data: loading errors, the box mapping, the error measure, and
// Predict's argument checks (these need Debian's libdlib-data and skip without it).
#include "face/landmarks.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <dlib/image_processing/shape_predictor.h>
#include <dlib/serialize.h>
#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "test_env.h"

namespace deepscan::face {
namespace {

namespace fs = std::filesystem;

TEST(LandmarkModelTest, MissingFileIsInvalidModelNamingIt) {
  const std::string path = deepscan::testing::TempDir() + "/absent.dat";
  auto m = LandmarkModel::Load(path);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Code::kInvalidModel);
  EXPECT_NE(m.status().message().find(path), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find("not found"), std::string::npos) << m.status().message();
  // A directory is not a model either.
  EXPECT_EQ(LandmarkModel::Load(deepscan::testing::TempDir()).status().code(), Code::kInvalidModel);
}

TEST(LandmarkModelTest, JunkFileIsInvalidModel) {
  const std::string path = deepscan::testing::TempDir() + "/junk.dat";
  std::ofstream(path) << "this is not a dlib shape predictor, just some text\n";
  auto m = LandmarkModel::Load(path);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Code::kInvalidModel);
  EXPECT_NE(m.status().message().find("not a dlib shape predictor"), std::string::npos) << m.status().message();
  std::ofstream(path, std::ios::trunc).close();  // empty
  EXPECT_EQ(LandmarkModel::Load(path).status().code(), Code::kInvalidModel);
}

TEST(LandmarkModelTest, PredictorWithOtherPartCountIsRefused) {
  // A valid dlib shape predictor with 5 parts (dlib's other public model has 5).
  dlib::matrix<float, 0, 1> initial(10);
  for (int i = 0; i < 10; ++i) initial(i) = 0.1f * i;
  dlib::shape_predictor five(initial, {}, {});
  const std::string path = deepscan::testing::TempDir() + "/five.dat";
  dlib::serialize(path) << five;
  auto m = LandmarkModel::Load(path);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Code::kInvalidModel);
  EXPECT_NE(m.status().message().find("5 parts"), std::string::npos) << m.status().message();
}

TEST(LandmarkModelTest, TruncatedModelIsInvalidModel) {
  if (!fs::exists(kDefaultLandmarkModelPath)) GTEST_SKIP() << kDefaultLandmarkModelPath << " absent (libdlib-data)";
  const std::string path = deepscan::testing::TempDir() + "/truncated.dat";
  {
    std::ifstream in(kDefaultLandmarkModelPath, std::ios::binary);
    std::vector<char> head(1 << 20);
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    std::ofstream(path, std::ios::binary).write(head.data(), in.gcount());
  }
  auto m = LandmarkModel::Load(path);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Code::kInvalidModel);
}

TEST(LandmarkBoxTest, MapBoxShiftsTheCentreAndScalesTheSides) {
  const Box b{100, 200, 40, 50};
  const Box same = MapBox(b, {});
  EXPECT_FLOAT_EQ(same.x, 100);
  EXPECT_FLOAT_EQ(same.y, 200);
  EXPECT_FLOAT_EQ(same.w, 40);
  EXPECT_FLOAT_EQ(same.h, 50);
  const Box m = MapBox(b, {0.25f, -0.1f, 1.5f, 2.0f});
  EXPECT_FLOAT_EQ(m.x + m.w / 2, 120 + 10);  // centre + 0.25 * 40
  EXPECT_FLOAT_EQ(m.y + m.h / 2, 225 - 5);   // centre - 0.1 * 50
  EXPECT_FLOAT_EQ(m.w, 60);
  EXPECT_FLOAT_EQ(m.h, 100);
}

TEST(LandmarkBoxTest, NormalisedErrorDividesByTheOuterEyeCorners) {
  Landmarks truth{};
  truth[36] = {0, 0};
  truth[45] = {20, 0};  // inter-ocular distance 20
  Landmarks shifted = truth;
  for (Point& p : shifted) p.x += 2;  // every point 2 px off
  EXPECT_DOUBLE_EQ(NormalisedLandmarkError(truth, truth), 0);
  EXPECT_NEAR(NormalisedLandmarkError(shifted, truth), 0.1, 1e-9);
  Landmarks one = truth;
  one[0].y += 68 * 20 * 0.5f;  // one point far off: mean 0.5 of the inter-ocular distance
  EXPECT_NEAR(NormalisedLandmarkError(one, truth), 0.5, 1e-6);
  EXPECT_TRUE(std::isinf(NormalisedLandmarkError(truth, Landmarks{})));
}

class LandmarkPredictTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(kDefaultLandmarkModelPath)) return;
    auto m = LandmarkModel::Load(kDefaultLandmarkModelPath);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    model_ = std::move(*m).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  void SetUp() override {
    if (!fs::exists(kDefaultLandmarkModelPath)) GTEST_SKIP() << kDefaultLandmarkModelPath << " absent (libdlib-data)";
    ASSERT_NE(model_, nullptr);
  }
  static LandmarkModel* model_;
};
LandmarkModel* LandmarkPredictTest::model_ = nullptr;

TEST_F(LandmarkPredictTest, RejectsBadImagesAndBoxes) {
  EXPECT_EQ(model_->path(), kDefaultLandmarkModelPath);
  EXPECT_FLOAT_EQ(model_->mapping().sx, kFittedBoxMapping.sx);
  cv::Mat bgr(120, 160, CV_8UC3, cv::Scalar(90, 120, 150));
  EXPECT_EQ(model_->Predict(cv::Mat(), {10, 10, 50, 50}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(model_->Predict(cv::Mat(120, 160, CV_8UC1), {10, 10, 50, 50}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(model_->Predict(bgr, {10, 10, 0, 50}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(model_->Predict(bgr, {10, 10, NAN, 50}).status().code(), Code::kInvalidArgument);
}

TEST_F(LandmarkPredictTest, PointsFollowTheBoxEvenPastTheFrame) {
  // A face-like blob: a light ellipse with two dark eyes and a dark mouth.
  cv::Mat bgr(200, 200, CV_8UC3, cv::Scalar(40, 40, 40));
  cv::ellipse(bgr, {100, 100}, {45, 60}, 0, 0, 360, cv::Scalar(150, 170, 200), cv::FILLED);
  cv::circle(bgr, {82, 85}, 6, cv::Scalar(20, 20, 20), cv::FILLED);
  cv::circle(bgr, {118, 85}, 6, cv::Scalar(20, 20, 20), cv::FILLED);
  cv::ellipse(bgr, {100, 130}, {16, 6}, 0, 0, 360, cv::Scalar(30, 30, 90), cv::FILLED);
  const Box box{55, 50, 90, 90};
  auto p = model_->Predict(bgr, box);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  const Box dlib_box = MapBox(box, kFittedBoxMapping);
  for (const Point& q : *p) {  // the predicted shape stays about its box
    EXPECT_GT(q.x, dlib_box.x - 0.25f * dlib_box.w);
    EXPECT_LT(q.x, dlib_box.x + 1.25f * dlib_box.w);
    EXPECT_GT(q.y, dlib_box.y - 0.25f * dlib_box.h);
    EXPECT_LT(q.y, dlib_box.y + 1.25f * dlib_box.h);
  }
  EXPECT_LT((*p)[36].x, (*p)[45].x);  // the image's left eye corner (subject's right) first
  EXPECT_LT((*p)[27].y, (*p)[57].y);  // nose bridge above the lower lip
  // Moved by 30 px, the box moves the points by about as much (the image moves with it).
  cv::Mat moved(200, 200, CV_8UC3, cv::Scalar(40, 40, 40));
  bgr(cv::Rect(0, 0, 170, 200)).copyTo(moved(cv::Rect(30, 0, 170, 200)));
  auto q = model_->Predict(moved, {box.x + 30, box.y, box.w, box.h});
  ASSERT_TRUE(q.ok());
  for (int i = 0; i < kLandmarkCount; ++i) {
    EXPECT_NEAR((*q)[i].x, (*p)[i].x + 30, 1.01) << i;
    EXPECT_NEAR((*q)[i].y, (*p)[i].y, 1.01) << i;
  }
  // A box past the frame's corner still gives 68 finite points (outside pixels read as black).
  auto edge = model_->Predict(bgr, {-40, -40, 90, 90});
  ASSERT_TRUE(edge.ok());
  for (const Point& e : *edge) EXPECT_TRUE(std::isfinite(e.x) && std::isfinite(e.y));
}

}  // namespace
}  // namespace deepscan::face
