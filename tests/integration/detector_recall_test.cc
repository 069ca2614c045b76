// BlazeFace (back-256) on the shared data: recall on dlib's annotated faces, a negative, exact
// counts on BlazeFace's sample thumbnails, a dark small face in a 1080p frame, and crowds.
// Figures are printed and recorded as test properties; docs/detector.md explains the floors.
// Skips, saying why, when the shared data or the model (scripts/setup.sh) is absent.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "face/blazeface.h"
#include "face/crop.h"
#include "imglab.h"
#include "test_env.h"

namespace deepscan::face {
namespace {

namespace fs = std::filesystem;

// Recall floor on dlib's frontal faces at IoU >= 0.5 and default options. Measured: 41 of 43
// (0.953: one face scores 0.41, one turned face is found but its box is offset, IoU < 0.5);
// the floor allows two more misses (0.907), as the weakest matches sit at IoU 0.55-0.6 and
// may cross 0.5 with another ONNX Runtime or OpenCV build.
constexpr double kMinDlibRecall = 0.90;
// dogs.jpg holds no person; BlazeFace scores dog faces up to 0.61 (measured, with and without
// tiling), so the default 0.6 threshold lets one through. No dog may look like a confident face.
constexpr float kMaxDogScore = 0.75f;

using testing::GreedyMatch;
using testing::ImglabImage;
using testing::ReadImglab;

int CountAtLeast(const std::vector<Detection>& dets, float score) {
  return static_cast<int>(
      std::count_if(dets.begin(), dets.end(), [&](const Detection& d) { return d.score >= score; }));
}

class DetectorDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = deepscan::testing::SharedDataDir();
    if (data_.empty()) {
      GTEST_SKIP() << "shared data absent (../shared/data beside the repository, or $DEEPSCAN_SHARED_DATA): "
                      "detector recall not measured";
    }
    if (!fs::exists(deepscan::testing::DetectorPath())) {
      GTEST_SKIP() << "BlazeFace model absent (" << deepscan::testing::DetectorPath() << "): run scripts/setup.sh";
    }
  }

  // A back-256 detector with the given options; one thread, so timings are per core.
  static std::unique_ptr<BlazeFaceDetector> MakeDetector(DetectorOptions options) {
    options.model_path = deepscan::testing::DetectorPath();
    auto d = BlazeFaceDetector::Create(options, 1);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() ? std::move(*d) : nullptr;
  }
  static std::unique_ptr<BlazeFaceDetector> MakeDetector(bool tiling) {
    DetectorOptions o;
    o.tiling = tiling;
    return MakeDetector(o);
  }

  cv::Mat Read(const std::string& relative) const {
    cv::Mat m = cv::imread(data_ + "/" + relative, cv::IMREAD_COLOR);
    EXPECT_FALSE(m.empty()) << "unreadable: " << data_ << "/" << relative;
    return m;
  }

  std::string data_;
};

TEST_F(DetectorDataTest, DlibFrontalFacesRecall) {
  auto detector = MakeDetector(DetectorOptions{});  // defaults: threshold 0.6, tiling on
  ASSERT_NE(detector, nullptr);
  const std::string dir = "images/dlib/faces/";
  int total = 0, found = 0, extra = 0;
  std::vector<float> ious, size_ratios;
  for (const char* xml : {"training.xml", "testing.xml"}) {
    std::vector<ImglabImage> images = ReadImglab(data_ + "/" + dir + xml);
    ASSERT_FALSE(images.empty()) << xml;
    int xml_total = 0, xml_found = 0;
    for (const ImglabImage& image : images) {
      std::vector<Box> faces;
      for (const auto& f : image.faces) faces.push_back(f.box);
      cv::Mat img = Read(dir + image.file);
      ASSERT_FALSE(img.empty());
      auto dets = detector->Detect(img);
      ASSERT_TRUE(dets.ok()) << dets.status().ToString();
      auto matches = GreedyMatch(faces, *dets, 0.5f);
      for (auto [t, d] : matches) {
        ious.push_back(IoU(faces[t], (*dets)[d].box));
        size_ratios.push_back((*dets)[d].box.w / faces[t].w);
      }
      const int n = static_cast<int>(faces.size()), m = static_cast<int>(matches.size());
      std::printf("recall %-16s %2d/%2d  (%d unmatched detections)\n", image.file.c_str(), m, n,
                  static_cast<int>(dets->size()) - m);
      std::vector<bool> matched(faces.size());
      for (auto [t, d] : matches) matched[t] = true;
      for (size_t t = 0; t < faces.size(); ++t) {
        if (matched[t]) continue;
        const Box& b = faces[t];
        float best = 0;
        for (const Detection& d : *dets) best = std::max(best, IoU(b, d.box));
        std::printf("  missed %.0fx%.0f face at (%.0f, %.0f): best IoU with any detection %.2f\n", b.w, b.h, b.x, b.y,
                    best);
      }
      RecordProperty("recall_" + image.file, std::to_string(m) + "/" + std::to_string(n));
      xml_total += n;
      xml_found += m;
      extra += static_cast<int>(dets->size()) - m;
    }
    std::printf("recall %-16s %2d/%2d = %.3f\n", xml, xml_found, xml_total, double(xml_found) / xml_total);
    total += xml_total;
    found += xml_found;
  }
  ASSERT_GT(total, 0);
  const double recall = static_cast<double>(found) / total;
  std::sort(ious.begin(), ious.end());
  std::sort(size_ratios.begin(), size_ratios.end());
  double mean_iou = 0;
  for (float v : ious) mean_iou += v / ious.size();
  std::printf(
      "recall overall %d/%d = %.3f at IoU >= 0.5; %d unmatched detections; matched: mean IoU %.2f, "
      "min IoU %.2f, median BlazeFace/dlib box width %.2f\n",
      found, total, recall, extra, mean_iou, ious.empty() ? 0.0 : ious.front(),
      size_ratios.empty() ? 0.0 : size_ratios[size_ratios.size() / 2]);
  RecordProperty("recall_overall", std::to_string(recall));
  EXPECT_GE(recall, kMinDlibRecall) << found << " of " << total << " annotated faces found";
}

TEST_F(DetectorDataTest, DogsAreNotConfidentFaces) {
  cv::Mat img = Read("images/dlib/faces/dogs.jpg");
  ASSERT_FALSE(img.empty());
  for (bool tiling : {false, true}) {
    DetectorOptions o;
    o.tiling = tiling;
    o.score_threshold = 0.3f;  // look below the default threshold to report the best dog score
    auto detector = MakeDetector(o);
    ASSERT_NE(detector, nullptr);
    auto dets = detector->Detect(img);
    ASSERT_TRUE(dets.ok()) << dets.status().ToString();
    const float best = dets->empty() ? 0.0f : dets->front().score;
    std::printf("dogs.jpg tiling=%d: best score %.2f, %d at the default threshold 0.6\n", tiling, best,
                CountAtLeast(*dets, DetectorOptions{}.score_threshold));
    RecordProperty(tiling ? "dogs_best_score_tiling" : "dogs_best_score", std::to_string(best));
    EXPECT_LT(best, kMaxDogScore) << "tiling=" << tiling;
  }
}

TEST_F(DetectorDataTest, BlazeFaceSampleCounts) {
  // 128x128 thumbnails (the letterboxed 4faces.png has 10-16 px faces): the size floor that
  // keeps useless faces out of the classifier is lifted to count what the detector sees.
  DetectorOptions o;
  o.min_face_px = 0;
  auto detector = MakeDetector(o);
  ASSERT_NE(detector, nullptr);
  for (auto [file, expected] : {std::pair{"1face.png", 1}, {"3faces.png", 3}, {"4faces.png", 4}}) {
    cv::Mat img = Read(std::string("images/blazeface/") + file);
    ASSERT_FALSE(img.empty());
    auto dets = detector->Detect(img);
    ASSERT_TRUE(dets.ok()) << dets.status().ToString();
    std::printf("%s: %zu faces (expected %d), lowest score %.2f\n", file, dets->size(), expected,
                dets->empty() ? 0.0f : dets->back().score);
    EXPECT_EQ(static_cast<int>(dets->size()), expected) << file;
  }
}

TEST_F(DetectorDataTest, DarkSmallFaceIn1080pNeedsTiling) {
  auto whole = MakeDetector(false), tiled = MakeDetector(true);
  ASSERT_NE(whole, nullptr);
  ASSERT_NE(tiled, nullptr);
  // Background: a face-free photo, upscaled, blurred and darkened.
  cv::Mat background = Read("images/dlib/faces/dogs.jpg");
  ASSERT_FALSE(background.empty());
  cv::resize(background, background, {1920, 1080}, 0, 0, cv::INTER_LINEAR);
  cv::GaussianBlur(background, background, {0, 0}, 25);
  background.convertTo(background, -1, 0.3);
  auto bg_dets = tiled->Detect(background);
  ASSERT_TRUE(bg_dets.ok());
  ASSERT_TRUE(bg_dets->empty()) << "the background alone must hold no face";

  constexpr int kFace = 80;          // larger side of the face box in the frame
  constexpr int kPatch = 2 * kFace;  // pasted square: the face with its surroundings
  constexpr double kDarken = 0.4;
  int pasted = 0, found_tiled = 0, found_whole = 0;
  for (const char* source : {"obama.jpg", "biden.jpg", "lin-manuel-miranda.png"}) {
    cv::Mat photo = Read(std::string("images/face_recognition/") + source);
    ASSERT_FALSE(photo.empty());
    auto src = whole->Detect(photo);
    ASSERT_TRUE(src.ok() && !src->empty()) << source << ": no face to transplant";
    const Box face = src->front().box;
    // CropFace with margin 1 makes a square of twice the face's larger side: the face box
    // becomes kFace wide in a kPatch patch.
    cv::Mat patch;
    CropFace(photo, face, 1.0f, kPatch, &patch);
    patch.convertTo(patch, -1, kDarken);
    const Point tl = ToCrop({face.x, face.y}, face, 1.0f, kPatch);
    const Point br = ToCrop({face.x + face.w, face.y + face.h}, face, 1.0f, kPatch);
    // A 5 x 3 grid of positions from edge to edge: corners and tile overlap zones included.
    for (int row = 0; row < 3; ++row) {
      for (int col = 0; col < 5; ++col) {
        const int x0 = 20 + col * (1920 - kPatch - 40) / 4, y0 = 20 + row * (1080 - kPatch - 40) / 2;
        cv::Mat frame = background.clone();
        patch.copyTo(frame(cv::Rect(x0, y0, kPatch, kPatch)));
        const Box truth{x0 + tl.x, y0 + tl.y, br.x - tl.x, br.y - tl.y};
        auto hit = [&](BlazeFaceDetector* d) {
          auto dets = d->Detect(frame);
          EXPECT_TRUE(dets.ok());
          return dets.ok() && !GreedyMatch({truth}, *dets, 0.5f).empty();
        };
        ++pasted;
        const bool t = hit(tiled.get()), w = hit(whole.get());
        found_tiled += t;
        found_whole += w;
        EXPECT_TRUE(t) << source << " pasted at (" << x0 << ", " << y0 << "): " << truth.w << "x" << truth.h
                       << " face not found with tiling";
      }
    }
  }
  std::printf("dark %d px face in 1920x1080: found %d/%d with tiling, %d/%d without\n", kFace, found_tiled, pasted,
              found_whole, pasted);
  RecordProperty("small_face_tiling", std::to_string(found_tiled) + "/" + std::to_string(pasted));
  RecordProperty("small_face_no_tiling", std::to_string(found_whole) + "/" + std::to_string(pasted));

  // Cost per 1080p frame, one thread: the median of 7 runs (reported, not asserted: shared
  // machines are noisy).
  for (auto [name, d] : {std::pair{"no_tiling", whole.get()}, {"tiling", tiled.get()}}) {
    ASSERT_TRUE(d->Detect(background).ok());  // warm-up
    std::vector<double> ms;
    for (int i = 0; i < 7; ++i) {
      auto start = std::chrono::steady_clock::now();
      ASSERT_TRUE(d->Detect(background).ok());
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
    std::printf("1920x1080 %s: %.1f ms per frame (median of %zu, 1 thread)\n", name, ms[ms.size() / 2], ms.size());
    RecordProperty(std::string("ms_per_1080p_frame_") + name, std::to_string(ms[ms.size() / 2]));
  }
}

TEST_F(DetectorDataTest, CrowdsTilingFindsAtLeastAsMany) {
  // Default options but max_faces, which would cap a crowd at 16.
  DetectorOptions o;
  o.max_faces = 100000;
  o.tiling = false;
  auto whole = MakeDetector(o);
  o.tiling = true;
  auto tiled = MakeDetector(o);
  ASSERT_NE(whole, nullptr);
  ASSERT_NE(tiled, nullptr);
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(data_ + "/images/crowd")) {
    if (e.path().extension() == ".jpg" || e.path().extension() == ".png") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty());
  int sum_whole = 0, sum_tiled = 0;
  for (const fs::path& f : files) {
    cv::Mat img = cv::imread(f.string(), cv::IMREAD_COLOR);
    ASSERT_FALSE(img.empty()) << f;
    auto w = whole->Detect(img), t = tiled->Detect(img);
    ASSERT_TRUE(w.ok() && t.ok()) << f;
    const bool tiles = std::min(img.cols, img.rows) >= o.tile_min_side;
    std::printf("crowd %-7s %4dx%-4d faces: %3zu without tiling, %3zu with%s\n", f.filename().c_str(), img.cols,
                img.rows, w->size(), t->size(), tiles ? "" : " (below tile_min_side: not tiled)");
    EXPECT_GE(t->size(), w->size()) << f;
    sum_whole += static_cast<int>(w->size());
    sum_tiled += static_cast<int>(t->size());
  }
  std::printf("crowd total: %d faces without tiling, %d with\n", sum_whole, sum_tiled);
  RecordProperty("crowd_faces_no_tiling", sum_whole);
  RecordProperty("crowd_faces_tiling", sum_tiled);
  EXPECT_GT(sum_tiled, sum_whole) << "tiling should find small crowd faces the whole-frame pass misses";
}

}  // namespace
}  // namespace deepscan::face
