// micro_bench: Google Benchmark timings of the per-face hot helpers, on synthetic inputs.
//   BM_CropFace/<size>     face::CropFace of a 300 px face from a 1080p frame to size x size.
//   BM_PackNchw/<size>     infer::PackNchw of a batch of 16 crops (normalised RGB NCHW floats).
//   BM_WeightedNms/<n>     face::WeightedNms of n detections in clusters of 8 overlapping boxes.
//   BM_TrackerUpdate/<n>   track::FaceTracker::Update of a frame with n faces (all tracked).
//   BM_HashFile/<MiB>      pipeline::HashFile (XXH3-128, 1 MiB reads) of a file in the page cache.
// Run: build-bench/micro_bench [--benchmark_filter=...]. Nothing is asserted.
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <opencv2/core.hpp>

#include "face/blazeface.h"
#include "face/crop.h"
#include "infer/classifier.h"
#include "infer/model_metadata.h"
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

}  // namespace
}  // namespace deepscan::bench

BENCHMARK_MAIN();
