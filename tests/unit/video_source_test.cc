#include "video/source.h"

#include <cmath>
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "test_env.h"
#include "video/sampler.h"

namespace deepscan::video {
namespace {

using deepscan::testing::ReadFrameNumber;
using deepscan::testing::TempDir;
using deepscan::testing::WriteNumberedClip;

const std::vector<std::string> kLossless = {"-c:v", "libx264", "-preset",  "ultrafast",
                                            "-qp",  "0",       "-pix_fmt", "yuv444p"};

struct Kept {
  int64_t index;
  double ts;
  int number;  // read from the pixels
};

// Decodes `path` with the sampler for `options` and returns the kept frames.
std::vector<Kept> Sample(const std::string& path, SamplingOptions options, int64_t* decoded = nullptr,
                         std::vector<std::string>* warnings = nullptr) {
  SourceOptions so;
  so.keyframes_only = options.policy == SamplingPolicy::kKeyframes;
  auto src = Source::Open(path, so);
  EXPECT_TRUE(src.ok()) << src.status().ToString();
  if (!src.ok()) return {};
  auto sampler = MakeSampler((*src)->info(), options);
  EXPECT_TRUE(sampler.ok());
  std::vector<Kept> out;
  std::vector<FrameRef> keep;
  while (true) {
    FrameRef f;
    auto got = (*src)->Next(&f);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (!got.ok()) break;
    keep.clear();
    if (*got)
      (*sampler)->Offer(std::move(f), &keep);
    else
      (*sampler)->Finish(&keep);
    for (auto& k : keep) {
      cv::Mat bgr;
      EXPECT_TRUE((*src)->ToBgr(k, &bgr).ok());
      out.push_back({k.index(), k.timestamp_s(), ReadFrameNumber(bgr)});
    }
    if (!*got) break;
  }
  if (decoded) *decoded = (*src)->frames_decoded();
  if (warnings) *warnings = (*src)->warnings();
  return out;
}

TEST(VideoSourceTest, InfoOfAConstantRateClip) {
  std::string path = TempDir() + "/cfr.mp4";
  ASSERT_TRUE(WriteNumberedClip(path, 100, 25, 320, 240, kLossless));
  auto src = Source::Open(path, {});
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  const StreamInfo& info = (*src)->info();
  EXPECT_EQ(info.width, 320);
  EXPECT_EQ(info.height, 240);
  EXPECT_EQ(info.rotation, 0);
  EXPECT_NEAR(info.fps, 25.0, 1e-6);
  EXPECT_NEAR(info.duration_s, 4.0, 0.05);
  EXPECT_EQ(info.frame_count, 100);
  EXPECT_EQ(info.codec, "h264");
}

TEST(VideoSourceTest, EveryFrameDecodedInOrderWithItsTimestamp) {
  std::string path = TempDir() + "/order.mp4";
  // B-frames on: decode order differs from presentation order inside the codec.
  std::vector<std::string> args = kLossless;
  args.insert(args.end(), {"-bf", "2", "-g", "12"});
  ASSERT_TRUE(WriteNumberedClip(path, 60, 30, 320, 240, args));
  auto src = Source::Open(path, {});
  ASSERT_TRUE(src.ok());
  for (int i = 0; i < 60; ++i) {
    FrameRef f;
    auto got = (*src)->Next(&f);
    ASSERT_TRUE(got.ok());
    ASSERT_TRUE(*got) << "ended early at " << i;
    EXPECT_EQ(f.index(), i);
    EXPECT_NEAR(f.timestamp_s(), i / 30.0, 1e-3);
    cv::Mat bgr;
    ASSERT_TRUE((*src)->ToBgr(f, &bgr).ok());
    EXPECT_EQ(ReadFrameNumber(bgr), i);
  }
  FrameRef f;
  auto got = (*src)->Next(&f);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(*got);
}

TEST(VideoSamplerTest, UniformPicksTheLinspaceFrames) {
  std::string path = TempDir() + "/uniform.mp4";
  ASSERT_TRUE(WriteNumberedClip(path, 100, 25, 320, 240, kLossless));
  auto kept = Sample(path, {.policy = SamplingPolicy::kUniform, .frames = 32});
  ASSERT_EQ(kept.size(), 32u);
  for (int k = 0; k < 32; ++k) {
    int want = static_cast<int>(std::lround(k * 99.0 / 31.0));  // np.linspace(0, 99, 32).round()
    EXPECT_EQ(kept[k].number, want) << "sample " << k;
    EXPECT_EQ(kept[k].index, want);
    EXPECT_NEAR(kept[k].ts, want / 25.0, 1e-3);
  }
}

TEST(VideoSamplerTest, ShortClipKeepsEachFrameOnce) {
  std::string path = TempDir() + "/short.mp4";
  ASSERT_TRUE(WriteNumberedClip(path, 10, 25, 320, 240, kLossless));
  auto kept = Sample(path, {.policy = SamplingPolicy::kUniform, .frames = 32});
  ASSERT_EQ(kept.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(kept[i].number, i);
}

TEST(VideoSamplerTest, SingleFrameRequestTakesTheMiddle) {
  std::string path = TempDir() + "/one.mp4";
  ASSERT_TRUE(WriteNumberedClip(path, 101, 25, 320, 240, kLossless));
  auto kept = Sample(path, {.policy = SamplingPolicy::kUniform, .frames = 1});
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].number, 50);
}

TEST(VideoSamplerTest, KeyframesDecodesOnlyKeyframes) {
  std::string path = TempDir() + "/gop.mp4";
  std::vector<std::string> args = kLossless;
  args.insert(args.end(), {"-g", "25", "-keyint_min", "25", "-sc_threshold", "0"});
  ASSERT_TRUE(WriteNumberedClip(path, 100, 25, 320, 240, args));
  int64_t decoded = 0;
  auto kept = Sample(path, {.policy = SamplingPolicy::kKeyframes, .frames = 32}, &decoded);
  std::vector<int> numbers;
  for (auto& k : kept) numbers.push_back(k.number);
  EXPECT_EQ(numbers, (std::vector<int>{0, 25, 50, 75}));
  EXPECT_LE(decoded, 8) << "the decoder should skip non-key frames";
}

TEST(VideoSamplerTest, VariableFrameRateIsSampledByTime) {
  // Frames 0-49 every 40 ms (0 - 1.96 s), frames 50-99 every 120 ms (2.0 - 7.88 s).
  std::string path = TempDir() + "/vfr.mkv";
  std::vector<std::string> args = kLossless;
  args.insert(args.end(),
              {"-vf", "\"settb=1/1000,setpts='if(lt(N,50),N*40,2000+(N-50)*120)/1000/TB'\"", "-fps_mode", "vfr"});
  ASSERT_TRUE(WriteNumberedClip(path, 100, 25, 320, 240, args));
  auto kept = Sample(path, {.policy = SamplingPolicy::kUniform, .frames = 32});
  ASSERT_GE(kept.size(), 28u);
  int late = 0;
  for (auto& k : kept) {
    ASSERT_GE(k.number, 0);
    double want_ts = k.number < 50 ? k.number * 0.040 : 2.0 + (k.number - 50) * 0.120;
    EXPECT_NEAR(k.ts, want_ts, 2e-3) << "frame " << k.number;
    late += k.number >= 50;
  }
  // 3/4 of the duration lies in the sparse half: sampling by index would put only half there.
  EXPECT_GE(late, 20);
}

// Our upright frame must equal FFmpeg's own auto-rotated output for each display matrix.
class RotationTest : public ::testing::TestWithParam<int> {};

TEST_P(RotationTest, MatchesFfmpegAutorotate) {
  const int tag = GetParam();
  std::string dir = TempDir();
  std::string plain = dir + "/plain.mp4", rotated = dir + "/rot" + std::to_string(tag) + ".mp4";
  ASSERT_TRUE(WriteNumberedClip(plain, 5, 25, 320, 240, kLossless));
  ASSERT_EQ(
      deepscan::testing::RunCommand("ffmpeg -nostdin -loglevel error -y -i '" + plain +
                                    "' -c copy -metadata:s:v:0 rotate=" + std::to_string(tag) + " '" + rotated + "'"),
      0);
  std::string png = dir + "/ffmpeg.png";
  ASSERT_EQ(deepscan::testing::RunCommand("ffmpeg -nostdin -loglevel error -y -i '" + rotated + "' -frames:v 1 '" +
                                          png + "'"),
            0);
  cv::Mat reference = cv::imread(png);
  ASSERT_FALSE(reference.empty());

  auto src = Source::Open(rotated, {});
  ASSERT_TRUE(src.ok());
  const StreamInfo& info = (*src)->info();
  EXPECT_EQ(info.width, reference.cols);
  EXPECT_EQ(info.height, reference.rows);
  FrameRef f;
  ASSERT_TRUE(*(*src)->Next(&f));
  cv::Mat ours;
  ASSERT_TRUE((*src)->ToBgr(f, &ours).ok());
  ASSERT_EQ(ours.size(), reference.size());
  cv::Mat diff;
  cv::absdiff(ours, reference, diff);
  EXPECT_LT(cv::mean(diff)[0], 4.0) << "rotation tag " << tag << " applied as " << info.rotation;
  if (tag == 90 || tag == 270) EXPECT_EQ(ours.rows, 320);  // portrait comes out upright
}

INSTANTIATE_TEST_SUITE_P(Tags, RotationTest, ::testing::Values(90, 180, 270));

TEST(VideoSourceErrorsTest, EachBadInputHasItsCode) {
  std::string dir = TempDir();
  EXPECT_EQ(Source::Open(dir + "/missing.mp4", {}).status().code(), Code::kNotFound);
  std::ofstream(dir + "/empty.mp4").close();
  EXPECT_EQ(Source::Open(dir + "/empty.mp4", {}).status().code(), Code::kCorruptInput);
  std::ofstream(dir + "/text.mp4") << "this is not a video at all, just some words\n";
  EXPECT_EQ(Source::Open(dir + "/text.mp4", {}).status().code(), Code::kCorruptInput);
  EXPECT_EQ(Source::Open(dir, {}).status().code(), Code::kNotAVideo);

  ASSERT_EQ(deepscan::testing::RunCommand("ffmpeg -nostdin -loglevel error -y -f lavfi -i sine=duration=1 '" + dir +
                                          "/audio.m4a'"),
            0);
  auto audio = Source::Open(dir + "/audio.m4a", {});
  EXPECT_EQ(audio.status().code(), Code::kNotAVideo);
  EXPECT_NE(audio.status().message().find("audio only"), std::string::npos);

  cv::imwrite(dir + "/still.jpg", deepscan::testing::NumberedFrame(7, 64, 64));
  EXPECT_EQ(Source::Open(dir + "/still.jpg", {}).status().code(), Code::kNotAVideo);

  std::string clip = dir + "/clip.mp4";
  ASSERT_TRUE(WriteNumberedClip(clip, 10, 25, 320, 240, kLossless));
  SourceOptions small;
  small.max_pixels = 320 * 240 - 1;
  EXPECT_EQ(Source::Open(clip, small).status().code(), Code::kTooLarge);
}

TEST(VideoSourceErrorsTest, TruncatedFileDecodesWhatIsThereAndWarns) {
  std::string dir = TempDir();
  std::string clip = dir + "/long.mp4";
  std::vector<std::string> args = kLossless;
  args.insert(args.end(), {"-movflags", "+faststart"});  // index first: the cut loses only the tail
  ASSERT_TRUE(WriteNumberedClip(clip, 250, 25, 320, 240, args));
  std::ifstream in(clip, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::ofstream(dir + "/cut.mp4", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  std::vector<std::string> warnings;
  auto kept = Sample(dir + "/cut.mp4", {.frames = 32}, nullptr, &warnings);
  EXPECT_GT(kept.size(), 5u);
  EXPECT_LT(kept.size(), 32u);
  bool truncated = false;
  for (auto& w : warnings) truncated |= w.find("truncated") != std::string::npos;
  EXPECT_TRUE(truncated);

  // Without the index at the front, the cut file cannot be opened at all.
  std::string tail_index = dir + "/tail.mp4";
  ASSERT_TRUE(WriteNumberedClip(tail_index, 250, 25, 320, 240, kLossless));
  std::ifstream in2(tail_index, std::ios::binary);
  std::string bytes2((std::istreambuf_iterator<char>(in2)), {});
  std::ofstream(dir + "/cut2.mp4", std::ios::binary)
      .write(bytes2.data(), static_cast<std::streamsize>(bytes2.size() / 2));
  EXPECT_EQ(Source::Open(dir + "/cut2.mp4", {}).status().code(), Code::kCorruptInput);
}

TEST(VideoSourceErrorsTest, TimeoutStopsDecoding) {
  std::string clip = TempDir() + "/t.mp4";
  ASSERT_TRUE(WriteNumberedClip(clip, 200, 25, 640, 480, kLossless));
  SourceOptions so;
  so.timeout_s = 1e-6;
  auto src = Source::Open(clip, so);
  if (!src.ok()) {
    EXPECT_EQ(src.status().code(), Code::kTimeout);
    return;
  }
  FrameRef f;
  Result<bool> got = true;
  while (got.ok() && *got) got = (*src)->Next(&f);
  EXPECT_EQ(got.status().code(), Code::kTimeout);
}

}  // namespace
}  // namespace deepscan::video
