// pipeline::FaceFinder, the detection schedule: whole-frame searches every k-th sampled frame,
// tiles only while they pay, re-find crops in between. Counts the detector's network runs and
// checks that the face is found in every frame. Uses the shared data's face photos; skips when
// they or the detector model (scripts/setup.sh) are absent.
#include "pipeline/face_finder.h"

#include <filesystem>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "face/crop.h"
#include "test_env.h"

namespace deepscan::pipeline {
namespace {

namespace fs = std::filesystem;

class FaceFinderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string data = deepscan::testing::SharedDataDir();
    photo_ = data + "/images/face_recognition/obama.jpg";
    if (data.empty() || !fs::exists(photo_)) GTEST_SKIP() << "no shared data (../shared/data)";
    if (!fs::exists(deepscan::testing::DetectorPath())) GTEST_SKIP() << "no detector model: run scripts/setup.sh";
    options_.detector.model_path = deepscan::testing::DetectorPath();
    auto d = face::BlazeFaceDetector::Create(options_.detector, 2);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    detector_ = std::move(*d);
    DetectorOptions ro = options_.detector;
    ro.model_path = deepscan::testing::FrontDetectorPath();
    auto r = face::BlazeFaceDetector::Create(ro, 2);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    refinder_ = std::move(*r);
  }

  // A 1080p frame with the photo's face pasted at (x, y), `side` pixels wide, `gain` brightness.
  cv::Mat Frame(int x, int y, int side, double gain) {
    cv::Mat photo = cv::imread(photo_);
    auto found = detector_->Detect(photo);
    EXPECT_TRUE(found.ok() && !found->empty());
    cv::Mat patch;
    face::CropFace(photo, found->front().box, 1.0f, 2 * side, &patch);  // face = half the patch
    patch.convertTo(patch, -1, gain);
    cv::Mat frame(1080, 1920, CV_8UC3, cv::Scalar(40, 50, 60));
    patch.copyTo(frame(cv::Rect(x, y, 2 * side, 2 * side)));
    return frame;
  }

  std::string photo_;
  ScanOptions options_;
  std::unique_ptr<face::BlazeFaceDetector> detector_, refinder_;
};

TEST_F(FaceFinderTest, LargeFaceTilesOnceThenRefindsInCrops) {
  options_.detector.detect_every = 4;
  FaceFinder finder(detector_.get(), refinder_.get(), options_);
  std::vector<Box> boxes;
  for (int i = 0; i < 5; ++i) {
    // The head drifts 12 px per sampled frame.
    auto faces = finder.Find(Frame(700 + 12 * i, 300, 260, 1.0));
    ASSERT_TRUE(faces.ok()) << faces.status().ToString();
    ASSERT_EQ(faces->size(), 1u) << "frame " << i;
    boxes.push_back(faces->front().box);
  }
  // Frame 0: whole frame + 8 tiles; 1-3: one crop each; 4: whole frame only (tiles found nothing new).
  EXPECT_EQ(finder.runs(), 9 + 3 + 1);
  EXPECT_EQ(finder.full_searches(), 2);
  EXPECT_FALSE(finder.tiling_on());
  // The crops follow the drift (they see the face 7x larger than the whole-frame search, so
  // their boxes are finer than frame 0's: compare them with each other).
  for (int i = 2; i < 4; ++i) {
    EXPECT_NEAR(boxes[i].x - boxes[i - 1].x, 12.0, 8.0) << "frame " << i;  // jitter: 2-3% of the face
    EXPECT_NEAR(boxes[i].w, boxes[1].w, 0.05 * boxes[1].w);
  }
  for (int i = 1; i < 5; ++i) {
    Box shifted = boxes[0];
    shifted.x += 12.0f * i;
    EXPECT_GT(face::IoU(boxes[i], shifted), 0.7f) << "frame " << i;
  }
}

TEST_F(FaceFinderTest, SmallFaceKeepsTilingOn) {
  options_.detector.detect_every = 4;
  FaceFinder finder(detector_.get(), refinder_.get(), options_);
  for (int i = 0; i < 5; ++i) {
    auto faces = finder.Find(Frame(1500, 800, 50, 0.6));  // a 50 px face: the whole-frame search misses it
    ASSERT_TRUE(faces.ok());
    ASSERT_EQ(faces->size(), 1u) << "frame " << i;
  }
  EXPECT_TRUE(finder.tiling_on());
  EXPECT_EQ(finder.runs(), 9 + 3 + 9);  // tiles again on frame 4
}

TEST_F(FaceFinderTest, EveryFrameSearchedWhenAsked) {
  options_.detector.detect_every = 1;
  FaceFinder finder(detector_.get(), refinder_.get(), options_);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(finder.Find(Frame(700, 300, 260, 1.0)).ok());
  EXPECT_EQ(finder.full_searches(), 4);
  EXPECT_EQ(finder.runs(), 9 + 3);
}

TEST_F(FaceFinderTest, LostFaceTriggersAWholeFrameSearch) {
  options_.detector.detect_every = 100;
  FaceFinder finder(detector_.get(), refinder_.get(), options_);
  ASSERT_EQ(finder.Find(Frame(700, 300, 260, 1.0))->size(), 1u);
  EXPECT_EQ(finder.runs(), 9);
  cv::Mat empty(1080, 1920, CV_8UC3, cv::Scalar(40, 50, 60));
  // The face is not re-found in its crop: the whole frame is searched at once (no tiles: they
  // found nothing the whole frame missed), and finding nothing there, the face is forgotten.
  EXPECT_TRUE(finder.Find(empty)->empty());
  EXPECT_EQ(finder.runs(), 9 + 1 + 1);
  EXPECT_EQ(finder.full_searches(), 2);
  // Knowing no face, the next frame is searched whole straight away.
  EXPECT_TRUE(finder.Find(empty)->empty());
  EXPECT_EQ(finder.runs(), 9 + 2 + 1);
  EXPECT_EQ(finder.full_searches(), 3);
  // The face comes back: found by that whole-frame search, then re-found in a crop.
  ASSERT_EQ(finder.Find(Frame(700, 300, 260, 1.0))->size(), 1u);
  ASSERT_EQ(finder.Find(Frame(700, 300, 260, 1.0))->size(), 1u);
  EXPECT_EQ(finder.full_searches(), 4);
}

}  // namespace
}  // namespace deepscan::pipeline
