// INT8 QDQ export (compress/quantize.h) on small generated models: the range helpers, the
// written graph (integer kernels chosen by ONNX Runtime, the same inputs and outputs, outputs close
// to float, ORT's fused integer kernels equal to exact fake quantisation), mixed precision, the
// detector disagreement measure, the kernel profile reader, and bad input (nothing written).
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "compress/calibration_data.h"
#include "compress/fp16.h"
#include "compress/pad_channels.h"
#include "compress/quantize.h"
#include "infer/model_metadata.h"
#include "infer/onnx_graph.h"
#include "infer/ort_model.h"
#include "infer/ort_profile.h"
#include "test_env.h"

namespace deepscan::compress {
namespace {

namespace fs = std::filesystem;

constexpr int kSide = 32;

std::vector<CalibrationSample> RandomSamples(int n, uint32_t seed, int side = kSide) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<CalibrationSample> out(n);
  for (auto& s : out) {
    s.shape = {1, 3, side, side};
    s.data.resize(3 * side * side);
    for (float& v : s.data) v = normal(rng);
  }
  return out;
}

struct Outputs {
  std::vector<std::vector<float>> outputs;
  std::vector<std::vector<int64_t>> shapes;
};

Outputs RunModel(const std::string& path, const CalibrationSample& s, bool optimize = true) {
  infer::OrtModelOptions o;
  o.optimize = optimize;
  auto m = infer::OrtModel::Load(path, o);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  Outputs r;
  if (m.ok()) EXPECT_TRUE((*m)->Run(s.data.data(), s.shape, &r.outputs, &r.shapes).ok());
  return r;
}

class QuantizeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = deepscan::testing::TempDir();
    model_ = dir_ + "/conv.onnx";
    ASSERT_TRUE(infer::WriteRandomConvModel(model_, kSide, 7, /*heatmap=*/true).ok());
  }
  std::string dir_, model_;
};

TEST(QuantizeHelpers, Uint8ParamsCoverTheRangeAndZero) {
  QParams relu = Uint8Params(0.0f, 6.0f);
  EXPECT_EQ(relu.zero_point, 0);  // ORT's Relu/Clip fusion needs it
  EXPECT_NEAR(relu.scale, 6.0f / 255, 1e-7);
  QParams mixed = Uint8Params(-1.0f, 3.0f);
  EXPECT_NEAR(mixed.scale, 4.0f / 255, 1e-7);
  EXPECT_EQ(mixed.zero_point, 64);  // round(1 / (4/255))
  QParams positive = Uint8Params(2.0f, 4.0f);  // widened down to 0
  EXPECT_EQ(positive.zero_point, 0);
  EXPECT_NEAR(positive.scale, 4.0f / 255, 1e-7);
  QParams zero = Uint8Params(0.0f, 0.0f);
  EXPECT_EQ(zero.scale, 1.0f);
  EXPECT_EQ(zero.zero_point, 0);
}

TEST(QuantizeHelpers, ThresholdsFromHistograms) {
  std::vector<double> uniform(1000, 1.0);
  EXPECT_DOUBLE_EQ(ThresholdFromHistogram(uniform, 10.0, CalibrationMethod::kMinMax, 99, 256), 10.0);
  EXPECT_NEAR(ThresholdFromHistogram(uniform, 10.0, CalibrationMethod::kPercentile, 50, 256), 5.0, 0.011);
  EXPECT_NEAR(ThresholdFromHistogram(uniform, 10.0, CalibrationMethod::kPercentile, 100, 256), 10.0, 1e-9);
  // A narrow bulk and one far outlier: entropy clips the outlier, keeps the bulk.
  std::vector<double> bulk(2048, 0.0);
  for (int i = 0; i < 200; ++i) bulk[i] = 1000.0 * std::exp(-i / 40.0);
  bulk[2047] = 1;
  const double t = ThresholdFromHistogram(bulk, 100.0, CalibrationMethod::kEntropy, 0, 128);
  EXPECT_LT(t, 50.0);
  EXPECT_GT(t, 100.0 * 128 / 2048 - 1e-9);  // never under `levels` bins
  EXPECT_TRUE(ParseCalibrationMethod("entropy").ok());
  EXPECT_EQ(ParseCalibrationMethod("kl").status().code(), Code::kInvalidArgument);
}

TEST_F(QuantizeTest, WritesAnInt8ModelThatOrtRunsWithIntegerKernels) {
  const std::string out = dir_ + "/conv-int8.onnx";
  auto samples = RandomSamples(32, 1);
  auto rep = QuantizeStatic(model_, out, samples, {});
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(rep->samples, 32);
  EXPECT_EQ(rep->quantized_nodes, 4);  // conv, conv, mask conv, global average pool
  EXPECT_EQ(rep->weight_tensors, 3);
  ASSERT_EQ(rep->float_nodes.size(), 1u);  // the final Gemm (an output layer)
  EXPECT_NE(rep->float_nodes[0].find("output layer"), std::string::npos);
  auto ops = OptimizedOpCounts(out);
  ASSERT_TRUE(ops.ok()) << ops.status().ToString();
  EXPECT_EQ(ops->count("com.microsoft:QLinearConv") ? ops->at("com.microsoft:QLinearConv") : 0, 3);
  EXPECT_EQ(ops->count(":Conv") + ops->count("com.microsoft.nchwc:Conv"), 0u) << "a float convolution is left";
  auto float_ops = OptimizedOpCounts(model_);
  ASSERT_TRUE(float_ops.ok());
  EXPECT_EQ(float_ops->count("com.microsoft:QLinearConv"), 0u);

  // Same inputs and outputs, close to float; ORT's fused integer kernels equal exact fake
  // quantisation (the graph without ORT's fusions) to within an output step.
  auto held_out = RandomSamples(8, 2);
  double worst = 0, worst_emulated = 0;
  for (const auto& s : held_out) {
    Outputs f = RunModel(model_, s), q = RunModel(out, s), e = RunModel(out, s, /*optimize=*/false);
    ASSERT_EQ(f.outputs.size(), 2u);
    ASSERT_EQ(q.outputs.size(), 2u);
    EXPECT_EQ(q.shapes, f.shapes);
    for (size_t k = 0; k < 2; ++k) {
      for (size_t i = 0; i < f.outputs[k].size(); ++i) {
        worst = std::max(worst, static_cast<double>(std::fabs(f.outputs[k][i] - q.outputs[k][i])));
        worst_emulated = std::max(worst_emulated, static_cast<double>(std::fabs(e.outputs[k][i] - q.outputs[k][i])));
      }
    }
  }
  std::printf("int8 vs float: max |diff| %.4g; fused vs emulated %.4g; %lld -> %lld bytes\n", worst, worst_emulated,
              static_cast<long long>(rep->bytes_in), static_cast<long long>(rep->bytes_out));
  EXPECT_LT(worst, 0.1);
  EXPECT_LT(worst_emulated, 0.02);
  EXPECT_LT(rep->error, 0.05);
  ASSERT_EQ(rep->outputs.size(), 2u);
  EXPECT_EQ(rep->outputs[0].name, "logit");
  EXPECT_EQ(rep->outputs[1].name, "mask");
}

TEST_F(QuantizeTest, KeepsOperatorsFloatOnRequestAndBySensitivity) {
  const std::string out = dir_ + "/mixed.onnx";
  QuantizeOptions o;
  o.keep_float = {"mask_logit"};  // the mask head's convolution (its output's name)
  auto rep = QuantizeStatic(model_, out, RandomSamples(16, 3), o);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  int asked = 0;
  for (const auto& f : rep->float_nodes) asked += f.find("kept float as asked") != std::string::npos;
  EXPECT_EQ(asked, 1);
  EXPECT_EQ(rep->quantized_nodes, 3);

  QuantizeOptions s;
  s.max_float_layers = 1;
  s.target_error = 0;  // unreachable: the search keeps exactly one operator float
  auto searched = QuantizeStatic(model_, out, RandomSamples(16, 3), s);
  ASSERT_TRUE(searched.ok()) << searched.status().ToString();
  EXPECT_EQ(searched->float_layers, 1);
  EXPECT_EQ(searched->quantized_nodes, 3);
  ASSERT_EQ(searched->sensitivity.size(), 4u);
  EXPECT_GE(searched->sensitivity[0].error, searched->sensitivity[3].error);
  EXPECT_LE(searched->error, searched->error_all_int8 + 1e-9);
}

TEST_F(QuantizeTest, BadInputFailsClearlyAndWritesNothing) {
  const std::string out = dir_ + "/never.onnx";
  EXPECT_EQ(QuantizeStatic(model_, out, {}, {}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(QuantizeStatic(model_, out, RandomSamples(2, 4, kSide + 8), {}).status().code(), Code::kInvalidModel)
      << "a sample that does not fit the input";
  QuantizeOptions bad;
  bad.percentile = 0;
  EXPECT_EQ(QuantizeStatic(model_, out, RandomSamples(2, 4), bad).status().code(), Code::kInvalidArgument);
  std::ofstream(dir_ + "/junk.onnx") << "not a model";
  EXPECT_EQ(QuantizeStatic(dir_ + "/junk.onnx", out, RandomSamples(2, 4), {}).status().code(), Code::kInvalidModel);
  EXPECT_EQ(QuantizeStatic(dir_ + "/absent.onnx", out, RandomSamples(2, 4), {}).status().code(), Code::kInvalidModel);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  // An INT8 model is not quantised twice.
  const std::string once = dir_ + "/once.onnx";
  ASSERT_TRUE(QuantizeStatic(model_, once, RandomSamples(4, 5), {}).ok());
  EXPECT_EQ(QuantizeStatic(once, out, RandomSamples(4, 5), {}).status().code(), Code::kInvalidModel);
  EXPECT_FALSE(fs::exists(out));
}

// A BlazeFace-shaped graph: 12-channel blocks (depthwise, pointwise, residual Add, Relu), a
// max-pooled shortcut widened by a Concat of zeros to 18 channels, a stride-2 depthwise branch,
// and a 2-channel head. Channel counts that are not multiples of 16 everywhere.
Status WriteBlazeLikeModel(const std::string& path) {
  std::mt19937 rng(3);
  auto randn = [&](size_t n, float scale) {
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    return v;
  };
  infer::OnnxGraph g;
  g.AddInput("input", {1, 3, 16, 16});
  auto conv = [&](const std::string& in, const std::string& out, int cin, int cout, int k, int stride, int group) {
    const int pad = k / 2;
    g.AddInitializer(out + ".w", {cout, cin / group, k, k}, randn(static_cast<size_t>(cout) * cin / group * k * k, 0.3f));
    g.AddInitializer(out + ".b", {cout}, randn(cout, 0.1f));
    g.AddNode("Conv", {in, out + ".w", out + ".b"}, {out},
              {{.name = "kernel_shape", .ints = {k, k}},
               {.name = "strides", .ints = {stride, stride}},
               {.name = "pads", .ints = {pad, pad, pad, pad}},
               {.name = "group", .ints = {group}, .scalar = true}});
  };
  conv("input", "c0", 3, 12, 3, 1, 1);
  g.AddNode("Relu", {"c0"}, {"r0"});
  conv("r0", "dw1", 12, 12, 3, 1, 12);
  conv("dw1", "pw1", 12, 12, 1, 1, 1);
  g.AddNode("Add", {"r0", "pw1"}, {"a1"});
  g.AddNode("Relu", {"a1"}, {"r1"});
  g.AddNode("MaxPool", {"r1"}, {"mp"}, {{.name = "kernel_shape", .ints = {2, 2}}, {.name = "strides", .ints = {2, 2}}});
  g.AddInt64Initializer("zeros_shape", {1, 6, 8, 8});
  g.AddNode("ConstantOfShape", {"zeros_shape"}, {"zeros"});
  g.AddNode("Concat", {"mp", "zeros"}, {"short"}, {{.name = "axis", .ints = {1}, .scalar = true}});
  conv("r1", "dw2", 12, 12, 3, 2, 12);
  conv("dw2", "pw2", 12, 18, 1, 1, 1);
  g.AddNode("Add", {"short", "pw2"}, {"a2"});
  g.AddNode("Relu", {"a2"}, {"r2"});
  conv("r2", "head", 18, 2, 1, 1, 1);
  g.AddOutput("head", {1, 2, 8, 8});
  return g.Save(path);
}

TEST(PadChannelsTest, WidensToMultiplesWithTheSameOutputs) {
  const std::string dir = deepscan::testing::TempDir();
  const std::string in = dir + "/blaze.onnx", out = dir + "/blaze-padded.onnx";
  ASSERT_TRUE(WriteBlazeLikeModel(in).ok());
  auto rep = PadChannels(in, out, 16);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  // c0, r0, dw1, pw1, a1, r1, mp, short, dw2, pw2, a2, r2: every map except the head output.
  EXPECT_EQ(rep->tensors_padded, 12);
  EXPECT_EQ(rep->convs_changed, 6);
  auto samples = RandomSamples(4, 9, 16);
  for (const auto& s : samples) {
    Outputs a = RunModel(in, s), b = RunModel(out, s);
    ASSERT_EQ(a.outputs.size(), 1u);
    ASSERT_EQ(b.shapes, a.shapes);
    for (size_t i = 0; i < a.outputs[0].size(); ++i) EXPECT_NEAR(a.outputs[0][i], b.outputs[0][i], 1e-4);
  }
  // Quantised with padding: the same function, integer kernels throughout.
  QuantizeOptions o;
  o.pad_channels = 16;
  auto q = QuantizeStatic(in, dir + "/blaze-int8.onnx", RandomSamples(16, 10, 16), o);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->tensors_padded, 12);
  EXPECT_LT(q->error, 0.1);
  // Already multiples: nothing to do.
  auto again = PadChannels(out, dir + "/twice.onnx", 16);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->tensors_padded, 0);
  EXPECT_EQ(PadChannels(in, out, 1).status().code(), Code::kInvalidArgument);
  // The FP16 copy of this graph (ConstantOfShape without a value: a float zero by default) runs.
  const std::string half = dir + "/blaze-fp16.onnx";
  ASSERT_TRUE(ConvertToFp16(in, half).ok());
  Outputs f = RunModel(in, samples[0]), h = RunModel(half, samples[0]);
  ASSERT_EQ(h.outputs.size(), 1u);
  for (size_t i = 0; i < f.outputs[0].size(); ++i) EXPECT_NEAR(f.outputs[0][i], h.outputs[0][i], 0.02);
  EXPECT_EQ(PadChannels(dir + "/absent.onnx", out, 16).status().code(), Code::kInvalidModel);
}

TEST_F(QuantizeTest, Fp16CopyKeepsTheInterfaceAndTheOutputs) {
  const std::string out = dir_ + "/conv-fp16.onnx";
  auto rep = ConvertToFp16(model_, out);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(rep->initializers, 8);  // weights and biases of the 3 convolutions and the Gemm
  EXPECT_EQ(rep->clamped, 0);
  EXPECT_LT(rep->bytes_out, rep->bytes_in * 6 / 10);
  for (const auto& s : RandomSamples(4, 11)) {
    Outputs f = RunModel(model_, s), h = RunModel(out, s);  // ORT on the CPU casts where it has no half kernel
    ASSERT_EQ(h.shapes, f.shapes);
    for (size_t k = 0; k < f.outputs.size(); ++k)
      for (size_t i = 0; i < f.outputs[k].size(); ++i) EXPECT_NEAR(f.outputs[k][i], h.outputs[k][i], 0.01);
  }
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  EXPECT_EQ(ConvertToFp16(dir_ + "/absent.onnx", out).status().code(), Code::kInvalidModel);
}

TEST(DetectorOutputErrorTest, ComparesDecodedFaces) {
  // BlazeFace-shaped outputs: scores [1,512,1], [1,384,1], regressors [1,512,16], [1,384,16].
  const std::vector<std::vector<int64_t>> shapes = {{1, 512, 1}, {1, 384, 1}, {1, 512, 16}, {1, 384, 16}};
  auto outputs = [](std::vector<int> faces) {
    std::vector<std::vector<float>> o = {std::vector<float>(512, -10.0f), std::vector<float>(384, -10.0f),
                                         std::vector<float>(512 * 16, 0.0f), std::vector<float>(384 * 16, 0.0f)};
    for (int anchor : faces) {
      o[0][anchor] = 5.0f;
      o[2][anchor * 16 + 2] = 40.0f;  // w, h in input pixels
      o[2][anchor * 16 + 3] = 40.0f;
    }
    return o;
  };
  OutputError err = DetectorOutputError(256);
  const std::vector<std::vector<std::vector<float>>> one = {outputs({100})}, none = {outputs({})},
                                                     two = {outputs({100, 300})};
  EXPECT_DOUBLE_EQ(err(one, one, shapes), 0.0);
  EXPECT_DOUBLE_EQ(err(one, none, shapes), 1.0);  // the face is missed
  EXPECT_DOUBLE_EQ(err(one, two, shapes), 1.0);   // one false face added
}

TEST_F(QuantizeTest, ProfileNamesTheKernelsThatRan) {
  const std::string out = dir_ + "/profiled-int8.onnx";
  auto samples = RandomSamples(4, 6);
  ASSERT_TRUE(QuantizeStatic(model_, out, samples, {}).ok());
  infer::OrtModelOptions o;
  o.profile_prefix = dir_ + "/profile";
  auto m = infer::OrtModel::Load(out, o);
  ASSERT_TRUE(m.ok());
  Outputs r;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*m)->Run(samples[0].data.data(), samples[0].shape, &r.outputs, &r.shapes).ok());
  auto path = (*m)->EndProfiling();
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  auto kernels = infer::ReadKernelProfile(*path);
  ASSERT_TRUE(kernels.ok()) << kernels.status().ToString();
  ASSERT_TRUE(kernels->count("QLinearConv"));
  EXPECT_EQ(kernels->at("QLinearConv").runs, 3 * 3);  // 3 convolutions x 3 runs
  EXPECT_FALSE(kernels->count("Conv"));
  std::ofstream(dir_ + "/not-a-profile.json") << "{\"x\": 1}";
  EXPECT_EQ(infer::ReadKernelProfile(dir_ + "/not-a-profile.json").status().code(), Code::kCorruptInput);
  EXPECT_EQ(infer::ReadKernelProfile(dir_ + "/absent.json").status().code(), Code::kIoError);
}

TEST_F(QuantizeTest, VariantMetadataKeepsTheOriginalAndAddsTheRecipe) {
  infer::ModelMetadata m;
  m.name = "tiny";
  m.input_size = kSide;
  m.threshold = 0.7f;
  std::ofstream(infer::MetadataPathFor(model_)) << infer::ModelMetadataToJson(m);
  const std::string variant = dir_ + "/tiny-int8.onnx";
  ASSERT_TRUE(WriteVariantMetadata(model_, variant, "-int8", "quantization", R"({"calibration": "percentile"})").ok());
  auto read = infer::LoadModelMetadata(variant);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->name, "tiny-int8");
  EXPECT_FLOAT_EQ(read->threshold, 0.7f);
  std::ifstream in(infer::MetadataPathFor(variant));
  EXPECT_EQ(nlohmann::json::parse(in)["quantization"]["calibration"], "percentile");
  EXPECT_EQ(WriteVariantMetadata(dir_ + "/absent.onnx", variant, "-x", "k", "{}").code(), Code::kInvalidModel);
}

}  // namespace
}  // namespace deepscan::compress
