#include "train/labelled_sets.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "test_env.h"

namespace fs = std::filesystem;

namespace deepscan::train {
namespace {

void Touch(const fs::path& p) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << "x";
}

TEST(LabelledSetsTest, Dfdc) {
  fs::path dir = deepscan::testing::TempDir();
  Touch(dir / "a.mp4");
  Touch(dir / "b.mp4");
  std::ofstream(dir / "metadata.json")
      << R"({"b.mp4": {"label": "FAKE", "split": "train", "original": "a.mp4"}, "a.mp4": {"label": "REAL"}})";
  EXPECT_EQ(DetectSetLayout(dir.string()), "dfdc");
  auto s = ReadLabelledSet(dir.string());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->size(), 2u);
  EXPECT_EQ((*s)[0].name, "a.mp4");
  EXPECT_EQ((*s)[0].label, 0);
  EXPECT_EQ((*s)[1].label, 1);
  EXPECT_EQ((*s)[1].group, "a.mp4");  // a fake shares its original's group
  std::ofstream(dir / "broken.json") << R"({"c.mp4": {"split": "x"}})";
  EXPECT_EQ(ReadLabelledSet((dir / "broken.json").string()).status().code(), Code::kInvalidArgument);
}

TEST(LabelledSetsTest, FaceForensics) {
  fs::path dir = deepscan::testing::TempDir();
  Touch(dir / "original_sequences/youtube/c23/videos/000.mp4");
  Touch(dir / "original_sequences/youtube/c23/videos/001.mp4");
  Touch(dir / "manipulated_sequences/Deepfakes/c23/videos/000_003.mp4");
  Touch(dir / "manipulated_sequences/FaceSwap/c23/videos/001_870.mp4");
  Touch(dir / "manipulated_sequences/FaceSwap/c40/videos/001_870.mp4");
  EXPECT_EQ(DetectSetLayout(dir.string()), "ffpp");
  auto s = ReadLabelledSet(dir.string());
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->size(), 4u);
  int fakes = 0;
  for (const auto& v : *s) fakes += v.label;
  EXPECT_EQ(fakes, 2);
  auto c40 = ReadLabelledSet(dir.string(), {.ffpp_compression = "c40"});
  ASSERT_TRUE(c40.ok());
  EXPECT_EQ(c40->size(), 1u);
}

TEST(LabelledSetsTest, CelebDfWithAndWithoutTheTestList) {
  fs::path dir = deepscan::testing::TempDir();
  Touch(dir / "Celeb-real/id0_0000.mp4");
  Touch(dir / "YouTube-real/00170.mp4");
  Touch(dir / "Celeb-synthesis/id0_id16_0000.mp4");
  EXPECT_EQ(DetectSetLayout(dir.string()), "celebdf");
  auto all = ReadLabelledSet(dir.string());
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
  std::ofstream(dir / "List_of_testing_videos.txt")
      << "1 YouTube-real/00170.mp4\n0 Celeb-synthesis/id0_id16_0000.mp4\n";
  auto test = ReadLabelledSet(dir.string());
  ASSERT_TRUE(test.ok());
  ASSERT_EQ(test->size(), 2u);
  EXPECT_EQ((*test)[0].label, 0);  // "1" = real in Celeb-DF's list
  EXPECT_EQ((*test)[1].label, 1);
  EXPECT_EQ((*test)[1].group, "celebdf:id0");
}

TEST(LabelledSetsTest, UnknownLayoutIsAClearError) {
  fs::path dir = deepscan::testing::TempDir();
  EXPECT_EQ(ReadLabelledSet(dir.string()).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ReadLabelledSet((dir / "nope").string()).status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace deepscan::train
