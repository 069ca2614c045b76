#include "pipeline/result_cache.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "report/report.h"
#include "test_env.h"

namespace deepscan::pipeline {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

VideoVerdict Verdict(float score) {
  VideoVerdict v;
  v.path = "scanned-as.mp4";
  v.status = VideoStatus::kOk;
  v.info = {640, 360, 0, 25, 10, 0, 250, "h264", "mov,mp4,m4a,3gp,3g2,mj2"};
  for (int i = 0; i < 4; ++i) {
    FrameResult f;
    f.index = 60 * i;
    f.timestamp_s = 2.4 * i;
    FaceResult face;
    face.box = {100, 80, 120, 130};
    face.detector_score = 0.9f;
    face.score = score;
    face.track_id = 0;
    f.faces = {face};
    f.score = score;
    v.frames.push_back(f);
  }
  v.score = score;
  v.label = score >= 0.5f ? "fake" : "real";
  v.threshold = 0.5f;
  v.aggregation = "mean";
  v.top_frames = {0, 1, 2, 3};
  v.identities = {{0, 4, 0, 7.2, score, v.label, {}}};
  v.timings.total_s = 3.25;
  v.timings.frames_decoded = 250;
  return v;
}

class ResultCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir();
    options_.cache_dir = dir_ + "/cache";
    options_.classifier.model_path = dir_ + "/model.onnx";
    options_.detector.model_path = dir_ + "/detector.onnx";
    WriteAll(options_.classifier.model_path, "classifier weights v1");
    WriteAll(dir_ + "/model.json", R"({"name": "m", "threshold": 0.5})");
    WriteAll(options_.detector.model_path, "detector weights");
    model_ = {"m", "1", "onnxruntime-cpu", "cpu", true, 0.5f};
    video_ = dir_ + "/clip.mp4";
    content_ = RandomBytes(3 * (1 << 20) + 12345, 1);  // spans several 1 MiB chunks
    WriteAll(video_, content_);
  }

  std::unique_ptr<ResultCache> Open(const ScanOptions& o, const ModelInfo& m) {
    Result<std::unique_ptr<ResultCache>> c = ResultCache::Open(o, m);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }
  std::unique_ptr<ResultCache> Open() { return Open(options_, model_); }

  std::string dir_, video_, content_;
  ScanOptions options_;
  ModelInfo model_;
};

TEST_F(ResultCacheTest, HashFileStreamsTheWholeFile) {
  Result<FileDigest> d = HashFile(video_);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->bytes, static_cast<int64_t>(content_.size()));
  EXPECT_EQ(d->hex, HashBytes(content_)) << "chunked hashing equals one-shot hashing";
  EXPECT_EQ(d->hex.size(), 32u);
  const std::string empty = dir_ + "/empty";
  WriteAll(empty, "");
  EXPECT_EQ(HashFile(empty)->hex, HashBytes(""));
  EXPECT_NE(HashBytes(""), HashBytes("a"));
  EXPECT_EQ(HashFile(dir_ + "/missing").status().code(), Code::kNotFound);
}

TEST_F(ResultCacheTest, HitOnTheSameContentUnderAnotherName) {
  auto cache = Open();
  ASSERT_TRUE(cache);
  EXPECT_FALSE(cache->Get(video_).has_value());
  const VideoVerdict v = Verdict(0.8f);
  ASSERT_TRUE(cache->Put(video_, v).ok());
  const std::string copy = dir_ + "/renamed copy.mkv";
  fs::copy_file(video_, copy);
  std::optional<VideoVerdict> hit = cache->Get(copy);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->path, copy);
  EXPECT_TRUE(hit->timings.cache_hit);
  // Everything else is the stored verdict.
  VideoVerdict expected = v;
  expected.path = copy;
  expected.timings.cache_hit = true;
  EXPECT_EQ(report::VideoToJson(*hit), report::VideoToJson(expected));
  EXPECT_EQ(*cache->EntryPath(copy), *cache->EntryPath(video_));
  // The entry is DIR/<2 hex>/<key>.json and holds the verdict as the report writes it, not a hit.
  const std::string entry = *cache->EntryPath(video_);
  const fs::path p(entry);
  EXPECT_EQ(p.parent_path().parent_path(), fs::path(options_.cache_dir));
  EXPECT_EQ(p.parent_path().filename().string(), p.stem().string().substr(0, 2));
  json stored = json::parse(ReadAll(entry));
  EXPECT_EQ(stored["verdict"]["timings"]["cache_hit"], false);
  // A second cache object on the same directory (another process) sees it too.
  EXPECT_TRUE(Open()->Get(copy).has_value());
}

TEST_F(ResultCacheTest, MissAfterOneByteChanges) {
  auto cache = Open();
  ASSERT_TRUE(cache->Put(video_, Verdict(0.8f)).ok());
  ASSERT_TRUE(cache->Get(video_).has_value());
  std::string changed = content_;
  changed[2 * (1 << 20) + 5] ^= 1;  // in the third chunk
  const std::string other = dir_ + "/other.mp4";
  WriteAll(other, changed);
  EXPECT_FALSE(cache->Get(other).has_value());
  // Also when the same path is rewritten in place (same size).
  WriteAll(video_, changed);
  EXPECT_FALSE(cache->Get(video_).has_value());
}

TEST_F(ResultCacheTest, MissWhenTheModelChanges) {
  ASSERT_TRUE(Open()->Put(video_, Verdict(0.8f)).ok());
  ASSERT_TRUE(Open()->Get(video_).has_value());
  ModelInfo newer = model_;
  newer.version = "2";
  EXPECT_FALSE(Open(options_, newer)->Get(video_).has_value()) << "model version";
  newer = model_;
  newer.threshold = 0.6f;
  EXPECT_FALSE(Open(options_, newer)->Get(video_).has_value()) << "model threshold";
  // Retrained under the same name and version: the bytes differ.
  WriteAll(options_.classifier.model_path, "classifier weights v2");
  EXPECT_FALSE(Open()->Get(video_).has_value()) << "classifier bytes";
  WriteAll(options_.classifier.model_path, "classifier weights v1");
  ASSERT_TRUE(Open()->Get(video_).has_value());
  WriteAll(dir_ + "/model.json", R"({"name": "m", "threshold": 0.5, "calibration": [2, 1]})");
  EXPECT_FALSE(Open()->Get(video_).has_value()) << "metadata bytes";
  WriteAll(dir_ + "/model.json", R"({"name": "m", "threshold": 0.5})");
  WriteAll(options_.detector.model_path, "another detector");
  EXPECT_FALSE(Open()->Get(video_).has_value()) << "detector bytes";
}

TEST_F(ResultCacheTest, MissWhenAResultChangingOptionChanges) {
  auto base = Open();
  ASSERT_TRUE(base->Put(video_, Verdict(0.8f)).ok());
  const std::vector<std::pair<const char*, std::function<void(ScanOptions&)>>> changes = {
      {"frames", [](ScanOptions& o) { o.sampling.frames = 16; }},
      {"policy", [](ScanOptions& o) { o.sampling.policy = SamplingPolicy::kMotion; }},
      {"dedupe", [](ScanOptions& o) { o.sampling.dedupe = false; }},
      {"face threshold", [](ScanOptions& o) { o.detector.score_threshold = 0.5f; }},
      {"tiling", [](ScanOptions& o) { o.detector.tiling = false; }},
      {"detect_every", [](ScanOptions& o) { o.detector.detect_every = 1; }},
      {"max_gap", [](ScanOptions& o) { o.tracking.max_gap = 2; }},
      {"min_iou", [](ScanOptions& o) { o.tracking.min_iou = 0.3f; }},
      {"margin", [](ScanOptions& o) { o.crop.margin = 0.25f; }},
      {"threshold", [](ScanOptions& o) { o.aggregation.threshold = 0.4f; }},
      {"strategy", [](ScanOptions& o) { o.aggregation.strategy = Aggregation::kConfident; }},
      {"top_frames", [](ScanOptions& o) { o.aggregation.top_frames = 3; }},
      {"max_pixels", [](ScanOptions& o) { o.max_pixels = 1920 * 1080; }},
  };
  for (const auto& [name, change] : changes) {
    ScanOptions o = options_;
    change(o);
    auto cache = Open(o, model_);
    EXPECT_NE(cache->config_hash(), base->config_hash()) << name;
    EXPECT_FALSE(cache->Get(video_).has_value()) << name;
  }
}

TEST_F(ResultCacheTest, HitWhenOnlyThreadsBatchOrDeviceChange) {
  auto base = Open();
  ASSERT_TRUE(base->Put(video_, Verdict(0.8f)).ok());
  ScanOptions o = options_;
  o.threads = 3;
  o.classifier.max_batch = 64;
  o.classifier.backend = "onnxruntime-cuda";
  o.accel.device = "cuda";
  o.accel.hwaccel = "none";
  o.pipeline.videos_in_flight = 4;
  o.pipeline.queue_frames = 32;
  o.timeout_s = 5;
  auto cache = Open(o, model_);
  EXPECT_EQ(cache->config_hash(), base->config_hash());
  EXPECT_TRUE(cache->Get(video_).has_value());
}

TEST_F(ResultCacheTest, DamagedEntriesAreMissesAndGetOverwritten) {
  auto cache = Open();
  ASSERT_TRUE(cache->Put(video_, Verdict(0.8f)).ok());
  const std::string entry = *cache->EntryPath(video_);
  const std::string good = ReadAll(entry);
  json wrong_key = json::parse(good);
  wrong_key["key"] = "00000000000000000000000000000000";
  json bad_verdict = json::parse(good);
  bad_verdict["verdict"]["score"] = 7;
  json old_format = json::parse(good);
  old_format["format"] = kCacheFormat + 1;
  json error_verdict = json::parse(good);
  error_verdict["verdict"]["status"] = "error";
  const std::vector<std::string> damaged = {"",
                                            good.substr(0, good.size() / 2),  // cut short
                                            "not json at all \x01\xff",
                                            "[1, 2, 3]",
                                            wrong_key.dump(),
                                            bad_verdict.dump(),
                                            old_format.dump(),
                                            error_verdict.dump(),
                                            std::string(10000, '[')};
  for (const std::string& d : damaged) {
    WriteAll(entry, d);
    EXPECT_FALSE(cache->Get(video_).has_value()) << d.substr(0, 60);
  }
  fs::remove(entry);
  fs::create_directory(entry);  // not even a file
  EXPECT_FALSE(cache->Get(video_).has_value());
  fs::remove(entry);
  WriteAll(entry, "garbage");
  ASSERT_TRUE(cache->Put(video_, Verdict(0.3f)).ok());
  std::optional<VideoVerdict> hit = cache->Get(video_);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->label, "real");
}

TEST_F(ResultCacheTest, ErrorsAndUrlsAreNotCached) {
  auto cache = Open();
  VideoVerdict e;
  e.status = VideoStatus::kError;
  e.error = Status::Timeout("timed out");
  ASSERT_TRUE(cache->Put(video_, e).ok());
  EXPECT_FALSE(cache->Get(video_).has_value());
  EXPECT_FALSE(fs::exists(*cache->EntryPath(video_)));
  VideoVerdict no_face = Verdict(0.5f);
  no_face.status = VideoStatus::kNoFace;
  ASSERT_TRUE(cache->Put(video_, no_face).ok());
  ASSERT_TRUE(cache->Get(video_).has_value());
  EXPECT_EQ(cache->Get(video_)->status, VideoStatus::kNoFace);
  const std::string url = "https://example.invalid/clip.mp4";
  EXPECT_TRUE(cache->Put(url, Verdict(0.8f)).ok());
  EXPECT_FALSE(cache->Get(url).has_value());
  EXPECT_FALSE(cache->Get(dir_ + "/missing.mp4").has_value());
  EXPECT_EQ(cache->Put(dir_ + "/missing.mp4", Verdict(0.8f)).code(), Code::kNotFound);
}

TEST_F(ResultCacheTest, GetThenPutReadsTheFileOnce) {
  auto cache = Open();
  EXPECT_FALSE(cache->Get(video_).has_value());
  ASSERT_TRUE(cache->Put(video_, Verdict(0.8f)).ok());
  EXPECT_EQ(cache->hashed_bytes(), static_cast<int64_t>(content_.size()));
  EXPECT_TRUE(cache->Get(video_).has_value());  // a new scan hashes again
  EXPECT_EQ(cache->hashed_bytes(), 2 * static_cast<int64_t>(content_.size()));
  EXPECT_GT(cache->hashing_seconds(), 0);
}

TEST_F(ResultCacheTest, OpenErrors) {
  ScanOptions o = options_;
  o.cache_dir.clear();
  EXPECT_EQ(ResultCache::Open(o, model_).status().code(), Code::kInvalidArgument);
  o = options_;
  o.classifier.model_path = dir_ + "/no-model.onnx";
  EXPECT_EQ(ResultCache::Open(o, model_).status().code(), Code::kInvalidModel);
  o = options_;
  o.cache_dir = video_;  // a file
  EXPECT_EQ(ResultCache::Open(o, model_).status().code(), Code::kIoError);
}

TEST_F(ResultCacheTest, ConcurrentPutAndGet) {
  std::vector<std::string> videos;
  for (int i = 0; i < 4; ++i) {
    videos.push_back(dir_ + "/v" + std::to_string(i) + ".mp4");
    WriteAll(videos.back(), RandomBytes(200000 + i, 10 + i));
  }
  auto cache = Open();
  std::atomic<int> wrong{0}, hits{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int k = 0; k < 60; ++k) {
        const int i = static_cast<int>(rng() % videos.size());
        const float score = 0.1f + 0.2f * i;  // each video has one right answer
        if (rng() % 2) {
          failures += !cache->Put(videos[i], Verdict(score)).ok();
        } else if (std::optional<VideoVerdict> v = cache->Get(videos[i])) {
          ++hits;
          wrong += !v->score || std::abs(*v->score - score) > 1e-4f || v->path != videos[i];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(wrong, 0);
  EXPECT_GT(hits, 0);
  // Every video is cached and no temporary file is left behind.
  for (const std::string& v : videos) {
    if (cache->Get(v)) continue;
    ASSERT_TRUE(cache->Put(v, Verdict(0.5f)).ok());
  }
  int entries = 0;
  for (const auto& f : fs::recursive_directory_iterator(options_.cache_dir)) {
    if (!f.is_regular_file()) continue;
    EXPECT_EQ(f.path().extension(), ".json") << f.path();
    ++entries;
  }
  EXPECT_EQ(entries, 4);
}

}  // namespace
}  // namespace deepscan::pipeline
