#include "train/extract.h"

#include <filesystem>
#include <fstream>

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
  }
  // Video rows carry increasing timestamps.
  EXPECT_LT((*r)->records()[1].timestamp_s, (*r)->records()[8].timestamp_s);
}

}  // namespace
}  // namespace deepscan::train
