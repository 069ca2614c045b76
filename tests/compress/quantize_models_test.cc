// INT8 variants of the shipped models on the shared data: each BlazeFace detector quantised on
// frames of the real clips must keep its recall on dlib's annotated photos (IoU >= 0.5, within
// 0.01 of float, the bar of issue [2 of 4]) with integer kernels chosen by ONNX Runtime; the
// default classifier quantised on real crops of some clips must score the crops of other clips
// like the float model. Figures are printed (the Pareto bench measures speed and dev-set AUC).
// Skips, saying why, without the shared data or the models.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "compress/calibration_data.h"
#include "compress/quantize.h"
#include "face/blazeface.h"
#include "face/crop.h"
#include "imglab.h"
#include "infer/ort_model.h"
#include "infer/ort_profile.h"
#include "infer/registry.h"
#include "test_env.h"
#include "train/crop_store.h"

namespace deepscan::compress {
namespace {

namespace fs = std::filesystem;

// Recall at IoU >= 0.5 on dlib's annotated photos (training.xml + testing.xml, 43 faces) with
// default detector options, and the mean time per Detect call.
struct Recall {
  int found = 0, total = 0;
  double ms = 0;
  double value() const { return total ? static_cast<double>(found) / total : 0; }
};

Recall DlibRecall(const std::string& data, const std::string& model) {
  DetectorOptions o;
  o.model_path = model;
  auto det = face::BlazeFaceDetector::Create(o, 1);
  EXPECT_TRUE(det.ok()) << det.status().ToString();
  Recall r;
  if (!det.ok()) return r;
  const std::string dir = data + "/images/dlib/faces/";
  int calls = 0;
  for (const char* xml : {"training.xml", "testing.xml"}) {
    for (const auto& image : testing::ReadImglab(dir + xml)) {
      cv::Mat img = cv::imread(dir + image.file, cv::IMREAD_COLOR);
      std::vector<Box> faces;
      for (const auto& f : image.faces) faces.push_back(f.box);
      auto t0 = std::chrono::steady_clock::now();
      auto dets = (*det)->Detect(img);
      r.ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      ++calls;
      EXPECT_TRUE(dets.ok());
      if (!dets.ok()) continue;
      r.found += static_cast<int>(testing::GreedyMatch(faces, *dets, 0.5f).size());
      r.total += static_cast<int>(faces.size());
    }
  }
  r.ms /= std::max(1, calls);
  return r;
}

// Mean ms of one raw network run on one thread (first sample; after a warm-up).
double MsPerRun(const std::string& path, const CalibrationSample& s, int runs = 100) {
  infer::OrtModelOptions o;

  auto m = infer::OrtModel::Load(path, o);
  EXPECT_TRUE(m.ok());
  if (!m.ok()) return 0;
  std::vector<std::vector<float>> outs;
  std::vector<std::vector<int64_t>> shapes;
  for (int i = 0; i < 10; ++i) (void)(*m)->Run(s.data.data(), s.shape, &outs, &shapes);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < runs; ++i) (void)(*m)->Run(s.data.data(), s.shape, &outs, &shapes);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / runs;
  return ms;
}

bool HasIntegerConv(const std::string& path, int* count) {
  auto ops = OptimizedOpCounts(path);
  EXPECT_TRUE(ops.ok()) << ops.status().ToString();
  *count = ops.ok() && ops->count("com.microsoft:QLinearConv") ? ops->at("com.microsoft:QLinearConv") : 0;
  return *count > 0;
}

class QuantizeModelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = deepscan::testing::SharedDataDir();
    if (data_.empty()) GTEST_SKIP() << "shared data absent: INT8 variants not measured";
    if (!fs::exists(deepscan::testing::DetectorPath())) GTEST_SKIP() << "BlazeFace absent: run scripts/setup.sh";
    dir_ = deepscan::testing::TempDir();
  }
  std::string data_, dir_;
};

TEST_F(QuantizeModelsTest, DetectorsKeepRecallOnAnnotatedPhotos) {
  for (const std::string& model : {deepscan::testing::DetectorPath(), deepscan::testing::FrontDetectorPath()}) {
    int skipped = 0;
    auto samples = DetectorSamples(model, {data_ + "/videos/real"}, 2, 200, &skipped);
    ASSERT_TRUE(samples.ok()) << samples.status().ToString();
    EXPECT_EQ(samples->size(), 200u);
    EXPECT_EQ(skipped, 0);
    const std::string out = dir_ + "/" + fs::path(model).stem().string() + "-int8.onnx";
    auto rep = QuantizeStatic(model, out, *samples, DetectorQuantizeOptions(static_cast<int>(samples->front().shape[1])));
    ASSERT_TRUE(rep.ok()) << rep.status().ToString();
    int qconv = 0;
    EXPECT_TRUE(HasIntegerConv(out, &qconv)) << "ORT chose no integer convolution for " << out;
    EXPECT_LT(rep->bytes_out, rep->bytes_in);
    Recall fp32 = DlibRecall(data_, model), int8 = DlibRecall(data_, out);
    std::printf("network run: fp32 %.3f ms, int8 %.3f ms\n", MsPerRun(model, samples->front()), MsPerRun(out, samples->front()));
    std::printf("%s: recall fp32 %d/%d = %.3f (%.2f ms/image), int8 %d/%d = %.3f (%.2f ms/image); %d QLinearConv; "
                "%.0f -> %.0f KB\n",
                fs::path(model).filename().c_str(), fp32.found, fp32.total, fp32.value(), fp32.ms, int8.found,
                int8.total, int8.value(), int8.ms, qconv, rep->bytes_in / 1e3, rep->bytes_out / 1e3);
    RecordProperty(fs::path(model).stem().string() + "_recall_int8", std::to_string(int8.value()));
    // The front model is made for large faces; its float recall on these photos is the reference.
    EXPECT_GE(int8.value(), fp32.value() - 0.01) << model;
  }
}

}  // namespace
}  // namespace deepscan::compress
