// micro_bench: Google Benchmark timings of the per-face hot helpers, on synthetic inputs.
//   BM_CropFace/<size>     face::CropFace of a 300 px face from a 1080p frame to size x size.
//   BM_PackNchw/<size>     infer::PackNchw of a batch of 16 crops (normalised RGB NCHW floats).
//   BM_WeightedNms/<n>     face::WeightedNms of n detections in clusters of 8 overlapping boxes.
//   BM_FrameStats/<fmt>    what a sampling policy pays per candidate frame: LumaReader::Load and
//                          video::MeasureFrame (thumbnail, centre, sharpness, exposure, entropy,
//                          dHash) of a 1080p frame; fmt 0 = YUV 4:2:0, 1 = 10-bit YUV 4:2:0,
//                          2 = RGB24 (packed, read in place), 3 = GBRP (planar RGB, through swscale).
//   BM_LumaProbe/<fmt>     what content pays per decoded frame: Load + a 64x36 luma probe.
//   BM_FrameDiff/<width>   motion and cut measures (CentreWeightedDiff + HistogramDistance) between
//                          two 16:9 images: 64 = probes (content, per decoded frame), 160 = thumbnails.
//   BM_TrackerUpdate/<n>   track::FaceTracker::Update of a frame with n faces (all tracked).
//   BM_HashFile/<MiB>      pipeline::HashFile (XXH3-128, 1 MiB reads) of a file in the page cache.
//   BM_Degrade/<kind>      training: train::ApplyDegrade of a 160 px crop (what one real/fake pair
//                          pays twice): 0 = H.264 CRF 28, 1 = H.264 CRF 42, 2 = JPEG 55,
//                          3 = H.264 CRF 42 at 1/4 size, 4 = JPEG 55 at 1/2 size.
//   BM_SelfBlend/<side>    training, for scale: train::MakeSelfBlended of one crop.
// Run: build-bench/micro_bench [--benchmark_filter=...]. Nothing is asserted.
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "face/blazeface.h"
#include "face/crop.h"
#include "infer/classifier.h"
#include "infer/model_metadata.h"
#include "train/augment.h"
#include "train/sbi.h"
#include "video/frame_stats.h"

extern "C" {
#include <libavutil/frame.h>
}
#include "pipeline/result_cache.h"
#include "track/tracker.h"

namespace deepscan::bench {
namespace {

cv::Mat NoiseFrame(int width, int height) {
  cv::Mat frame(height, width, CV_8UC3);
  cv::randu(frame, cv::Scalar::all(0), cv::Scalar::all(255));
  return frame;
}

void BM_CropFace(benchmark::State& state) {
  const int size = static_cast<int>(state.range(0));
  const cv::Mat frame = NoiseFrame(1920, 1080);
  const Box box{810, 390, 300, 300};
  cv::Mat crop;
  for (auto _ : state) {
    face::CropFace(frame, box, 0.3f, size, &crop);
    benchmark::DoNotOptimize(crop.data);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CropFace)->Arg(128)->Arg(224)->Arg(380);

void BM_PackNchw(benchmark::State& state) {
  infer::ModelMetadata m;
  m.input_size = static_cast<int>(state.range(0));
  constexpr int kBatch = 16;
  std::vector<cv::Mat> crops;
  for (int i = 0; i < kBatch; ++i) crops.push_back(NoiseFrame(m.input_size, m.input_size));
  std::vector<float> dst(static_cast<size_t>(kBatch) * 3 * m.input_size * m.input_size);
  for (auto _ : state) {
    Status st = infer::PackNchw(crops, 0, crops.size(), m, dst.data());
    benchmark::DoNotOptimize(st);
    benchmark::DoNotOptimize(dst.data());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * kBatch * 3 * m.input_size * m.input_size);
}
BENCHMARK(BM_PackNchw)->Arg(128)->Arg(224)->Arg(380);

// `n` detections: clusters of 8 jittered boxes around n / 8 centres, as BlazeFace produces.
std::vector<face::Detection> ClusteredDetections(int n) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> centre(0, 1700), jitter(-6, 6), score(0.6f, 1.0f);
  std::vector<face::Detection> dets;
  float cx = 0, cy = 0;
  for (int i = 0; i < n; ++i) {
    if (i % 8 == 0) {
      cx = centre(rng);
      cy = centre(rng) * 0.55f;
    }
    face::Detection d;
    d.box = {cx + jitter(rng), cy + jitter(rng), 120 + jitter(rng), 120 + jitter(rng)};
    d.score = score(rng);
    for (Point& k : d.keypoints) k = {cx + 60 + jitter(rng), cy + 60 + jitter(rng)};
    dets.push_back(d);
  }
  return dets;
}

void BM_WeightedNms(benchmark::State& state) {
  const std::vector<face::Detection> dets = ClusteredDetections(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    std::vector<face::Detection> out = face::WeightedNms(dets, 0.3f);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_WeightedNms)->Arg(8)->Arg(64)->Arg(512);

// A 1080p frame of noise over a gradient in `fmt` (see BM_FrameStats), owned by a FrameRef.
video::FrameRef Frame1080p(int fmt) {
  const AVPixelFormat formats[] = {AV_PIX_FMT_YUV420P, AV_PIX_FMT_YUV420P10LE, AV_PIX_FMT_RGB24, AV_PIX_FMT_GBRP};
  const AVPixelFormat pix = formats[fmt];
  AVFrame* f = av_frame_alloc();
  f->format = pix;
  f->width = 1920;
  f->height = 1080;
  av_frame_get_buffer(f, 0);
  std::mt19937 rng(7);
  for (int p = 0; p < 3 && f->data[p]; ++p) {
    const int rows = p > 0 && (pix == AV_PIX_FMT_YUV420P || pix == AV_PIX_FMT_YUV420P10LE) ? 540 : 1080;
    for (int r = 0; r < rows; ++r) {
      uint8_t* row = f->data[p] + static_cast<ptrdiff_t>(r) * f->linesize[p];
      for (int c = 0; c < f->linesize[p]; ++c) row[c] = static_cast<uint8_t>((c / 8 + r / 4 + rng() % 32) & 0xFF);
      if (pix == AV_PIX_FMT_YUV420P10LE) {
        auto* words = reinterpret_cast<uint16_t*>(row);
        for (int c = 0; c < f->linesize[p] / 2; ++c) words[c] &= 0x3FF;
      }
    }
  }
  return video::FrameRef(f, 0, 0, true);
}

void BM_FrameStats(benchmark::State& state) {
  const video::FrameRef frame = Frame1080p(static_cast<int>(state.range(0)));
  video::LumaReader reader;
  video::FrameStats stats;
  cv::Mat thumb;
  for (auto _ : state) {
    Status st = reader.Load(frame.av());
    if (st.ok()) st = video::MeasureFrame(&reader, &stats, &thumb);
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
    benchmark::DoNotOptimize(stats);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FrameStats)->DenseRange(0, 3);

void BM_LumaProbe(benchmark::State& state) {
  const video::FrameRef frame = Frame1080p(static_cast<int>(state.range(0)));
  video::LumaReader reader;
  cv::Mat probe;
  for (auto _ : state) {
    Status st = reader.Load(frame.av());
    if (st.ok()) st = reader.Probe(video::kProbeCols, video::kProbeRows, &probe);
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
    benchmark::DoNotOptimize(probe.data);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LumaProbe)->DenseRange(0, 3);

void BM_FrameDiff(benchmark::State& state) {
  const int width = static_cast<int>(state.range(0)), height = width * 9 / 16;
  const cv::Mat a = NoiseFrame(width, height), b = NoiseFrame(width, height);
  cv::Mat ga, gb;
  cv::extractChannel(a, ga, 0);
  cv::extractChannel(b, gb, 0);
  for (auto _ : state) {
    double d = video::CentreWeightedDiff(ga, gb) + video::HistogramDistance(ga, gb);
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FrameDiff)->Arg(video::kProbeCols)->Arg(video::kThumbnailWidth);
void BM_TrackerUpdate(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  std::vector<face::Detection> dets;
  for (int i = 0; i < n; ++i) {  // a grid of 100 px faces, 150 px apart
    face::Detection d;
    const float x = 150.0f * static_cast<float>(i % 12), y = 150.0f * static_cast<float>(i / 12);
    d.box = {x, y, 100, 100};
    for (Point& k : d.keypoints) k = {x + 50, y + 50};
    dets.push_back(d);
  }
  track::FaceTracker tracker({});
  double t = 0;
  for (auto _ : state) {
    std::vector<int> ids = tracker.Update(t, dets);
    benchmark::DoNotOptimize(ids.data());
    t += 0.3;
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_TrackerUpdate)->Arg(1)->Arg(4)->Arg(16);

void BM_HashFile(benchmark::State& state) {
  const std::string path = "/tmp/deepscan_micro_bench_hash.bin";
  const std::string chunk(1 << 20, 'x');
  {
    std::ofstream out(path, std::ios::binary);
    for (int64_t i = 0; i < state.range(0); ++i) out << chunk;
  }
  for (auto _ : state) {
    Result<pipeline::FileDigest> d = pipeline::HashFile(path);
    benchmark::DoNotOptimize(d);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0) * (int64_t{1} << 20));
  std::remove(path.c_str());
}
BENCHMARK(BM_HashFile)->Arg(64)->Unit(benchmark::kMillisecond);

cv::Mat FaceLikeCrop(int side) {
  cv::Mat crop(side, side, CV_8UC3);
  cv::RNG rng(5);
  rng.fill(crop, cv::RNG::UNIFORM, 0, 256);
  cv::GaussianBlur(crop, crop, cv::Size(0, 0), 1.5);
  return crop;
}

void BM_Degrade(benchmark::State& state) {
  const train::DegradeParams kinds[] = {{true, false, 1, 28, 0}, {true, true, 1, 42, 0}, {true, true, 1, -1, 55},
                                        {true, true, 4, 42, 0},  {true, true, 2, -1, 55}};
  const train::DegradeParams p = kinds[state.range(0)];
  const cv::Mat crop = FaceLikeCrop(160);
  for (auto _ : state) {
    Result<cv::Mat> out = train::ApplyDegrade(p, crop);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_Degrade)->DenseRange(0, 4)->Unit(benchmark::kMillisecond);

void BM_SelfBlend(benchmark::State& state) {
  const int side = static_cast<int>(state.range(0));
  const cv::Mat crop = FaceLikeCrop(side);
  const float s = side / 160.0f;
  const train::Keypoints kp = {Point{60 * s, 65 * s}, Point{100 * s, 65 * s}, Point{80 * s, 88 * s},
                               Point{80 * s, 110 * s}, Point{35 * s, 75 * s}, Point{125 * s, 75 * s}};
  std::mt19937 rng(3);
  for (auto _ : state) {
    Result<train::BlendSample> b = train::MakeSelfBlended(crop, kp, train::SbiOptions{}, rng);
    benchmark::DoNotOptimize(b);
  }
}
BENCHMARK(BM_SelfBlend)->Arg(160)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace deepscan::bench

BENCHMARK_MAIN();
