#include "train/crop_store.h"

#include <fstream>

#include <gtest/gtest.h>

#include "test_env.h"

namespace deepscan::train {
namespace {

cv::Mat Crop(int i, int size) {
  cv::Mat m(size, size, CV_8UC3);
  cv::randu(m, cv::Scalar::all(0), cv::Scalar::all(256));
  m.at<cv::Vec3b>(0, 0) = cv::Vec3b(static_cast<uint8_t>(i), 0, 0);
  return m;
}

TEST(CropStoreTest, RoundTripsCropsAndMetadata) {
  std::string path = deepscan::testing::TempDir() + "/store.h5";
  std::vector<cv::Mat> written;
  {
    auto w = CropStoreWriter::Create(path, 32, 0.3f);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (int i = 0; i < 40; ++i) {
      CropRecord r;
      r.keypoints[2] = {static_cast<float>(i), 2.5f};
      r.box = {1, 2, 3, static_cast<float>(i)};
      r.timestamp_s = i * 0.5;
      r.frame_index = i * 3;
      r.det_score = 0.9f;
      r.label = i % 2;
      r.source = "clip" + std::to_string(i / 10) + ".mp4";
      r.group = i < 20 ? "person:A" : "person:B";
      written.push_back(Crop(i, 32));
      ASSERT_TRUE((*w)->Append(written.back(), r).ok());
    }
    EXPECT_EQ((*w)->Append(cv::Mat(16, 16, CV_8UC3), {}).code(), Code::kInvalidArgument);
    ASSERT_TRUE((*w)->Close().ok());
  }
  auto r = CropStoreReader::Open(path, 8);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ((*r)->size(), 40);
  EXPECT_EQ((*r)->crop_size(), 32);
  EXPECT_FLOAT_EQ((*r)->margin(), 0.3f);
  for (int i = 0; i < 40; ++i) {
    cv::Mat m;
    ASSERT_TRUE((*r)->Read(i, &m).ok());
    EXPECT_EQ(cv::norm(m, written[i], cv::NORM_INF), 0) << i;
    const CropRecord& rec = (*r)->records()[i];
    EXPECT_FLOAT_EQ(rec.keypoints[2].x, static_cast<float>(i));
    EXPECT_FLOAT_EQ(rec.box.h, static_cast<float>(i));
    EXPECT_DOUBLE_EQ(rec.timestamp_s, i * 0.5);
    EXPECT_EQ(rec.frame_index, i * 3);
    EXPECT_EQ(rec.label, i % 2);
    EXPECT_EQ(rec.source, "clip" + std::to_string(i / 10) + ".mp4");
    EXPECT_EQ(rec.group, i < 20 ? "person:A" : "person:B");
  }
  cv::Mat m;
  EXPECT_EQ((*r)->Read(40, &m).code(), Code::kInvalidArgument);
}

TEST(CropStoreTest, LruCacheIsBoundedAndHits) {
  std::string path = deepscan::testing::TempDir() + "/lru.h5";
  {
    auto w = CropStoreWriter::Create(path, 16, 0.3f);
    ASSERT_TRUE(w.ok());
    for (int i = 0; i < 10; ++i) ASSERT_TRUE((*w)->Append(Crop(i, 16), {.source = "s", .group = "g"}).ok());
  }  // the destructor closes
  auto r = CropStoreReader::Open(path, 3);
  ASSERT_TRUE(r.ok());
  cv::Mat m;
  for (int i : {0, 1, 2, 0, 1, 2}) ASSERT_TRUE((*r)->Read(i, &m).ok());
  EXPECT_EQ((*r)->cache_misses(), 3);
  EXPECT_EQ((*r)->cache_hits(), 3);
  ASSERT_TRUE((*r)->Read(3, &m).ok());  // evicts 0, the least recently used
  ASSERT_TRUE((*r)->Read(0, &m).ok());
  EXPECT_EQ((*r)->cache_misses(), 5);
  EXPECT_EQ(m.at<cv::Vec3b>(0, 0)[0], 0);
}

TEST(CropStoreTest, NotAStoreIsAClearError) {
  std::string path = deepscan::testing::TempDir() + "/junk.h5";
  std::ofstream(path) << "not hdf5";
  auto r = CropStoreReader::Open(path);
  EXPECT_EQ(r.status().code(), Code::kCorruptInput);
  EXPECT_EQ(CropStoreReader::Open(path + ".missing").status().code(), Code::kCorruptInput);
}

}  // namespace
}  // namespace deepscan::train
