#include "train/extract.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <utility>

#include <gtest/gtest.h>

#include "test_env.h"
#include "train/manifest.h"

namespace deepscan::train {
namespace {

TEST(CsvTest, QuotesCommasAndLineEnds) {
  auto rows = ParseCsv("a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",\n\"multi\nline\",2,3");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"x, y", "say \"hi\"", ""}));
  EXPECT_EQ(rows[2][0], "multi\nline");
}

TEST(ManifestTest, ResolvesPathsAndLabels) {
  std::string dir = deepscan::testing::TempDir();
  std::filesystem::create_directories(dir + "/videos");
  std::ofstream(dir + "/videos/a.mp4") << "x";
  std::ofstream(dir + "/b.mp4") << "x";
  std::ofstream(dir + "/videos/MANIFEST.csv") << "file,label,identity_group\nvideos/a.mp4,REAL,person:A\nb.mp4,fake,\n";
  auto m = ReadManifest(dir + "/videos/MANIFEST.csv");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->size(), 2u);
  EXPECT_EQ((*m)[0].label, 0);
  EXPECT_EQ((*m)[0].group, "person:A");
  EXPECT_EQ((*m)[1].label, 1);
  EXPECT_EQ((*m)[1].group, "b.mp4");  // no group: the file is its own group
  std::ofstream(dir + "/bad.csv") << "file,label\nmissing.mp4,REAL\n";
  EXPECT_EQ(ReadManifest(dir + "/bad.csv").status().code(), Code::kNotFound);
  std::ofstream(dir + "/bad2.csv") << "file,label\nb.mp4,maybe\n";
  EXPECT_EQ(ReadManifest(dir + "/bad2.csv").status().code(), Code::kInvalidArgument);
}

TEST(ExtractTest, PhotoAndVideoThroughTheScanPath) {
  std::string data = deepscan::testing::SharedDataDir();
  if (data.empty()) GTEST_SKIP() << "../shared/data not present";
  std::string dir = deepscan::testing::TempDir();
  std::string photo = data + "/images/blazeface/1face.png";
  std::string clip = dir + "/face.mp4";
  ASSERT_EQ(deepscan::testing::RunCommand("ffmpeg -nostdin -loglevel error -y -loop 1 -t 1 -framerate 25 -i '" + photo +
                                          "' -vf scale=640:-2,format=yuv420p -c:v libx264 '" + clip + "'"),
            0);
  std::ofstream(dir + "/corrupt.mp4") << "garbage garbage garbage";
  std::vector<LabelledInput> inputs = {{photo, "1face.png", 0, "person:P"},
                                       {dir + "/corrupt.mp4", "corrupt.mp4", 0, "g"},
                                       {clip, "face.mp4", 0, "person:P"}};
  ExtractOptions opt;
  opt.detector.model_path = deepscan::testing::DetectorPath();
  // Landmarks are checked below where Debian's libdlib-data is installed.
  const bool landmarks = std::filesystem::exists(face::kDefaultLandmarkModelPath);
  opt.landmarks = landmarks;
  opt.frames_per_video = 8;
  opt.crop_size = 64;
  std::string path = dir + "/crops.h5";
  auto w = CropStoreWriter::Create(path, opt.crop_size, opt.margin);
  ASSERT_TRUE(w.ok());
  int progress_calls = 0;
  auto rep = ExtractCrops(inputs, opt, w->get(), [&](int, int, int) { ++progress_calls; });
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  ASSERT_TRUE((*w)->Close().ok());
  EXPECT_EQ(progress_calls, 3);
  EXPECT_EQ(rep->inputs_ok, 2);
  ASSERT_EQ(rep->failures.size(), 1u);
  EXPECT_EQ(rep->failures[0].first, "corrupt.mp4");
  EXPECT_EQ(rep->crops, 1 + 8);
  auto r = CropStoreReader::Open(path);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ((*r)->size(), 9);
  for (const CropRecord& rec : (*r)->records()) {
    EXPECT_EQ(rec.group, "person:P");
    // The eyes and the mouth lie inside the crop, eyes above the mouth.
    for (int k : {0, 1, 3}) {
      EXPECT_GT(rec.keypoints[k].x, 0);
      EXPECT_LT(rec.keypoints[k].x, 64);
      EXPECT_GT(rec.keypoints[k].y, 0);
      EXPECT_LT(rec.keypoints[k].y, 64);
    }
    EXPECT_LT(rec.keypoints[0].y, rec.keypoints[3].y);
    ASSERT_EQ(rec.landmarks.has_value(), landmarks);
    if (!landmarks) continue;
    // The landmarks went through the keypoints' frame-to-crop mapping: the centre of each eye's six points
    // lies near BlazeFace's keypoint for that eye (0: the subject's right eye, iBUG 36-41), the mouth's
    // centre near the mouth keypoint, all within a tenth of the crop.
    auto centre = [&](int from, int to) {
      Point c;
      for (int k = from; k <= to; ++k) {
        c.x += (*rec.landmarks)[k].x / (to - from + 1);
        c.y += (*rec.landmarks)[k].y / (to - from + 1);
      }
      return c;
    };
    const std::pair<Point, int> pairs[] = {{centre(36, 41), 0}, {centre(42, 47), 1}, {centre(48, 67), 3}};
    for (const auto& [c, k] : pairs) {
      EXPECT_LT(std::hypot(c.x - rec.keypoints[k].x, c.y - rec.keypoints[k].y), 0.1 * 64) << "keypoint " << k;
    }
  }
  // Video rows carry increasing timestamps.
  EXPECT_LT((*r)->records()[1].timestamp_s, (*r)->records()[8].timestamp_s);
  if (landmarks) {
    EXPECT_EQ(rep->landmark_faces, 9);
    EXPECT_GT(rep->landmark_s, 0);
    std::printf("landmarks: %.2f ms per face, model load %.2f s\n", 1000 * rep->landmark_s / rep->landmark_faces,
                rep->landmark_load_s);
  }
}

TEST(ExtractTest, LandmarksOffOrModelMissing) {
  const std::string photo = deepscan::testing::SharedDataDir() + "/images/blazeface/1face.png";
  if (!std::filesystem::exists(photo)) GTEST_SKIP() << photo << " not present (../shared/data)";
  const std::string dir = deepscan::testing::TempDir();
  std::vector<LabelledInput> inputs = {{photo, "1face.png", 0, "person:P"}};
  ExtractOptions opt;
  opt.detector.model_path = deepscan::testing::DetectorPath();
  opt.crop_size = 64;
  // Off: the crop is stored without landmarks (the model path is not even looked at).
  opt.landmarks = false;
  opt.landmark_model = dir + "/absent.dat";
  {
    auto w = CropStoreWriter::Create(dir + "/off.h5", opt.crop_size, opt.margin);
    ASSERT_TRUE(w.ok());
    auto rep = ExtractCrops(inputs, opt, w->get());
    ASSERT_TRUE(rep.ok()) << rep.status().ToString();
    ASSERT_TRUE((*w)->Close().ok());
    EXPECT_EQ(rep->crops, 1);
    EXPECT_EQ(rep->landmark_faces, 0);
  }
  auto r = CropStoreReader::Open(dir + "/off.h5");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ((*r)->size(), 1);
  EXPECT_FALSE((*r)->records()[0].landmarks.has_value());
  // On with a missing model: the run stops before any input, naming the file.
  opt.landmarks = true;
  auto w = CropStoreWriter::Create(dir + "/missing.h5", opt.crop_size, opt.margin);
  ASSERT_TRUE(w.ok());
  auto rep = ExtractCrops(inputs, opt, w->get());
  ASSERT_FALSE(rep.ok());
  EXPECT_EQ(rep.status().code(), Code::kInvalidModel);
  EXPECT_NE(rep.status().message().find(opt.landmark_model), std::string::npos) << rep.status().message();
  EXPECT_EQ((*w)->size(), 0);
}

}  // namespace
}  // namespace deepscan::train
