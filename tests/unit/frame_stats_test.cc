#include "video/frame_stats.h"

#include <cstdint>
#include <random>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

#include "synthetic_frames.h"

extern "C" {
#include <libavutil/frame.h>
#include <libavutil/pixdesc.h>
}

namespace deepscan::video {
namespace {

using deepscan::testing::LumaFrame;

// Smooth structure (a gradient and a few blocks) plus fine texture: every statistic has something to see.
cv::Mat Scene(int width, int height, uint32_t seed = 1) {
  cv::Mat img(height, width, CV_8UC1);
  for (int r = 0; r < height; ++r) {
    for (int c = 0; c < width; ++c) img.at<uint8_t>(r, c) = static_cast<uint8_t>(40 + 150 * c / width);
  }
  cv::rectangle(img, cv::Rect(width / 5, height / 4, width / 6, height / 3), cv::Scalar(230), cv::FILLED);
  cv::circle(img, {width * 2 / 3, height / 2}, height / 5, cv::Scalar(20), cv::FILLED);
  cv::Mat noise(height, width, CV_8UC1);
  cv::theRNG().state = seed;
  cv::randu(noise, 0, 24);
  cv::Mat out;
  cv::add(img, noise, out);
  return out;
}

cv::Mat Thumb(const FrameRef& f) {
  LumaReader reader;
  EXPECT_TRUE(reader.Load(f.av()).ok());
  cv::Mat t;
  EXPECT_TRUE(reader.Thumbnail(&t).ok());
  return t;
}

TEST(LumaReaderTest, ThumbnailIs160WideWithTheAspectKept) {
  EXPECT_EQ(Thumb(LumaFrame(Scene(1920, 1080), 0, 0)).size(), cv::Size(160, 90));
  EXPECT_EQ(Thumb(LumaFrame(Scene(640, 480), 0, 0)).size(), cv::Size(160, 120));
  EXPECT_EQ(Thumb(LumaFrame(Scene(1080, 1920), 0, 0)).size(), cv::Size(160, 284));
  EXPECT_EQ(Thumb(LumaFrame(Scene(100, 60), 0, 0)).size(), cv::Size(100, 60));  // narrower frames keep theirs
}

TEST(LumaReaderTest, ThumbnailAveragesTheLuma) {
  const cv::Mat scene = Scene(1280, 720);
  cv::Mat want;
  cv::resize(scene, want, cv::Size(160, 90), 0, 0, cv::INTER_AREA);
  const cv::Mat got = Thumb(LumaFrame(scene, 0, 0));
  // Decimation before averaging sees a quarter of the pixels: the small noise differs, the structure not.
  EXPECT_LT(MeanAbsDiff(got, want), 3.0);
}

TEST(LumaReaderTest, LimitedRangeIsStretchedToFullRange) {
  cv::Mat luma(64, 64, CV_8UC1, cv::Scalar(16));
  luma(cv::Rect(32, 0, 32, 64)).setTo(235);
  const cv::Mat t = Thumb(LumaFrame(luma, 0, 0, AV_PIX_FMT_YUV420P, /*full_range=*/false));
  EXPECT_EQ(t.at<uint8_t>(10, 5), 0);
  EXPECT_EQ(t.at<uint8_t>(10, 60), 255);
  const cv::Mat full = Thumb(LumaFrame(luma, 0, 0, AV_PIX_FMT_YUV420P, /*full_range=*/true));
  EXPECT_EQ(full.at<uint8_t>(10, 5), 16);
  EXPECT_EQ(full.at<uint8_t>(10, 60), 235);
}

// Every pixel format gives the same luma views, read in place (planar and packed) or through
// swscale (GBRP).
TEST(LumaReaderTest, AnyPixelFormatGivesTheSameViews) {
  const cv::Mat scene = Scene(1280, 720);
  LumaReader reference;
  const FrameRef yuv = LumaFrame(scene, 0, 0, AV_PIX_FMT_YUV420P);
  ASSERT_TRUE(reference.Load(yuv.av()).ok());
  cv::Mat want_thumb, want_centre, want_probe;
  ASSERT_TRUE(reference.Thumbnail(&want_thumb).ok());
  ASSERT_TRUE(reference.Centre(320, &want_centre).ok());
  ASSERT_TRUE(reference.Probe(kProbeCols, kProbeRows, &want_probe).ok());
  EXPECT_EQ(want_centre.size(), cv::Size(320, 180));
  EXPECT_EQ(want_probe.size(), cv::Size(kProbeCols, kProbeRows));
  for (int fmt : {AV_PIX_FMT_NV12, AV_PIX_FMT_GRAY8, AV_PIX_FMT_YUV420P10LE, AV_PIX_FMT_RGB24, AV_PIX_FMT_BGRA,
                  AV_PIX_FMT_YUYV422, AV_PIX_FMT_GBRP}) {
    SCOPED_TRACE(av_get_pix_fmt_name(static_cast<AVPixelFormat>(fmt)));
    const FrameRef f = LumaFrame(scene, 0, 0, fmt);
    LumaReader reader;
    ASSERT_TRUE(reader.Load(f.av()).ok());
    cv::Mat thumb, centre, probe;
    ASSERT_TRUE(reader.Thumbnail(&thumb).ok());
    ASSERT_TRUE(reader.Centre(320, &centre).ok());
    ASSERT_TRUE(reader.Probe(kProbeCols, kProbeRows, &probe).ok());
    ASSERT_EQ(thumb.size(), want_thumb.size());
    ASSERT_EQ(centre.size(), want_centre.size());
    ASSERT_EQ(probe.size(), want_probe.size());
    // swscale filters differently from OpenCV's decimation; the images agree to within the noise.
    EXPECT_LT(MeanAbsDiff(thumb, want_thumb), 2.0);
    EXPECT_LT(MeanAbsDiff(centre, want_centre), 6.0);
    EXPECT_LT(MeanAbsDiff(probe, want_probe), 12.0);
    EXPECT_LE(HammingDistance(DHash(thumb), DHash(want_thumb)), 4);
  }
}

TEST(LumaReaderTest, ProbeSamplesTheLumaGrid) {
  // 64 x 36 blocks of 20 x 20 pixels, each its own value: the probe reads one pixel of each.
  cv::Mat luma(720, 1280, CV_8UC1);
  for (int r = 0; r < 720; ++r) {
    for (int c = 0; c < 1280; ++c) luma.at<uint8_t>(r, c) = static_cast<uint8_t>((r / 20) * 7 + (c / 20) * 3);
  }
  LumaReader reader;
  const FrameRef f = LumaFrame(luma, 0, 0);
  ASSERT_TRUE(reader.Load(f.av()).ok());
  cv::Mat probe;
  ASSERT_TRUE(reader.Probe(64, 36, &probe).ok());
  for (int r = 0; r < 36; ++r) {
    for (int c = 0; c < 64; ++c) ASSERT_EQ(probe.at<uint8_t>(r, c), static_cast<uint8_t>(r * 7 + c * 3));
  }
}

TEST(LumaReaderTest, RefusesEmptyFramesAndUnloadedReads) {
  LumaReader reader;
  cv::Mat m;
  EXPECT_FALSE(reader.Thumbnail(&m).ok());
  EXPECT_FALSE(reader.Load(nullptr).ok());
  AVFrame* empty = av_frame_alloc();
  EXPECT_EQ(reader.Load(empty).code(), Code::kCorruptInput);
  av_frame_free(&empty);
  EXPECT_FALSE(DHash(FrameRef()).ok());
}

TEST(FrameStatsTest, SharpnessDropsWhenBlurred) {
  const cv::Mat sharp = Scene(480, 270);
  cv::Mat blurred;
  cv::GaussianBlur(sharp, blurred, cv::Size(0, 0), 2.0);
  EXPECT_GT(Sharpness(sharp), 10 * Sharpness(blurred));
  EXPECT_EQ(Sharpness(cv::Mat(100, 100, CV_8UC1, cv::Scalar(77))), 0.0);
  // A checkerboard of 0/255: the Laplacian is +-1020 everywhere.
  cv::Mat checker(8, 8, CV_8UC1);
  for (int r = 0; r < 8; ++r) {
    for (int c = 0; c < 8; ++c) checker.at<uint8_t>(r, c) = (r + c) % 2 ? 255 : 0;
  }
  EXPECT_NEAR(Sharpness(checker), 1020.0 * 1020.0, 1.0);
}

TEST(FrameStatsTest, ExposureCountsCrushedAndBlownPixels) {
  cv::Mat img(10, 10, CV_8UC1, cv::Scalar(0));
  img(cv::Rect(5, 0, 5, 10)).setTo(255);
  Exposure e = MeasureExposure(img);
  EXPECT_DOUBLE_EQ(e.mean, 127.5);
  EXPECT_DOUBLE_EQ(e.dark_fraction, 0.5);
  EXPECT_DOUBLE_EQ(e.bright_fraction, 0.5);
  e = MeasureExposure(cv::Mat(10, 10, CV_8UC1, cv::Scalar(128)));
  EXPECT_DOUBLE_EQ(e.mean, 128);
  EXPECT_DOUBLE_EQ(e.dark_fraction, 0);
  EXPECT_DOUBLE_EQ(e.bright_fraction, 0);
  // The thresholds: 15 is crushed, 16 not; 236 is blown, 235 not.
  cv::Mat edges(1, 4, CV_8UC1);
  edges.at<uint8_t>(0) = 15;
  edges.at<uint8_t>(1) = 16;
  edges.at<uint8_t>(2) = 235;
  edges.at<uint8_t>(3) = 236;
  e = MeasureExposure(edges);
  EXPECT_DOUBLE_EQ(e.dark_fraction, 0.25);
  EXPECT_DOUBLE_EQ(e.bright_fraction, 0.25);
}

TEST(FrameStatsTest, EntropyInBits) {
  EXPECT_DOUBLE_EQ(Entropy(cv::Mat(10, 10, CV_8UC1, cv::Scalar(9))), 0.0);
  cv::Mat halves(10, 10, CV_8UC1, cv::Scalar(0));
  halves(cv::Rect(0, 0, 5, 10)).setTo(200);
  EXPECT_DOUBLE_EQ(Entropy(halves), 1.0);
  cv::Mat ramp(1, 256, CV_8UC1);
  for (int i = 0; i < 256; ++i) ramp.at<uint8_t>(i) = static_cast<uint8_t>(i);
  EXPECT_DOUBLE_EQ(Entropy(ramp), 8.0);
}

TEST(FrameStatsTest, Differences) {
  const cv::Mat a(40, 40, CV_8UC1, cv::Scalar(10));
  const cv::Mat b(40, 40, CV_8UC1, cv::Scalar(30));
  EXPECT_DOUBLE_EQ(MeanAbsDiff(a, b), 20.0);
  EXPECT_DOUBLE_EQ(MeanAbsDiff(a, a), 0.0);
  EXPECT_EQ(MeanAbsDiff(a, cv::Mat(20, 40, CV_8UC1)), -1);
  // A change only in the central half counts double there: (whole + centre) / 2.
  cv::Mat c = a.clone();
  c(cv::Rect(10, 10, 20, 20)).setTo(110);
  EXPECT_DOUBLE_EQ(MeanAbsDiff(a, c), 25.0);
  EXPECT_DOUBLE_EQ(CentreWeightedDiff(a, c), (25.0 + 100.0) / 2);
  EXPECT_DOUBLE_EQ(HistogramDistance(a, a), 0.0);
  EXPECT_DOUBLE_EQ(HistogramDistance(cv::Mat(8, 8, CV_8UC1, cv::Scalar(0)), cv::Mat(4, 4, CV_8UC1, cv::Scalar(255))),
                   1.0);
  // Shifting the picture moves pixels, not the histogram.
  const cv::Mat scene = Scene(160, 90);
  cv::Mat shifted;
  cv::warpAffine(scene, shifted, cv::Mat_<double>({2, 3}, {1, 0, 7, 0, 1, 0}), scene.size(), cv::INTER_NEAREST,
                 cv::BORDER_REFLECT);
  EXPECT_GT(MeanAbsDiff(scene, shifted), 5.0);
  EXPECT_LT(HistogramDistance(scene, shifted), 0.1);
}

TEST(FrameStatsTest, DHashSeesStructureNotNoise) {
  cv::Mat falling(8, 9, CV_8UC1), rising(8, 9, CV_8UC1);
  for (int r = 0; r < 8; ++r) {
    for (int c = 0; c < 9; ++c) {
      falling.at<uint8_t>(r, c) = static_cast<uint8_t>(200 - 20 * c);
      rising.at<uint8_t>(r, c) = static_cast<uint8_t>(20 * c);
    }
  }
  EXPECT_EQ(DHash(falling), ~uint64_t{0});
  EXPECT_EQ(DHash(rising), 0u);
  EXPECT_EQ(HammingDistance(0, ~uint64_t{0}), 64);
  EXPECT_EQ(HammingDistance(0b1011, 0b0001), 2);

  const cv::Mat a = Scene(160, 90, 1);
  const cv::Mat a_again = Scene(160, 90, 2);  // the same picture, other noise
  cv::Mat other;
  cv::flip(a, other, 1);
  EXPECT_LE(HammingDistance(DHash(a), DHash(a_again)), 3);
  EXPECT_GE(HammingDistance(DHash(a), DHash(other)), 16);

  const FrameRef f = LumaFrame(Scene(1280, 720), 0, 0);
  auto h = DHash(f);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, DHash(Thumb(f)));
}

TEST(FrameStatsTest, MeasureFrameFillsEveryStatistic) {
  const cv::Mat scene = Scene(1920, 1080);
  const FrameRef f = LumaFrame(scene, 0, 0);
  LumaReader reader;
  ASSERT_TRUE(reader.Load(f.av()).ok());
  FrameStats stats;
  cv::Mat thumb;
  ASSERT_TRUE(MeasureFrame(&reader, &stats, &thumb).ok());
  EXPECT_EQ(thumb.size(), cv::Size(160, 90));
  EXPECT_GT(stats.sharpness, 0);
  EXPECT_NEAR(stats.exposure.mean, cv::mean(scene)[0], 3.0);
  EXPECT_GT(stats.entropy, 5.0);
  EXPECT_LT(stats.entropy, 8.0);
  EXPECT_EQ(stats.dhash, DHash(thumb));

  // The same frame blurred: lower sharpness, about the same everything else.
  cv::Mat blurred;
  cv::GaussianBlur(scene, blurred, cv::Size(0, 0), 3.0);
  const FrameRef g = LumaFrame(blurred, 1, 0);
  ASSERT_TRUE(reader.Load(g.av()).ok());
  FrameStats soft;
  ASSERT_TRUE(MeasureFrame(&reader, &soft).ok());
  EXPECT_LT(soft.sharpness * 5, stats.sharpness);
  EXPECT_NEAR(soft.exposure.mean, stats.exposure.mean, 2.0);
  EXPECT_LE(HammingDistance(soft.dhash, stats.dhash), 4);
}

}  // namespace
}  // namespace deepscan::video
