#include <cmath>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "infer/model_metadata.h"
#include "infer/onnx_graph.h"
#include "infer/registry.h"
#include "test_env.h"

namespace deepscan::infer {
namespace {

using deepscan::testing::RandomCrops;
using deepscan::testing::TempDir;

// Writes a mean-colour model with its metadata; returns the ONNX path.
std::string MakeModel(const std::string& dir, const std::string& name, int size, std::vector<float> w, float b,
                      ModelMetadata meta = {}, int metadata_size = -1) {
  std::string path = dir + "/" + name + ".onnx";
  EXPECT_TRUE(WriteMeanColourModel(path, size, w, b).ok());
  meta.name = name;
  meta.input_size = metadata_size > 0 ? metadata_size : size;
  std::ofstream(MetadataPathFor(path)) << ModelMetadataToJson(meta);
  return path;
}

double Sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

TEST(ClassifierTest, ScoresMatchTheHandComputedValue) {
  ModelMetadata meta;
  meta.mean = {0.5f, 0.5f, 0.5f};
  meta.std = {0.5f, 0.5f, 0.5f};  // pixel 255 -> +1, pixel 0 -> -1
  std::string path = MakeModel(TempDir(), "mean", 32, {2.0f, -1.0f, 0.5f}, 0.25f, meta);
  auto cls = CreateClassifier({.model_path = path, .threads = 1, .max_batch = 4});
  ASSERT_TRUE(cls.ok()) << cls.status().ToString();
  // BGR crops: pure red (R=255 -> +1, G,B -> -1), pure blue, grey 0.
  std::vector<cv::Mat> crops = {cv::Mat(32, 32, CV_8UC3, cv::Scalar(0, 0, 255)),
                                cv::Mat(32, 32, CV_8UC3, cv::Scalar(255, 0, 0)),
                                cv::Mat(32, 32, CV_8UC3, cv::Scalar(0, 0, 0))};
  std::vector<float> scores;
  ASSERT_TRUE((*cls)->Classify(crops, &scores).ok());
  ASSERT_EQ(scores.size(), 3u);
  EXPECT_NEAR(scores[0], Sigmoid(2 * 1 - 1 * -1 + 0.5 * -1 + 0.25), 1e-5);
  EXPECT_NEAR(scores[1], Sigmoid(2 * -1 - 1 * -1 + 0.5 * 1 + 0.25), 1e-5);
  EXPECT_NEAR(scores[2], Sigmoid(2 * -1 - 1 * -1 + 0.5 * -1 + 0.25), 1e-5);
}

// Writes WriteRandomConvModel (with the heatmap output "mask" [N, 1, S/4, S/4] when asked) and its
// metadata; returns the ONNX path.
std::string MakeConvModel(const std::string& name, int size, uint32_t seed, bool heatmap = false) {
  std::string path = TempDir() + "/" + name + ".onnx";
  EXPECT_TRUE(WriteRandomConvModel(path, size, seed, heatmap).ok());
  ModelMetadata meta;
  meta.input_size = size;
  meta.name = name;
  std::ofstream(MetadataPathFor(path)) << ModelMetadataToJson(meta);
  return path;
}

TEST(ClassifierTest, BatchingDoesNotChangeScores) {
  const std::string path = MakeConvModel("conv", 48, 7);
  const std::vector<cv::Mat> crops = RandomCrops(11, 48, 3);
  std::vector<float> one, many;
  auto a = CreateClassifier({.model_path = path, .max_batch = 1});
  auto b = CreateClassifier({.model_path = path, .max_batch = 4});  // 4 + 4 + 3
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE((*a)->Classify(crops, &one).ok());
  ASSERT_TRUE((*b)->Classify(crops, &many).ok());
  for (size_t i = 0; i < crops.size(); ++i) EXPECT_NEAR(one[i], many[i], 1e-5);
  // Not all the same: the model looks at the pixels.
  EXPECT_GT(std::abs(one[0] - one[1]) + std::abs(one[1] - one[2]), 1e-4);
}

// Flip TTA: each score is the mean of the crop's and its mirror's (checked against the inner
// classifier on explicit mirrors), with the inner model's metadata, in one call per batch.
TEST(ClassifierTest, FlipTtaAveragesTheCropAndItsMirror) {
  const std::string path = MakeConvModel("tta", 48, 5);
  auto plain = CreateClassifier({.model_path = path, .threads = 1, .max_batch = 8});
  auto inner = CreateClassifier({.model_path = path, .threads = 1, .max_batch = 8});
  ASSERT_TRUE(plain.ok() && inner.ok());
  std::unique_ptr<Classifier> tta = WithFlipTta(std::move(*inner));
  EXPECT_EQ(tta->metadata().name, "tta");
  EXPECT_EQ(tta->backend(), (*plain)->backend());
  cv::RNG rng(8);
  std::vector<cv::Mat> crops, mirrors;
  for (int i = 0; i < 5; ++i) {
    cv::Mat m(48, 48, CV_8UC3);
    rng.fill(m, cv::RNG::UNIFORM, 0, 256);
    cv::Mat f;
    cv::flip(m, f, 1);
    crops.push_back(m);
    mirrors.push_back(f);
  }
  std::vector<float> a, b, t;
  ASSERT_TRUE((*plain)->Classify(crops, &a).ok());
  ASSERT_TRUE((*plain)->Classify(mirrors, &b).ok());
  ASSERT_TRUE(tta->Classify(crops, &t).ok());
  ASSERT_EQ(t.size(), crops.size());
  bool any_asymmetric = false;
  for (size_t i = 0; i < crops.size(); ++i) {
    EXPECT_NEAR(t[i], 0.5f * (a[i] + b[i]), 1e-5) << i;
    any_asymmetric = any_asymmetric || std::abs(a[i] - b[i]) > 1e-4;
  }
  EXPECT_TRUE(any_asymmetric) << "the random model scores mirrors alike: the test proves nothing";
  std::vector<cv::Mat> wrong = {cv::Mat(10, 10, CV_8UC3, cv::Scalar(0))};
  EXPECT_EQ(tta->Classify(wrong, &t).code(), Code::kInvalidArgument);
}

TEST(ClassifierHeatmapTest, TheMaskOutputComesBackPerCropAndTheScoresDoNotChange) {
  const std::string path = MakeConvModel("heat", 48, 11, /*heatmap=*/true);
  auto cls = CreateClassifier({.model_path = path, .threads = 1, .max_batch = 4});
  ASSERT_TRUE(cls.ok()) << cls.status().ToString();
  EXPECT_TRUE((*cls)->has_heatmaps());
  const std::vector<cv::Mat> crops = RandomCrops(7, 48, 21);  // two batches of 4 and 3
  std::vector<float> plain, scores;
  std::vector<cv::Mat> maps;
  ASSERT_TRUE((*cls)->Classify(crops, &plain).ok());
  ASSERT_TRUE((*cls)->ClassifyWithHeatmaps(crops, &scores, &maps).ok());
  ASSERT_EQ(scores.size(), crops.size());
  ASSERT_EQ(maps.size(), crops.size());
  for (size_t i = 0; i < crops.size(); ++i) {
    EXPECT_FLOAT_EQ(scores[i], plain[i]) << i;
    ASSERT_EQ(maps[i].type(), CV_32F);
    ASSERT_EQ(maps[i].rows, 12);  // 48 / 4
    ASSERT_EQ(maps[i].cols, 12);
    double lo = 0, hi = 0;
    cv::minMaxLoc(maps[i], &lo, &hi);
    EXPECT_GE(lo, 0.0);
    EXPECT_LE(hi, 1.0);
    EXPECT_GT(hi - lo, 1e-4) << "a flat heatmap: the test proves nothing";
  }
  // Each crop's map is its own (batch position does not matter): crop 5 alone gives map 5.
  std::vector<float> one;
  std::vector<cv::Mat> one_map;
  ASSERT_TRUE((*cls)->ClassifyWithHeatmaps({crops[5]}, &one, &one_map).ok());
  EXPECT_LT(cv::norm(one_map[0], maps[5], cv::NORM_INF), 1e-5);
  EXPECT_GT(cv::norm(maps[4], maps[5], cv::NORM_INF), 1e-4);
}

TEST(ClassifierHeatmapTest, FlipTtaAveragesTheMapWithTheMirrorsMapMirroredBack) {
  const std::string path = MakeConvModel("heat-tta", 48, 11, /*heatmap=*/true);
  auto plain = CreateClassifier({.model_path = path, .threads = 1, .max_batch = 8});
  auto inner = CreateClassifier({.model_path = path, .threads = 1, .max_batch = 8});
  ASSERT_TRUE(plain.ok() && inner.ok());
  std::unique_ptr<Classifier> tta = WithFlipTta(std::move(*inner));
  EXPECT_TRUE(tta->has_heatmaps());
  const std::vector<cv::Mat> crops = RandomCrops(3, 48, 4);
  std::vector<cv::Mat> mirrors;
  for (const cv::Mat& c : crops) {
    cv::Mat f;
    cv::flip(c, f, 1);
    mirrors.push_back(f);
  }
  std::vector<float> s;
  std::vector<cv::Mat> a, b, t;
  ASSERT_TRUE((*plain)->ClassifyWithHeatmaps(crops, &s, &a).ok());
  ASSERT_TRUE((*plain)->ClassifyWithHeatmaps(mirrors, &s, &b).ok());
  ASSERT_TRUE(tta->ClassifyWithHeatmaps(crops, &s, &t).ok());
  ASSERT_EQ(t.size(), crops.size());
  for (size_t i = 0; i < crops.size(); ++i) {
    cv::Mat back;
    cv::flip(b[i], back, 1);
    cv::Mat want = 0.5 * (a[i] + back);
    EXPECT_LT(cv::norm(t[i], want, cv::NORM_INF), 1e-5) << i;
    EXPECT_GT(cv::norm(a[i], back, cv::NORM_INF), 1e-4) << "mirror-symmetric maps: the test proves nothing";
  }
}

TEST(ClassifierHeatmapTest, AModelWithoutTheOutputHasNoHeatmaps) {
  const std::string path = MakeConvModel("noheat", 48, 5);
  auto cls = CreateClassifier({.model_path = path, .threads = 1, .max_batch = 8});
  ASSERT_TRUE(cls.ok());
  EXPECT_FALSE((*cls)->has_heatmaps());
  std::vector<float> s;
  std::vector<cv::Mat> maps;
  ASSERT_TRUE((*cls)->ClassifyWithHeatmaps(RandomCrops(2, 48, 1), &s, &maps).ok());
  ASSERT_EQ(maps.size(), 2u);
  EXPECT_TRUE(maps[0].empty() && maps[1].empty());
  EXPECT_FALSE(WithFlipTta(std::move(*cls))->has_heatmaps());
}

// face_score "mask_max": a face's logit is that of its heatmap's largest cell, then calibrated like
// any logit; the config can override the metadata's rule and drop the calibration (to fit one).
TEST(ClassifierHeatmapTest, MaskMaxScoresAFaceByItsHeatmapsLargestCell) {
  const std::string path = MakeConvModel("heat-max", 48, 11, /*heatmap=*/true);
  const std::vector<cv::Mat> crops = RandomCrops(6, 48, 3);
  std::vector<float> logit_scores, s;
  std::vector<cv::Mat> maps;
  {
    auto plain = CreateClassifier({.model_path = path, .threads = 1, .max_batch = 4});
    ASSERT_TRUE(plain.ok()) << plain.status().ToString();
    ASSERT_TRUE((*plain)->ClassifyWithHeatmaps(crops, &logit_scores, &maps).ok());
  }
  // Written into the metadata, with a Platt calibration.
  ModelMetadata meta;
  meta.name = "heat-max";
  meta.input_size = 48;
  meta.face_score = FaceScore::kMaskMax;
  meta.calibration_method = "platt";
  meta.calib_a = 0.7f;
  meta.calib_b = 0.3f;
  std::ofstream(MetadataPathFor(path)) << ModelMetadataToJson(meta);
  auto cls = CreateClassifier({.model_path = path, .threads = 1, .max_batch = 4});
  ASSERT_TRUE(cls.ok()) << cls.status().ToString();
  EXPECT_EQ((*cls)->metadata().face_score, FaceScore::kMaskMax);
  ASSERT_TRUE((*cls)->Classify(crops, &s).ok());
  ASSERT_EQ(s.size(), crops.size());
  bool differs = false;
  for (size_t i = 0; i < crops.size(); ++i) {
    double hi = 0;
    cv::minMaxLoc(maps[i], nullptr, &hi);
    const double z = std::log(hi / (1 - hi));
    EXPECT_NEAR(s[i], Sigmoid(0.7 * z + 0.3), 1e-5) << i;
    EXPECT_NEAR(MaskMaxLogit(maps[i].ptr<float>(), maps[i].total()), z, 1e-4);
    differs = differs || std::abs(s[i] - logit_scores[i]) > 1e-3;
  }
  EXPECT_TRUE(differs) << "the mask rule scored like the logit: the test proves nothing";
  // Overrides: back to the logit, and no calibration.
  auto as_logit = CreateClassifier({.model_path = path, .threads = 1, .face_score = "logit", .calibrated = false});
  ASSERT_TRUE(as_logit.ok());
  ASSERT_TRUE((*as_logit)->Classify(crops, &s).ok());
  // MakeConvModel's metadata has no calibration: the same scores.
  for (size_t i = 0; i < crops.size(); ++i) EXPECT_NEAR(s[i], logit_scores[i], 1e-6) << i;
  auto raw = CreateClassifier({.model_path = path, .threads = 1, .calibrated = false});
  ASSERT_TRUE(raw.ok());
  ASSERT_TRUE((*raw)->Classify(crops, &s).ok());
  double hi0 = 0;
  cv::minMaxLoc(maps[0], nullptr, &hi0);
  EXPECT_NEAR(s[0], hi0, 1e-5);  // sigmoid(logit(max)) = max
  EXPECT_EQ(CreateClassifier({.model_path = path, .face_score = "mean"}).status().code(), Code::kInvalidArgument);
  // Extremes are clamped, never infinite.
  const float zeros[4] = {0, 0, 0, 0}, ones[2] = {1, 0.5f};
  EXPECT_NEAR(MaskMaxLogit(zeros, 4), std::log(1e-7 / (1 - 1e-7)), 1e-2);
  EXPECT_TRUE(std::isfinite(MaskMaxLogit(ones, 2)));
}

TEST(ClassifierHeatmapTest, MaskMaxNeedsTheHeatmapOutput) {
  const std::string path = MakeConvModel("noheat-max", 48, 5);
  auto cls = CreateClassifier({.model_path = path, .face_score = "mask_max"});
  ASSERT_FALSE(cls.ok());
  EXPECT_EQ(cls.status().code(), Code::kInvalidModel);
  EXPECT_NE(cls.status().message().find("mask"), std::string::npos) << cls.status().message();
  // An unknown rule in the metadata is a bad model file.
  std::ofstream(MetadataPathFor(path)) << R"({"input_size": 48, "face_score": "median"})";
  auto bad = CreateClassifier({.model_path = path});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidModel);
  EXPECT_NE(bad.status().message().find("median"), std::string::npos);
}

TEST(ClassifierTest, CalibrationIsApplied) {
  ModelMetadata meta;
  meta.mean = {0, 0, 0};
  meta.std = {1, 1, 1};
  meta.calibration_method = "platt";
  meta.calib_a = 0.5f;
  meta.calib_b = -1.0f;
  std::string path = MakeModel(TempDir(), "platt", 16, {1, 0, 0}, 0, meta);
  auto cls = CreateClassifier({.model_path = path});
  ASSERT_TRUE(cls.ok());
  std::vector<float> s;
  ASSERT_TRUE((*cls)->Classify({cv::Mat(16, 16, CV_8UC3, cv::Scalar(0, 0, 255))}, &s).ok());
  EXPECT_NEAR(s[0], Sigmoid(0.5 * 1.0 - 1.0), 1e-5);  // logit = mean R = 1
}

TEST(ClassifierErrorsTest, WrongInputShapeIsRejectedAtLoad) {
  std::string path = MakeModel(TempDir(), "small", 64, {1, 1, 1}, 0, {}, /*metadata_size=*/224);
  auto cls = CreateClassifier({.model_path = path});
  ASSERT_FALSE(cls.ok());
  EXPECT_EQ(cls.status().code(), Code::kInvalidModel);
  EXPECT_NE(cls.status().message().find("[-1,3,64,64]"), std::string::npos) << cls.status().message();
}

TEST(ClassifierErrorsTest, UnreadableOrMissingModelOrMetadata) {
  std::string dir = TempDir();
  EXPECT_EQ(CreateClassifier({.model_path = dir + "/none.onnx"}).status().code(), Code::kInvalidModel);
  std::ofstream(dir + "/junk.onnx") << "not a protobuf";
  std::ofstream(dir + "/junk.json") << ModelMetadataToJson({});
  auto junk = CreateClassifier({.model_path = dir + "/junk.onnx"});
  EXPECT_EQ(junk.status().code(), Code::kInvalidModel);
  ASSERT_TRUE(WriteMeanColourModel(dir + "/nometa.onnx", 16, {1, 1, 1}, 0).ok());
  auto nometa = CreateClassifier({.model_path = dir + "/nometa.onnx"});
  EXPECT_EQ(nometa.status().code(), Code::kInvalidModel);
  EXPECT_NE(nometa.status().message().find("metadata"), std::string::npos);
  std::ofstream(dir + "/badmeta.onnx") << "x";
  std::ofstream(dir + "/badmeta.json") << "{\"input_size\": \"big\"}";
  EXPECT_EQ(LoadModelMetadata(dir + "/badmeta.onnx").status().code(), Code::kInvalidModel);
  EXPECT_EQ(CreateClassifier({.model_path = dir + "/junk.onnx", .backend = "tensorflow"}).status().code(),
            Code::kNotSupported);
}

TEST(ClassifierErrorsTest, WrongSizedCropIsAnError) {
  std::string path = MakeModel(TempDir(), "m", 16, {1, 1, 1}, 0);
  auto cls = CreateClassifier({.model_path = path});
  ASSERT_TRUE(cls.ok());
  std::vector<float> s;
  EXPECT_EQ((*cls)->Classify({cv::Mat(8, 8, CV_8UC3)}, &s).code(), Code::kInvalidArgument);
}

TEST(ModelMetadataTest, RoundTrip) {
  ModelMetadata m;
  m.name = "x";
  m.input_size = 160;
  m.output = OutputKind::kSoftmax2;
  m.fake_index = 0;
  m.threshold = 0.42f;
  m.trained = false;
  m.face_score = FaceScore::kMaskMax;
  std::string path = TempDir() + "/rt.onnx";
  std::ofstream(MetadataPathFor(path)) << ModelMetadataToJson(m);
  auto back = LoadModelMetadata(path);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->name, "x");
  EXPECT_EQ(back->input_size, 160);
  EXPECT_EQ(back->output, OutputKind::kSoftmax2);
  EXPECT_EQ(back->fake_index, 0);
  EXPECT_FLOAT_EQ(back->threshold, 0.42f);
  EXPECT_FALSE(back->trained);
  EXPECT_EQ(back->face_score, FaceScore::kMaskMax);
  // Metadata written before the key existed scores by the logit.
  auto old = ParseModelMetadata(R"({"input_size": 64})", "old.json");
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->face_score, FaceScore::kLogit);
}

TEST(ModelMetadataTest, EditMetadataJsonKeepsOtherKeysAndWritesNothingOnError) {
  const std::string dir = TempDir();
  const std::string a = dir + "/a.onnx", b = dir + "/b.onnx";
  std::ofstream(MetadataPathFor(a)) << R"({"input_size": 64, "threshold": 0.5, "someone_elses": [1, 2]})";
  ASSERT_TRUE(EditMetadataJson(a, a, [](nlohmann::json& j) {
                j["threshold"] = 0.75;
                return Status::Ok();
              }).ok());
  auto read = [](const std::string& onnx) {
    std::ifstream in(MetadataPathFor(onnx));
    return nlohmann::json::parse(in, nullptr, false);
  };
  nlohmann::json j = read(a);
  EXPECT_DOUBLE_EQ(j["threshold"].get<double>(), 0.75);
  EXPECT_EQ(j["someone_elses"], nlohmann::json::array({1, 2}));
  auto meta = LoadModelMetadata(a);
  ASSERT_TRUE(meta.ok());
  EXPECT_FLOAT_EQ(meta->threshold, 0.75f);
  // To another model: the source is untouched.
  ASSERT_TRUE(EditMetadataJson(a, b, [](nlohmann::json& j) {
                j["name"] = "copy";
                return Status::Ok();
              }).ok());
  EXPECT_EQ(read(b)["name"], "copy");
  EXPECT_FALSE(read(a).contains("name"));
  // An edit that fails leaves the file as it was, with no temporary beside it.
  Status failed = EditMetadataJson(a, a, [](nlohmann::json& j) {
    j["threshold"] = 0.1;
    return Status::InvalidArgument("no");
  });
  EXPECT_EQ(failed.code(), Code::kInvalidArgument);
  EXPECT_DOUBLE_EQ(read(a)["threshold"].get<double>(), 0.75);
  EXPECT_FALSE(std::ifstream(MetadataPathFor(a) + ".tmp").good());
  // A source that is missing or not an object is refused.
  EXPECT_EQ(EditMetadataJson(dir + "/none.onnx", b, [](nlohmann::json&) { return Status::Ok(); }).code(),
            Code::kInvalidModel);
  std::ofstream(MetadataPathFor(a)) << "[1, 2]";
  EXPECT_EQ(EditMetadataJson(a, a, [](nlohmann::json&) { return Status::Ok(); }).code(), Code::kInvalidModel);
}

}  // namespace
}  // namespace deepscan::infer
