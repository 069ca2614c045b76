// The accelerated paths on a machine with an NVIDIA GPU (label `gpu`): ONNX Runtime's CUDA
// provider runs the detector and the classifier with the CPU's outputs (within 1e-3), and NVDEC
// decodes a 1080p H.264 clip to the same frames as software decoding (within a small pixel
// difference). Every test skips cleanly where the driver sees no CUDA device (core/cuda_probe.h
// asks libcuda.so.1 through dlopen: nothing here links CUDA). scripts/gpu-check.sh runs this.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "core/cuda_probe.h"
#include "face/blazeface.h"
#include "infer/ort_model.h"
#include "infer/registry.h"
#include "test_env.h"
#include "video/source.h"

namespace deepscan {
namespace {

using testing::DetectorPath;
using testing::ReadFrameNumber;
using testing::SourceDir;
using testing::TempDir;
using testing::WriteNumberedClip;

#define SKIP_WITHOUT_GPU()                                                                 \
  if (ProbeCuda().devices == 0) GTEST_SKIP() << "no CUDA device: " << ProbeCuda().problem; \
  std::printf("[ device   ] %s (driver %d)\n", ProbeCuda().device_name.c_str(), ProbeCuda().driver_version)

std::vector<float> RandomInput(size_t n, int seed) {
  std::vector<float> v(n);
  cv::RNG rng(seed);
  for (float& x : v) x = rng.uniform(-1.0f, 1.0f);
  return v;
}

float MaxAbsDiff(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  EXPECT_EQ(a.size(), b.size());
  float worst = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    EXPECT_EQ(a[i].size(), b[i].size());
    for (size_t j = 0; j < a[i].size() && j < b[i].size(); ++j) worst = std::max(worst, std::abs(a[i][j] - b[i][j]));
  }
  return worst;
}

// Loads the detector model on `provider` and returns its raw outputs for a fixed random input.
std::vector<std::vector<float>> DetectorOutputs(const std::string& provider, std::string* in_effect,
                                                std::string* reason) {
  infer::OrtModelOptions o;
  o.provider = provider;
  auto m = infer::OrtModel::Load(DetectorPath(), o);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  if (!m.ok()) return {};
  *in_effect = (*m)->provider();
  *reason = (*m)->fallback_reason();
  const std::vector<int64_t> shape = {1, 256, 256, 3};
  const std::vector<float> input = RandomInput(256 * 256 * 3, 5);
  std::vector<std::vector<float>> out;
  std::vector<std::vector<int64_t>> shapes;
  for (int run = 0; run < 3; ++run) {  // more than once: the first run on a GPU sets things up
    Status st = (*m)->Run(input.data(), shape, &out, &shapes);
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  return out;
}

TEST(GpuTest, DetectorOnCudaMatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  std::string provider, reason;
  auto cpu = DetectorOutputs("cpu", &provider, &reason);
  auto gpu = DetectorOutputs("cuda", &provider, &reason);
  ASSERT_EQ(provider, "cuda") << reason;
  EXPECT_LE(MaxAbsDiff(cpu, gpu), 1e-3f);
}

TEST(GpuTest, DetectorOnTensorRtMatchesTheCpuOrSaysWhy) {
  SKIP_WITHOUT_GPU();
  std::string provider, reason;
  auto cpu = DetectorOutputs("cpu", &provider, &reason);
  auto trt = DetectorOutputs("tensorrt", &provider, &reason);
  // TensorRT needs libnvinfer.so.10 besides CUDA; without it the CUDA provider must take over.
  ASSERT_TRUE(provider == "tensorrt" || provider == "cuda") << provider << ": " << reason;
  if (provider == "cuda") std::printf("[ note     ] TensorRT not usable, ran on CUDA: %s\n", reason.c_str());
  EXPECT_LE(MaxAbsDiff(cpu, trt), 1e-3f);
}

TEST(GpuTest, ClassifierOnCudaMatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  const std::string model = SourceDir() + "/models/default.onnx";
  auto cpu = infer::CreateClassifier({.model_path = model, .backend = "onnxruntime-cpu", .max_batch = 8});
  auto gpu = infer::CreateClassifier({.model_path = model, .backend = "onnxruntime-cuda", .max_batch = 8});
  ASSERT_TRUE(cpu.ok() && gpu.ok());
  ASSERT_EQ((*gpu)->device(), "cuda");
  EXPECT_EQ((*gpu)->backend(), "onnxruntime-cuda");
  const int size = (*cpu)->metadata().input_size;
  cv::RNG rng(3);
  std::vector<cv::Mat> crops;
  for (int i = 0; i < 11; ++i) {  // 8 + 3: a full and a partial batch
    cv::Mat m(size, size, CV_8UC3);
    rng.fill(m, cv::RNG::UNIFORM, 0, 256);
    crops.push_back(m);
  }
  std::vector<float> a, b;
  ASSERT_TRUE((*cpu)->Classify(crops, &a).ok());
  ASSERT_TRUE((*gpu)->Classify(crops, &b).ok());
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-3) << "crop " << i;
}

TEST(GpuTest, DetectorFindsTheSameFacesOnCuda) {
  SKIP_WITHOUT_GPU();
  DetectorOptions options;
  options.model_path = DetectorPath();
  auto cpu = face::BlazeFaceDetector::Create(options, 2, "cpu");
  auto gpu = face::BlazeFaceDetector::Create(options, 2, "cuda");
  ASSERT_TRUE(cpu.ok() && gpu.ok());
  ASSERT_EQ((*gpu)->device(), "cuda");
  // A frame with faces: the 2nd second of the sample clip scripts/setup.sh makes (1280x720).
  cv::Mat frame;
  auto src = video::Source::Open(SourceDir() + "/third_party/sample/sample.mp4", {});
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  for (int i = 0; i <= 60; ++i) {
    video::FrameRef f;
    auto got = (*src)->Next(&f);
    ASSERT_TRUE(got.ok() && *got);
    if (i == 60) ASSERT_TRUE((*src)->ToBgr(f, &frame).ok());
  }
  auto a = (*cpu)->Detect(frame);
  auto b = (*gpu)->Detect(frame);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(a->empty()) << "no face in the sample frame: the comparison would be empty";
  ASSERT_EQ(a->size(), b->size());
  for (size_t i = 0; i < a->size(); ++i) {
    EXPECT_NEAR((*a)[i].score, (*b)[i].score, 1e-3);
    EXPECT_NEAR((*a)[i].box.x, (*b)[i].box.x, 0.5);
    EXPECT_NEAR((*a)[i].box.w, (*b)[i].box.w, 0.5);
  }
}

TEST(GpuTest, NvdecDecodes1080pLikeSoftware) {
  SKIP_WITHOUT_GPU();
  const std::string path = TempDir() + "/1080p.mp4";
  const int frames = 48;
  ASSERT_TRUE(WriteNumberedClip(path, frames, 24, 1920, 1080,
                                {"-c:v", "libx264", "-preset", "veryfast", "-g", "12", "-pix_fmt", "yuv420p"}));
  std::vector<cv::Mat> sw, hw;
  std::string device;
  for (const char* hwaccel : {"none", "cuda"}) {
    video::SourceOptions so;
    so.hwaccel = hwaccel;
    auto src = video::Source::Open(path, so);
    ASSERT_TRUE(src.ok()) << src.status().ToString();
    auto& out = std::string(hwaccel) == "none" ? sw : hw;
    bool first = true;
    while (true) {
      video::FrameRef f;
      auto got = (*src)->Next(&f);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      if (!*got) break;
      if (std::string(hwaccel) == "cuda" && first) {
        EXPECT_TRUE(f.on_gpu()) << "NVDEC attached, but the frame came out in system memory";
      }
      // Half the frames through Download, half through ToBgr's own copy: both paths.
      if (out.size() % 2 == 0) {
        ASSERT_TRUE((*src)->Download(&f).ok());
        EXPECT_FALSE(f.on_gpu());
      }
      cv::Mat bgr;
      ASSERT_TRUE((*src)->ToBgr(f, &bgr).ok());
      out.push_back(bgr.clone());
      first = false;
    }
    if (std::string(hwaccel) == "cuda") {
      device = (*src)->decoder_device();
      EXPECT_TRUE((*src)->warnings().empty()) << (*src)->warnings()[0];
    }
  }
  EXPECT_EQ(device, "cuda");
  ASSERT_EQ(hw.size(), sw.size());
  ASSERT_EQ(sw.size(), static_cast<size_t>(frames));
  double worst = 0;
  for (size_t i = 0; i < sw.size(); ++i) {
    EXPECT_EQ(ReadFrameNumber(hw[i]), ReadFrameNumber(sw[i])) << "frame " << i;
    cv::Mat diff;
    cv::absdiff(hw[i], sw[i], diff);
    worst = std::max(worst, cv::mean(diff)[0]);
  }
  // NV12 through swscale vs planar 4:2:0: the same samples, chroma interpolated alike; allow a little.
  EXPECT_LT(worst, 2.0) << "mean absolute pixel difference";
  std::printf("[ nvdec    ] %zu frames, worst mean |diff| %.3f\n", hw.size(), worst);
}

}  // namespace
}  // namespace deepscan
