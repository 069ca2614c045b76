// The pipelined Scanner: ScanMany with several videos in flight gives, for every video, exactly
// the verdict of scanning it alone; a bad file in the batch fails alone; the result cache
// returns the stored verdict. Uses the bundled sample clip and a few shared clips; skips when
// the setup outputs are absent. Kept face crops (for the HTML report) are each identity's most
// suspicious and change nothing else.
#include <algorithm>
#include <filesystem>
#include <map>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "deepscan/scanner.h"
#include "infer/model_metadata.h"
#include "test_env.h"

namespace deepscan {
namespace {

namespace fs = std::filesystem;
using deepscan::testing::SourceDir;
using deepscan::testing::TempDir;

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.detector.model_path = deepscan::testing::DetectorPath();
    options_.detector.refind_model_path = deepscan::testing::FrontDetectorPath();
    options_.classifier.model_path = SourceDir() + "/models/default.onnx";
    options_.sampling.frames = 12;
    sample_ = SourceDir() + "/third_party/sample/sample.mp4";
    for (const std::string& p : {options_.detector.model_path, options_.classifier.model_path, sample_}) {
      if (!fs::exists(p)) GTEST_SKIP() << p << " is missing: run scripts/setup.sh";
    }
    videos_ = {sample_};
    std::string data = deepscan::testing::SharedDataDir();
    if (!data.empty()) {
      int taken = 0;
      for (const auto& e : fs::directory_iterator(data + "/videos/real")) {
        if (taken++ >= 3) break;
        videos_.push_back(e.path().string());
      }
    }
    const std::string bad = TempDir() + "/not-a-video.mp4";
    std::FILE* f = std::fopen(bad.c_str(), "wb");
    std::fputs("definitely not a video", f);
    std::fclose(f);
    videos_.insert(videos_.begin() + 1, bad);
  }

  std::vector<VideoVerdict> ScanAll(const ScanOptions& o) {
    auto scanner = Scanner::Create(o);
    EXPECT_TRUE(scanner.ok()) << scanner.status().ToString();
    std::vector<VideoVerdict> out(videos_.size());
    std::vector<int> calls(videos_.size(), 0);
    (*scanner)->ScanMany(videos_, [&](size_t i, VideoVerdict v) {
      ++calls[i];
      out[i] = std::move(v);
    });
    for (int c : calls) EXPECT_EQ(c, 1) << "each verdict is delivered exactly once";
    return out;
  }

  ScanOptions options_;
  std::string sample_;
  std::vector<std::string> videos_;
};

// `tolerance`: 0 for exact; the cache stores the JSON report, whose scores have 4 decimals.
void ExpectSameVerdict(const VideoVerdict& a, const VideoVerdict& b, float tolerance = 0) {
  EXPECT_EQ(a.path, b.path);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.error.code(), b.error.code());
  EXPECT_EQ(a.score.has_value(), b.score.has_value());
  if (a.score && b.score) EXPECT_NEAR(*a.score, *b.score, tolerance) << a.path;
  ASSERT_EQ(a.frames.size(), b.frames.size()) << a.path;
  for (size_t i = 0; i < a.frames.size(); ++i) {
    EXPECT_EQ(a.frames[i].index, b.frames[i].index);
    ASSERT_EQ(a.frames[i].faces.size(), b.frames[i].faces.size()) << a.path << " frame " << i;
    for (size_t k = 0; k < a.frames[i].faces.size(); ++k) {
      EXPECT_NEAR(a.frames[i].faces[k].score, b.frames[i].faces[k].score, tolerance);
      EXPECT_EQ(a.frames[i].faces[k].track_id, b.frames[i].faces[k].track_id);
    }
  }
  EXPECT_EQ(a.identities.size(), b.identities.size());
}

TEST_F(PipelineTest, VideosInFlightChangeNothingButTime) {
  ScanOptions serial = options_;
  serial.pipeline.videos_in_flight = 1;
  serial.classifier.max_batch = 1;
  ScanOptions parallel = options_;
  parallel.pipeline.videos_in_flight = 3;
  parallel.classifier.max_batch = 16;
  std::vector<VideoVerdict> a = ScanAll(serial), b = ScanAll(parallel);
  for (size_t i = 0; i < videos_.size(); ++i) ExpectSameVerdict(a[i], b[i]);
  // The bad file failed alone, with its own code; the others were scanned.
  EXPECT_EQ(b[1].status, VideoStatus::kError);
  EXPECT_EQ(b[1].error.code(), Code::kCorruptInput);
  for (size_t i = 0; i < videos_.size(); ++i) {
    if (i != 1) EXPECT_NE(b[i].status, VideoStatus::kError) << videos_[i] << ": " << b[i].error.ToString();
  }
}

TEST_F(PipelineTest, ScanEqualsScanManyOfOne) {
  auto scanner = Scanner::Create(options_);
  ASSERT_TRUE(scanner.ok());
  VideoVerdict one = (*scanner)->Scan(sample_);
  std::vector<VideoVerdict> many = ScanAll(options_);
  ExpectSameVerdict(one, many[0]);
  EXPECT_EQ(one.timings.frames_sampled, 12);
}

TEST_F(PipelineTest, CacheReturnsTheStoredVerdict) {
  ScanOptions o = options_;
  o.cache_dir = TempDir() + "/cache";
  std::vector<VideoVerdict> first = ScanAll(o), second = ScanAll(o);
  for (size_t i = 0; i < videos_.size(); ++i) {
    if (first[i].status == VideoStatus::kError) {
      EXPECT_FALSE(second[i].timings.cache_hit) << "errors are never cached";
      continue;
    }
    EXPECT_FALSE(first[i].timings.cache_hit);
    EXPECT_TRUE(second[i].timings.cache_hit) << videos_[i];
    ExpectSameVerdict(first[i], second[i], 5e-5f);
  }
}


TEST_F(PipelineTest, KeepsEachIdentitysMostSuspiciousCropsOnlyWhenAsked) {
  ScanOptions with = options_;
  with.report_crops = 2;
  with.cache_dir = TempDir() + "/crops-cache";
  std::vector<VideoVerdict> plain = ScanAll(options_), kept = ScanAll(with);
  auto meta = deepscan::infer::LoadModelMetadata(options_.classifier.model_path);
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  const int side = meta->input_size;  // crops and heatmaps come at the classifier's input size
  for (size_t i = 0; i < videos_.size(); ++i) {
    ExpectSameVerdict(plain[i], kept[i]);
    EXPECT_TRUE(plain[i].crops.empty());
    const VideoVerdict& v = kept[i];
    if (v.status != VideoStatus::kOk) {
      EXPECT_TRUE(v.crops.empty()) << videos_[i];
      continue;
    }
    ASSERT_FALSE(v.crops.empty()) << videos_[i];
    for (const IdentityVerdict& p : v.identities) {
      // The identity's classified faces (a near-duplicate frame reuses another's and is not
      // classified again), highest score first.
      std::vector<float> scores;
      for (const FrameResult& f : v.frames) {
        if (f.duplicate_of >= 0) continue;
        for (const FaceResult& face : f.faces) {
          if (face.track_id == p.track_id) scores.push_back(face.score);
        }
      }
      std::sort(scores.rbegin(), scores.rend());
      std::vector<const FaceCrop*> mine;
      for (const FaceCrop& c : v.crops) {
        if (c.track_id == p.track_id) mine.push_back(&c);
      }
      ASSERT_EQ(mine.size(), std::min<size_t>(2, scores.size())) << videos_[i] << " person " << p.track_id;
      for (size_t k = 0; k < mine.size(); ++k) {
        const FaceCrop& c = *mine[k];
        EXPECT_EQ(c.score, scores[k]) << "the most suspicious first";
        ASSERT_LT(c.frame, static_cast<int>(v.frames.size()));
        ASSERT_LT(c.face, static_cast<int>(v.frames[c.frame].faces.size()));
        EXPECT_EQ(v.frames[c.frame].faces[c.face].score, c.score);
        EXPECT_EQ(v.frames[c.frame].faces[c.face].track_id, p.track_id);
        // The shipped model exports its blend heatmap: a crop-sized 8-bit grey PNG that is not flat.
        const cv::Mat heat =
            cv::imdecode(std::vector<uchar>(c.heatmap_png.begin(), c.heatmap_png.end()), cv::IMREAD_UNCHANGED);
        ASSERT_FALSE(heat.empty()) << "the shipped model has a heatmap output";
        EXPECT_EQ(heat.type(), CV_8UC1);
        EXPECT_EQ(heat.size(), cv::Size(side, side)) << "the model's input size";
        const cv::Mat img = cv::imdecode(std::vector<uchar>(c.jpeg.begin(), c.jpeg.end()), cv::IMREAD_COLOR);
        ASSERT_FALSE(img.empty()) << "a JPEG";
        EXPECT_EQ(img.cols, side);
        EXPECT_EQ(img.rows, side);
      }
    }
  }
  // The cache stores no crops, so a scan that wants them is never answered from it.
  std::vector<VideoVerdict> again = ScanAll(with);
  for (size_t i = 0; i < videos_.size(); ++i) {
    EXPECT_FALSE(again[i].timings.cache_hit) << videos_[i];
    EXPECT_EQ(again[i].crops.size(), kept[i].crops.size());
  }
}

}  // namespace
}  // namespace deepscan
