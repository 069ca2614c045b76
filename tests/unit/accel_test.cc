// Accelerators when present, a clean fall-back to the CPU when not (infer/ort_model.h,
// video/hwaccel.h). On a machine without a usable NVIDIA GPU, a request for CUDA or TensorRT must
// load the models on the CPU with a reason and give exactly the CPU's outputs, and an NVDEC
// request must decode every frame exactly as software decoding does. On a machine with a GPU
// these fall-back tests skip; tests/gpu/gpu_test.cc checks the accelerated paths there.
#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "core/cuda_probe.h"
#include "deepscan/scanner.h"
#include "face/blazeface.h"
#include "infer/ort_model.h"
#include "infer/registry.h"
#include "report/report.h"
#include "test_env.h"
#include "video/source.h"

namespace deepscan {
namespace {

using testing::DetectorPath;
using testing::RandomCrops;
using testing::ReadFrameNumber;
using testing::SourceDir;
using testing::TempDir;
using testing::WriteNumberedClip;

std::string ClassifierPath() { return SourceDir() + "/models/default.onnx"; }

// Skips a fall-back test where a GPU would make the accelerated path succeed.
#define SKIP_IF_GPU() \
  if (ProbeCuda().devices > 0) GTEST_SKIP() << "a CUDA device is present: gpu_test covers it"

// Captures what the library logs (at every level) while it lives, then restores the logger.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000)) {
    previous_ = spdlog::default_logger();
    auto logger = std::make_shared<spdlog::logger>("capture", sink_);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  // Formatted lines ("[level] message") at `level` or above.
  std::vector<std::string> AtLeast(spdlog::level::level_enum level) const {
    std::vector<std::string> out;
    for (const auto& m : sink_->last_raw()) {
      if (m.level >= level) out.push_back(std::string(m.payload.data(), m.payload.size()));
    }
    return out;
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

std::vector<float> RandomInput(const std::vector<int64_t>& shape, int seed) {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  std::vector<float> v(n);
  cv::RNG rng(seed);
  for (float& x : v) x = rng.uniform(-1.0f, 1.0f);
  return v;
}

std::vector<std::vector<float>> RunOnce(const infer::OrtModel& model, const std::vector<float>& input,
                                        const std::vector<int64_t>& shape) {
  std::vector<std::vector<float>> outputs;
  std::vector<std::vector<int64_t>> shapes;
  Status st = model.Run(input.data(), shape, &outputs, &shapes);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return outputs;
}

// First in this file on purpose: the warning is said once per process, and CTest runs each test
// in a process of its own.
TEST(AccelTest, ExplicitRequestWarnsOnceAutoStaysQuiet) {
  SKIP_IF_GPU();
  LogCapture log;
  infer::OrtModelOptions o;
  o.provider = "auto";
  auto quiet = infer::OrtModel::Load(DetectorPath(), o);
  ASSERT_TRUE(quiet.ok()) << quiet.status().ToString();
  EXPECT_EQ((*quiet)->provider(), "cpu");
  EXPECT_FALSE((*quiet)->fallback_reason().empty());  // kept for whoever asks, not said
  EXPECT_TRUE(log.AtLeast(spdlog::level::info).empty()) << log.AtLeast(spdlog::level::info)[0];

  o.provider = "cuda";
  for (int i = 0; i < 2; ++i) {  // the detector and the classifier of one scan: one warning
    auto loud = infer::OrtModel::Load(DetectorPath(), o);
    ASSERT_TRUE(loud.ok()) << loud.status().ToString();
  }
  auto said = log.AtLeast(spdlog::level::warn);
  ASSERT_EQ(said.size(), 1u);
  EXPECT_NE(said[0].find("CUDA not usable"), std::string::npos) << said[0];
  EXPECT_NE(said[0].find("runs on the CPU"), std::string::npos) << said[0];
}

TEST(AccelTest, CudaProbeAnswersWithAReason) {
  const CudaProbe& p = ProbeCuda();
  if (p.devices == 0) {
    EXPECT_FALSE(p.problem.empty());
    EXPECT_TRUE(p.device_name.empty());
  } else {
    EXPECT_TRUE(p.problem.empty()) << p.problem;
    EXPECT_FALSE(p.device_name.empty());
    EXPECT_GT(p.driver_version, 0);
  }
  EXPECT_EQ(&p, &ProbeCuda());  // probed once
}

TEST(AccelTest, UnknownProviderIsAnInvalidArgument) {
  infer::OrtModelOptions o;
  o.provider = "rocm";
  EXPECT_EQ(infer::OrtModel::Load(DetectorPath(), o).status().code(), Code::kInvalidArgument);
}

TEST(AccelTest, BrokenModelIsAnErrorNotAFallBack) {
  std::string path = TempDir() + "/junk.onnx";
  std::ofstream(path) << "not a model";
  infer::OrtModelOptions o;
  o.provider = "cuda";
  EXPECT_EQ(infer::OrtModel::Load(path, o).status().code(), Code::kInvalidModel);
}

TEST(AccelTest, DetectorModelFallsBackWithTheCpuOutputs) {
  SKIP_IF_GPU();
  infer::OrtModelOptions o;
  auto cpu = infer::OrtModel::Load(DetectorPath(), o);
  ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
  EXPECT_EQ((*cpu)->provider(), "cpu");
  EXPECT_TRUE((*cpu)->fallback_reason().empty());
  const std::vector<int64_t> shape = {1, 256, 256, 3};
  const std::vector<float> input = RandomInput(shape, 5);
  const auto want = RunOnce(**cpu, input, shape);
  ASSERT_FALSE(want.empty());
  for (const char* provider : {"cuda", "tensorrt", "auto"}) {
    SCOPED_TRACE(provider);
    o.provider = provider;
    auto m = infer::OrtModel::Load(DetectorPath(), o);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_EQ((*m)->provider(), "cpu");
    EXPECT_FALSE((*m)->fallback_reason().empty());
    EXPECT_EQ(RunOnce(**m, input, shape), want);  // the same CPU kernels: identical, not close
  }
}

TEST(AccelTest, TensorRtFallBackNamesWhatFailed) {
  SKIP_IF_GPU();
  infer::OrtModelOptions o;
  o.provider = "tensorrt";
  auto m = infer::OrtModel::Load(DetectorPath(), o);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const std::string& why = (*m)->fallback_reason();
  // Either this ONNX Runtime has no GPU support at all, or the driver/device is missing.
  bool cpu_build = why.find("CPU-only build") != std::string::npos;
  bool no_gpu = why.find("NVIDIA") != std::string::npos || why.find("CUDA") != std::string::npos;
  EXPECT_TRUE(cpu_build || no_gpu) << why;
}

TEST(AccelTest, DetectorFallsBackWithTheSameFaces) {
  SKIP_IF_GPU();
  DetectorOptions options;
  options.model_path = DetectorPath();
  cv::Mat frame(720, 1280, CV_8UC3);
  cv::RNG(9).fill(frame, cv::RNG::UNIFORM, 0, 256);
  cv::GaussianBlur(frame, frame, cv::Size(0, 0), 3);
  auto cpu = face::BlazeFaceDetector::Create(options, 1, "cpu");
  ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
  auto want = (*cpu)->Detect(frame);
  ASSERT_TRUE(want.ok());
  for (const char* device : {"cuda", "tensorrt", "auto"}) {
    SCOPED_TRACE(device);
    auto d = face::BlazeFaceDetector::Create(options, 1, device);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ((*d)->device(), "cpu");
    auto got = (*d)->Detect(frame);
    ASSERT_TRUE(got.ok());
    ASSERT_EQ(got->size(), want->size());
    for (size_t i = 0; i < got->size(); ++i) {
      EXPECT_EQ((*got)[i].score, (*want)[i].score);
      EXPECT_EQ((*got)[i].box.x, (*want)[i].box.x);
      EXPECT_EQ((*got)[i].box.w, (*want)[i].box.w);
    }
  }
  EXPECT_EQ(face::BlazeFaceDetector::Create(options, 1, "opencl").status().code(), Code::kInvalidArgument);
}

TEST(AccelTest, ClassifierBackendsFallBackWithTheCpuScores) {
  SKIP_IF_GPU();
  auto cpu = infer::CreateClassifier({.model_path = ClassifierPath(), .backend = "onnxruntime-cpu", .max_batch = 4});
  ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
  EXPECT_EQ((*cpu)->backend(), "onnxruntime-cpu");
  EXPECT_EQ((*cpu)->device(), "cpu");
  const auto crops = RandomCrops(6, (*cpu)->metadata().input_size, 11);
  std::vector<float> want;
  ASSERT_TRUE((*cpu)->Classify(crops, &want).ok());
  struct Case {
    std::string backend, device;
  };
  for (const Case& c : {Case{"onnxruntime-cuda", "cpu"}, Case{"onnxruntime-tensorrt", "cpu"},
                        Case{"onnxruntime", "cuda"}, Case{"onnxruntime", "auto"}}) {
    SCOPED_TRACE(c.backend + " on " + c.device);
    auto cls = infer::CreateClassifier(
        {.model_path = ClassifierPath(), .backend = c.backend, .device = c.device, .max_batch = 4});
    ASSERT_TRUE(cls.ok()) << cls.status().ToString();
    EXPECT_EQ((*cls)->backend(), "onnxruntime-cpu");  // what ran, so that the report is true
    EXPECT_EQ((*cls)->device(), "cpu");
    std::vector<float> got;
    ASSERT_TRUE((*cls)->Classify(crops, &got).ok());
    EXPECT_EQ(got, want);
  }
}

TEST(AccelTest, BackendNamesIncludeTheGpuOnes) {
  auto known = infer::KnownBackends();
  for (const char* name : {"onnxruntime", "onnxruntime-cpu", "onnxruntime-cuda", "onnxruntime-tensorrt"}) {
    EXPECT_NE(std::find(known.begin(), known.end(), name), known.end()) << name;
  }
  auto bad = infer::CreateClassifier({.model_path = ClassifierPath(), .device = "tpu"});
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
}

TEST(AccelTest, ScannerReportsWhereTheClassifierRan) {
  SKIP_IF_GPU();
  ScanOptions options;
  options.detector.model_path = DetectorPath();
  options.classifier.model_path = ClassifierPath();
  options.accel.device = "cuda";
  options.threads = 1;
  auto scanner = Scanner::Create(options);
  ASSERT_TRUE(scanner.ok()) << scanner.status().ToString();
  EXPECT_EQ((*scanner)->model().device, "cpu");
  EXPECT_EQ((*scanner)->model().backend, "onnxruntime-cpu");
  report::ScanReport r{(*scanner)->model(), options, {}};
  auto json = nlohmann::json::parse(report::Render(r, report::Format::kJson));
  EXPECT_EQ(json["model"]["device"], "cpu");
  EXPECT_EQ(json["model"]["backend"], "onnxruntime-cpu");
}

// ---- NVDEC ------------------------------------------------------------------------------------

struct Decoded {
  std::vector<int> numbers;
  std::vector<cv::Mat> frames;
  std::vector<std::string> warnings;
  std::string device;
};

Decoded DecodeAll(const std::string& path, const std::string& hwaccel) {
  Decoded d;
  video::SourceOptions so;
  so.hwaccel = hwaccel;
  auto src = video::Source::Open(path, so);
  EXPECT_TRUE(src.ok()) << src.status().ToString();
  if (!src.ok()) return d;
  while (true) {
    video::FrameRef f;
    auto got = (*src)->Next(&f);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (!got.ok() || !*got) break;
    EXPECT_FALSE(f.on_gpu());
    EXPECT_TRUE((*src)->Download(&f).ok());  // a no-op for a frame in system memory
    EXPECT_TRUE(f.valid());
    cv::Mat bgr;
    EXPECT_TRUE((*src)->ToBgr(f, &bgr).ok());
    d.numbers.push_back(ReadFrameNumber(bgr));
    d.frames.push_back(bgr.clone());
  }
  d.warnings = (*src)->warnings();
  d.device = (*src)->decoder_device();
  return d;
}

TEST(AccelTest, NvdecRequestFallsBackAndDecodesEveryFrameAsSoftware) {
  SKIP_IF_GPU();
  std::string path = TempDir() + "/clip.mp4";
  ASSERT_TRUE(WriteNumberedClip(path, 24, 24, 320, 240, {"-c:v", "libx264", "-g", "8", "-pix_fmt", "yuv420p"}));
  Decoded sw = DecodeAll(path, "none");
  ASSERT_EQ(sw.numbers.size(), 24u);
  EXPECT_TRUE(sw.warnings.empty());
  EXPECT_EQ(sw.device, "cpu");

  Decoded asked = DecodeAll(path, "cuda");
  ASSERT_EQ(asked.warnings.size(), 1u);
  EXPECT_NE(asked.warnings[0].find("NVDEC not used"), std::string::npos) << asked.warnings[0];
  EXPECT_EQ(asked.device, "cpu");
  ASSERT_EQ(asked.frames.size(), sw.frames.size());
  EXPECT_EQ(asked.numbers, sw.numbers);
  for (size_t i = 0; i < sw.frames.size(); ++i) {
    EXPECT_EQ(cv::norm(asked.frames[i], sw.frames[i], cv::NORM_INF), 0) << "frame " << i;
  }

  Decoded quiet = DecodeAll(path, "auto");
  EXPECT_TRUE(quiet.warnings.empty());
  EXPECT_EQ(quiet.device, "cpu");
  EXPECT_EQ(quiet.numbers, sw.numbers);
}

TEST(AccelTest, UnknownHwaccelIsAnInvalidArgument) {
  std::string path = TempDir() + "/clip.mp4";
  ASSERT_TRUE(WriteNumberedClip(path, 4, 24, 64, 64, {"-c:v", "libx264", "-pix_fmt", "yuv420p"}));
  video::SourceOptions so;
  so.hwaccel = "vaapi";
  EXPECT_EQ(video::Source::Open(path, so).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace deepscan
