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
#include <numeric>

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
#include "train/metrics.h"
#include "video/sampler.h"
#include "video/source.h"

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
    // The bar holds for back-256, the whole-frame detector (models/blazeface-back-int8.onnx).
    // front-128 is made for faces that fill the picture (the re-find crops) and finds 11 of these
    // 43; its INT8 variant is printed, not shipped.
    if (model == deepscan::testing::DetectorPath()) EXPECT_GE(int8.value(), fp32.value() - 0.01) << model;
  }
}

// Face crops (the scan's: margin 0.3) of the middle frame of the first `n` clips in `dir`.
std::vector<cv::Mat> ClipCrops(const std::string& dir, int n, int side) {
  DetectorOptions o;
  o.model_path = deepscan::testing::DetectorPath();
  auto det = face::BlazeFaceDetector::Create(o, 1);
  std::vector<std::string> clips;
  for (const auto& e : fs::directory_iterator(dir)) clips.push_back(e.path().string());
  std::sort(clips.begin(), clips.end());
  std::vector<cv::Mat> crops;
  for (const auto& clip : clips) {
    if (static_cast<int>(crops.size()) >= n) break;
    video::SourceOptions so;
    so.threads = 1;
    auto src = video::Source::Open(clip, so);
    if (!src.ok()) continue;
    auto sampler = video::MakeUniformSampler((*src)->info(), 3, 1.0);
    video::SampledFrames frames(src->get(), sampler.get());
    video::FrameRef f;
    cv::Mat bgr;
    for (int k = 0; k < 2; ++k) {  // the second of three: the middle
      auto more = frames.Next(&f);
      if (!more.ok() || !*more) break;
    }
    if (!f.valid() || !(*src)->ToBgr(f, &bgr).ok()) continue;
    auto faces = (*det)->Detect(bgr);
    if (!faces.ok() || faces->empty()) continue;
    cv::Mat crop;
    face::CropFace(bgr, faces->front().box, 0.3f, side, &crop);
    crops.push_back(crop.clone());
  }
  return crops;
}

TEST_F(QuantizeModelsTest, ShippedInt8ClassifierScoresLikeTheFloatOne) {
  const std::string fp32 = deepscan::testing::SourceDir() + "/models/default.onnx";
  const std::string int8 = deepscan::testing::SourceDir() + "/models/default-int8.onnx";
  if (!fs::exists(int8)) GTEST_SKIP() << "no models/default-int8.onnx";
  int qconv = 0;
  EXPECT_TRUE(HasIntegerConv(int8, &qconv));
  // 25 convolutions; the first 6, the most sensitive, stay float (docs/compression.md).
  EXPECT_GE(qconv, 15) << "most convolutions of the MobileNet should run as QLinearConv";
  EXPECT_LT(fs::file_size(int8) * 3, fs::file_size(fp32));
  auto f = infer::CreateClassifier({.model_path = fp32, .threads = 1, .max_batch = 16});
  auto q = infer::CreateClassifier({.model_path = int8, .threads = 1, .max_batch = 16});
  ASSERT_TRUE(f.ok() && q.ok());
  const int side = (*f)->metadata().input_size;
  std::vector<cv::Mat> real = ClipCrops(data_ + "/videos/real", 24, side), fake = ClipCrops(data_ + "/videos/fake", 24, side);
  ASSERT_GE(real.size(), 20u);
  ASSERT_GE(fake.size(), 20u);
  std::vector<cv::Mat> crops = real;
  crops.insert(crops.end(), fake.begin(), fake.end());
  std::vector<int> labels(real.size(), 0);
  labels.insert(labels.end(), fake.size(), 1);
  std::vector<float> sf, sq;
  ASSERT_TRUE((*f)->Classify(crops, &sf).ok());
  ASSERT_TRUE((*q)->Classify(crops, &sq).ok());
  // Rank agreement (Spearman) and AUC on these clips' crops.
  auto ranks = [](const std::vector<float>& v) {
    std::vector<size_t> idx(v.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
    std::vector<double> r(v.size());
    for (size_t i = 0; i < idx.size(); ++i) r[idx[i]] = static_cast<double>(i);
    return r;
  };
  std::vector<double> rf = ranks(sf), rq = ranks(sq);
  double d2 = 0;
  for (size_t i = 0; i < rf.size(); ++i) d2 += (rf[i] - rq[i]) * (rf[i] - rq[i]);
  const double n = static_cast<double>(rf.size());
  const double spearman = 1 - 6 * d2 / (n * (n * n - 1));
  auto auc_f = train::RocAuc(sf, labels), auc_q = train::RocAuc(sq, labels);
  ASSERT_TRUE(auc_f.ok() && auc_q.ok());
  std::printf("default-int8 vs default on %zu real + %zu generated-fake clip crops: Spearman %.3f, AUC %.4f vs %.4f\n",
              real.size(), fake.size(), spearman, *auc_q, *auc_f);
  EXPECT_GE(spearman, 0.85);
  EXPECT_NEAR(*auc_q, *auc_f, 0.05);
}

}  // namespace
}  // namespace deepscan::compress
