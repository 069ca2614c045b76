#include "train/crop_store.h"

#include <H5Cpp.h>

#include <cmath>
#include <fstream>
#include <limits>

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

face::Landmarks SomeLandmarks(int i) {
  face::Landmarks l;
  for (int k = 0; k < face::kLandmarkCount; ++k) l[k] = {i + 0.25f * k, 100.5f - k};
  return l;
}

// Writes a 4-crop store with landmarks on crops 0 and 2 only.
void WriteSmallStore(const std::string& path) {
  auto w = CropStoreWriter::Create(path, 16, 0.3f);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  for (int i = 0; i < 4; ++i) {
    CropRecord r;
    r.keypoints[0] = {static_cast<float>(i), 1};
    if (i % 2 == 0) r.landmarks = SomeLandmarks(i);
    r.frame_index = i;
    r.source = "s" + std::to_string(i);
    r.group = "g";
    ASSERT_TRUE((*w)->Append(Crop(i, 16), r).ok());
  }
  ASSERT_TRUE((*w)->Close().ok());
}

TEST(CropStoreTest, RoundTripsLandmarksAndTheirAbsence) {
  const std::string path = deepscan::testing::TempDir() + "/landmarks.h5";
  WriteSmallStore(path);
  auto r = CropStoreReader::Open(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->format_version(), kCropStoreFormatVersion);
  ASSERT_EQ((*r)->size(), 4);
  for (int i = 0; i < 4; ++i) {
    const CropRecord& rec = (*r)->records()[i];
    EXPECT_FLOAT_EQ(rec.keypoints[0].x, static_cast<float>(i));
    if (i % 2) {
      EXPECT_FALSE(rec.landmarks.has_value()) << i;
      continue;
    }
    ASSERT_TRUE(rec.landmarks.has_value()) << i;
    const face::Landmarks want = SomeLandmarks(i);
    for (int k = 0; k < face::kLandmarkCount; ++k) {
      EXPECT_FLOAT_EQ((*rec.landmarks)[k].x, want[k].x) << i << "/" << k;
      EXPECT_FLOAT_EQ((*rec.landmarks)[k].y, want[k].y) << i << "/" << k;
    }
  }
  // The file says what it is (for other readers, e.g. h5py): format and version attributes.
  H5::H5File f(path, H5F_ACC_RDONLY);
  int version = 0;
  f.openAttribute("format_version").read(H5::PredType::NATIVE_INT, &version);
  EXPECT_EQ(version, 2);
  H5::Attribute format = f.openAttribute("format");
  std::string name;
  format.read(format.getStrType(), name);
  EXPECT_EQ(name, "deepscan-crop-store");
  hsize_t dims[3];
  ASSERT_EQ(f.openDataSet("landmarks").getSpace().getSimpleExtentDims(dims), 3);
  EXPECT_EQ(dims[0], 4u);
  EXPECT_EQ(dims[1], 68u);
  EXPECT_EQ(dims[2], 2u);
}

TEST(CropStoreTest, NonFiniteLandmarksAreRefused) {
  auto w = CropStoreWriter::Create(deepscan::testing::TempDir() + "/nan.h5", 16, 0.3f);
  ASSERT_TRUE(w.ok());
  CropRecord r;
  r.landmarks = SomeLandmarks(0);
  (*r.landmarks)[7].y = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ((*w)->Append(Crop(0, 16), r).code(), Code::kInvalidArgument);
  EXPECT_EQ((*w)->size(), 0);
}

// A version-1 store, as deepscan wrote it before landmarks: the same file without /landmarks and without
// the format attributes.
void MakeVersion1(const std::string& path) {
  H5::H5File f(path, H5F_ACC_RDWR);
  f.unlink("landmarks");
  f.removeAttr("format");
  f.removeAttr("format_version");
}

TEST(CropStoreTest, ReadsVersion1StoresWithoutLandmarks) {
  const std::string path = deepscan::testing::TempDir() + "/v1.h5";
  WriteSmallStore(path);
  MakeVersion1(path);
  auto r = CropStoreReader::Open(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->format_version(), 1);
  ASSERT_EQ((*r)->size(), 4);
  for (int i = 0; i < 4; ++i) {
    const CropRecord& rec = (*r)->records()[i];
    EXPECT_FALSE(rec.landmarks.has_value()) << i;
    EXPECT_FLOAT_EQ(rec.keypoints[0].x, static_cast<float>(i));
    EXPECT_EQ(rec.frame_index, i);
    EXPECT_EQ(rec.source, "s" + std::to_string(i));
    cv::Mat m;
    ASSERT_TRUE((*r)->Read(i, &m).ok());
    EXPECT_EQ(m.at<cv::Vec3b>(0, 0)[0], i);
  }
}

// Sets the root attribute `name` to `value` (an int), replacing it.
void SetIntAttribute(const std::string& path, const std::string& name, int value) {
  H5::H5File f(path, H5F_ACC_RDWR);
  if (f.attrExists(name)) f.removeAttr(name);
  f.createAttribute(name, H5::PredType::NATIVE_INT, H5::DataSpace(H5S_SCALAR)).write(H5::PredType::NATIVE_INT, &value);
}

TEST(CropStoreTest, RefusesNewerVersionsAndOtherFormats) {
  const std::string dir = deepscan::testing::TempDir();
  WriteSmallStore(dir + "/v3.h5");
  SetIntAttribute(dir + "/v3.h5", "format_version", 3);
  auto r = CropStoreReader::Open(dir + "/v3.h5");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotSupported);
  EXPECT_NE(r.status().message().find("format_version 3"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("newer deepscan"), std::string::npos) << r.status().message();

  // Version 2 without its /landmarks is damaged, not old.
  WriteSmallStore(dir + "/v2.h5");
  {
    H5::H5File f(dir + "/v2.h5", H5F_ACC_RDWR);
    f.unlink("landmarks");
  }
  EXPECT_EQ(CropStoreReader::Open(dir + "/v2.h5").status().code(), Code::kCorruptInput);

  // Another HDF5 file with a format attribute (a queue export) is not a crop store.
  WriteSmallStore(dir + "/other.h5");
  {
    H5::H5File f(dir + "/other.h5", H5F_ACC_RDWR);
    f.removeAttr("format");
    H5::StrType str(H5::PredType::C_S1, H5T_VARIABLE);
    f.createAttribute("format", str, H5::DataSpace(H5S_SCALAR)).write(str, std::string("deepscan-queue-results"));
  }
  auto other = CropStoreReader::Open(dir + "/other.h5");
  EXPECT_EQ(other.status().code(), Code::kCorruptInput);
  EXPECT_NE(other.status().message().find("deepscan-queue-results"), std::string::npos) << other.status().message();
}

TEST(CropStoreTest, PartlyMissingLandmarksAreCorrupt) {
  const std::string path = deepscan::testing::TempDir() + "/partial.h5";
  WriteSmallStore(path);
  {
    H5::H5File f(path, H5F_ACC_RDWR);
    H5::DataSet ds = f.openDataSet("landmarks");
    std::vector<float> all(4 * 136);
    ds.read(all.data(), H5::PredType::NATIVE_FLOAT);
    all[5] = std::numeric_limits<float>::quiet_NaN();  // row 0 had landmarks
    ds.write(all.data(), H5::PredType::NATIVE_FLOAT);
  }
  EXPECT_EQ(CropStoreReader::Open(path).status().code(), Code::kCorruptInput);
}

TEST(CropStoreTest, NotAStoreIsAClearError) {
  std::string path = deepscan::testing::TempDir() + "/junk.h5";
  std::ofstream(path) << "not hdf5";
  auto r = CropStoreReader::Open(path);
  EXPECT_EQ(r.status().code(), Code::kCorruptInput);
  EXPECT_EQ(CropStoreReader::Open(path + ".missing").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace deepscan::train
