// Pretrained initialisation of the zoo's MobileNet v1 from a TF.js graph (train/tfjs_init.h):
// parity with TensorFlow.js itself on the real faceres weights (when scripts/setup.sh fetched
// them), round trips through graphs written from zoo models, the mismatches it must refuse, and
// the function-preserving BatchNorm recalibration.
#include "train/tfjs_init.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "infer/classifier.h"
#include "infer/model_metadata.h"
#include "infer/registry.h"
#include "test_env.h"
#include "tfjs_graph_writer.h"
#include "train/onnx_export.h"
#include "train/pair_batches.h"
#include "train/tfjs_model.h"

namespace deepscan::train {
namespace {

using deepscan::testing::GraphFromZoo;
using deepscan::testing::GraphVariant;
using deepscan::testing::TempDir;

Model Make(const ModelSpec& spec) {
  torch::manual_seed(7);
  auto m = MakeModel(spec);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return *m;
}

torch::Tensor Images(int n, int s, uint64_t seed) {
  torch::manual_seed(seed);
  return (torch::randn({n, 3, s, s}) * 0.8 + torch::randn({n, 3, 1, 1}) * 0.3).contiguous();
}

// Non-trivial BatchNorm parameters with running statistics from train-mode passes over images like
// the tests' (so that activations stay in ReLU6's working range instead of saturating); with
// `perturb`, the statistics are then moved off the images' own (as a pretrained network's are on
// new data).
void Randomise(Model& m, uint64_t seed, bool perturb = false) {
  const int s = m->spec().input_size;
  torch::manual_seed(seed);
  torch::NoGradGuard no_grad;
  std::vector<torch::nn::BatchNorm2dImpl*> bns;
  for (auto& mod : m->modules(false)) {
    if (auto* bn = mod->as<torch::nn::BatchNorm2dImpl>()) {
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.normal_(0.0, 0.2);
      bn->options.momentum(c10::nullopt);  // cumulative average
      bn->reset_running_stats();
      bns.push_back(bn);
    }
  }
  m->train();
  for (int i = 0; i < 3; ++i) m->forward(Images(8, s, seed * 10 + i));
  for (auto* bn : bns) {
    bn->options.momentum(0.01);
    if (perturb) {
      bn->running_mean.add_(torch::randn_like(bn->running_mean) * 0.5 * bn->running_var.sqrt());
      bn->running_var.mul_(torch::rand_like(bn->running_var) * 1.5 + 0.5);
    }
  }
  m->eval();
}

Result<TfjsModel> Parse(const testing::TfjsGraphFiles& g) {
  const std::string weights = g.weights;
  return ParseTfjsModel(
      g.model.dump(), [&](const std::string&) -> Result<std::string> { return weights; }, "test graph");
}

float MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<float>(); }

TEST(TfjsInitTest, RoundTripReproducesTheSourceModel) {
  for (const char* arch : {"mobilenetv1", "mobilenetv1_s16"}) {
    for (bool fused : {false, true}) {
      Model src = Make({.arch = arch, .input_size = 64});
      Randomise(src, 3);
      auto g = Parse(GraphFromZoo(src, {.fused = fused}));
      ASSERT_TRUE(g.ok()) << g.status().ToString();
      Model dst = Make({.arch = arch, .input_size = 64});
      auto rep = InitFromTfjs(dst, *g, PretrainedInput{});
      ASSERT_TRUE(rep.ok()) << rep.status().ToString();
      EXPECT_EQ(rep->layers_loaded, 1 + 2 * static_cast<int>(dst->blocks.size()));
      EXPECT_EQ(rep->layers_unused, 0);
      EXPECT_EQ(rep->features_node, "global_pooling/Mean");
      dst->eval();
      torch::NoGradGuard no_grad;
      const torch::Tensor x = Images(2, 64, 5);
      const torch::Tensor want = src->Features(x), got = dst->Features(x);
      EXPECT_GT(MaxAbsDiff(want[0], want[1]), 1e-2f) << "features that do not depend on the image prove little";
      EXPECT_LE(MaxAbsDiff(want, got), 1e-4f * std::max(1.0f, want.abs().max().item<float>()))
          << arch << (fused ? " fused" : "");
    }
  }
}

TEST(TfjsInitTest, BgrGraphsGetTheirStemReversed) {
  Model src = Make({.arch = "mobilenetv1_s16", .input_size = 64});
  Randomise(src, 4);
  auto g = Parse(GraphFromZoo(src, {.reverse_stem = true}));  // a graph that reads B, G, R
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  Model dst = Make({.arch = "mobilenetv1_s16", .input_size = 64});
  PretrainedInput bgr;
  bgr.bgr = true;
  ASSERT_TRUE(InitFromTfjs(dst, *g, bgr).ok());
  dst->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = Images(2, 64, 6);
  // dst reads RGB: the same as src on the same RGB image.
  EXPECT_LE(MaxAbsDiff(src->Features(x), dst->Features(x)), 1e-4f);
  // Without the reversal the images would differ (or the test would prove nothing).
  Model plain = Make({.arch = "mobilenetv1_s16", .input_size = 64});
  ASSERT_TRUE(InitFromTfjs(plain, *g, PretrainedInput{}).ok());
  plain->eval();
  EXPECT_GT(MaxAbsDiff(src->Features(x), plain->Features(x)), 1e-2f);
}

TEST(TfjsInitTest, TheTruncatedArchLeavesTheLastBlocksUnused) {
  Model full = Make({.arch = "mobilenetv1", .input_size = 64});
  Randomise(full, 8);
  auto g = Parse(GraphFromZoo(full));
  ASSERT_TRUE(g.ok());
  Model s16 = Make({.arch = "mobilenetv1_s16", .input_size = 64});
  auto rep = InitFromTfjs(s16, *g, PretrainedInput{});
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(rep->layers_loaded, 23);
  EXPECT_EQ(rep->layers_unused, 4);
  EXPECT_EQ(rep->last_node, "layer22/max");
  EXPECT_EQ(rep->features_node, "");
  // The opposite does not fit: the graph of an s16 model has too few layers for the full arch.
  Model small = Make({.arch = "mobilenetv1_s16", .input_size = 64});
  auto g16 = Parse(GraphFromZoo(small));
  ASSERT_TRUE(g16.ok());
  Model big = Make({.arch = "mobilenetv1", .input_size = 64});
  auto st = InitFromTfjs(big, *g16, PretrainedInput{}).status();
  EXPECT_EQ(st.code(), Code::kInvalidModel);
  EXPECT_NE(st.message().find("23 convolution layers"), std::string::npos) << st.ToString();
}

TEST(TfjsInitTest, MismatchesAreRefused) {
  Model src = Make({.arch = "mobilenetv1_s16", .input_size = 64});
  auto expect_refused = [&](const GraphVariant& v, const std::string& needle) {
    auto g = Parse(GraphFromZoo(src, v));
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    Model dst = Make({.arch = "mobilenetv1_s16", .input_size = 64});
    Status st = InitFromTfjs(dst, *g, PretrainedInput{}).status();
    EXPECT_EQ(st.code(), Code::kInvalidModel) << needle;
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.ToString();
  };
  expect_refused({.plain_relu = true}, "ReLU6");
  expect_refused({.valid_padding = true}, "VALID");
  expect_refused({.wrong_stride_layer = 3}, "layer3/conv");

  auto g = Parse(GraphFromZoo(src));
  ASSERT_TRUE(g.ok());
  Model narrow = Make({.arch = "mobilenetv1_s16", .width = 0.5f, .input_size = 64});
  Status st = InitFromTfjs(narrow, *g, PretrainedInput{}).status();
  EXPECT_EQ(st.code(), Code::kInvalidModel);
  EXPECT_NE(st.message().find("width"), std::string::npos) << st.ToString();
  Model v3 = Make({.arch = "mobilenetv3_small", .input_size = 64});
  EXPECT_EQ(InitFromTfjs(v3, *g, PretrainedInput{}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(KnownPretrainedInput(*g).status().code(), Code::kNotSupported);
}

TEST(RecalibrateBatchNormTest, KeepsTheFunctionAndMatchesTrainMode) {
  Model m = Make({.arch = "mobilenetv1_s16", .input_size = 64, .mask_head = true});
  Randomise(m, 9, /*perturb=*/true);
  for (auto& mod : m->modules(false)) {  // train-mode passes below must leave the statistics alone
    if (auto* bn = mod->as<torch::nn::BatchNorm2dImpl>()) bn->options.momentum(0.0);
  }
  const torch::Tensor x = Images(8, 64, 10);
  torch::NoGradGuard no_grad;
  m->eval();
  const torch::Tensor before = m->Features(x);
  const torch::Tensor mask_before = m->forward(x).mask_logit;
  m->train();
  const torch::Tensor train_before = m->Features(x);
  // With the random statistics, train mode (batch statistics) computes something else.
  EXPECT_GT(MaxAbsDiff(train_before, before), 0.05f * before.abs().max().item<float>());

  ASSERT_TRUE(RecalibrateBatchNorm(m, {x.slice(0, 0, 4), x.slice(0, 4, 8)}).ok());
  EXPECT_TRUE(m->is_training()) << "the train/eval flag is kept";
  m->eval();
  const float scale = std::max(1.0f, before.abs().max().item<float>());
  EXPECT_LE(MaxAbsDiff(m->Features(x), before), 1e-4f * scale);
  EXPECT_LE(MaxAbsDiff(m->forward(x).mask_logit, mask_before),
            1e-4f * std::max(1.0f, mask_before.abs().max().item<float>()));
  // The stem's running mean is the mean of its convolution over the images.
  const torch::Tensor z =
      m->stem->conv(torch::nn::functional::pad(x, torch::nn::functional::PadFuncOptions({0, 1, 0, 1})));
  EXPECT_LE(MaxAbsDiff(m->stem->bn->running_mean, z.mean({0, 2, 3})), 1e-4f);
  // Train mode on the calibration images now computes what eval mode does.
  m->train();
  EXPECT_LE(MaxAbsDiff(m->Features(x), before), 2e-3f * scale);
  EXPECT_EQ(RecalibrateBatchNorm(m, {}).code(), Code::kInvalidArgument);
}

// ---- the real faceres weights ----------------------------------------------------------------

std::string FaceresPath() { return deepscan::testing::SourceDir() + "/third_party/pretrained/faceres/faceres.json"; }

// scripts/make-faceres-fixture.mjs's Pixel(), the fixture's input recipe.
int Pixel(int k, int y, int x, int c) {
  if (k == 0) return (x + 2 * y + 40 * c + (((x >> 4) + (y >> 4)) % 2) * 48) % 256;
  return (((x * y) >> 5) + 37 * c + (((x * 7) ^ (y * 3)) & 63)) % 256;
}

// The two fixture images as OpenCV BGR crops (what the scan and the trainer hand to PackNchw).
std::vector<cv::Mat> FixtureCrops(int size) {
  std::vector<cv::Mat> crops;
  for (int k = 0; k < 2; ++k) {
    cv::Mat m(size, size, CV_8UC3);
    for (int y = 0; y < size; ++y) {
      for (int x = 0; x < size; ++x) {
        auto* p = m.ptr<uint8_t>(y, x);
        for (int c = 0; c < 3; ++c) p[2 - c] = static_cast<uint8_t>(Pixel(k, y, x, c));  // RGB -> BGR
      }
    }
    crops.push_back(m);
  }
  return crops;
}

TEST(FaceresTest, LibTorchReproducesTensorFlowJs) {
  const std::string path = FaceresPath();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " absent (scripts/setup.sh fetches it)";
  auto graph = LoadTfjsModel(path);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  auto input = KnownPretrainedInput(*graph);
  ASSERT_TRUE(input.ok()) << input.status().ToString();
  EXPECT_TRUE(input->bgr);
  EXPECT_EQ(input->native_size, 224);
  std::ifstream in(deepscan::testing::SourceDir() + "/tests/fixtures/faceres/reference.json");
  ASSERT_TRUE(in) << "tests/fixtures/faceres/reference.json missing";
  const nlohmann::json ref = nlohmann::json::parse(in);
  ASSERT_EQ(ref.at("size").get<int>(), 224);

  // The crops go through the project's own packing with the normalisation faceres was trained with.
  const torch::Tensor x = CropsToTensor(FixtureCrops(224), input->mean, input->std);
  struct Case {
    const char* arch;
    const char* key;
    const char* node;
  };
  for (const Case& c : {Case{"mobilenetv1", "global_pooling_mean", "global_pooling/Mean"},
                        Case{"mobilenetv1_s16", "conv_pw_11_mean", ""}}) {
    Model m = Make({.arch = c.arch, .input_size = 224});
    auto rep = InitFromTfjs(m, *graph, *input);
    ASSERT_TRUE(rep.ok()) << rep.status().ToString();
    EXPECT_EQ(rep->features_node, c.node);
    EXPECT_EQ(rep->layers_loaded, 1 + 2 * static_cast<int>(m->blocks.size()));
    m->eval();
    torch::Tensor got;
    {
      torch::NoGradGuard no_grad;
      got = m->Features(x);
    }
    const std::vector<std::vector<float>> want = ref.at(c.key).get<std::vector<std::vector<float>>>();
    ASSERT_EQ(want.size(), 2u);
    ASSERT_EQ(got.size(1), static_cast<int64_t>(want[0].size()));
    float max_diff = 0, max_ref = 0;
    int nonzero = 0;
    for (int k = 0; k < 2; ++k) {
      for (size_t j = 0; j < want[k].size(); ++j) {
        max_diff = std::max(max_diff, std::abs(got[k][static_cast<int64_t>(j)].item<float>() - want[k][j]));
        max_ref = std::max(max_ref, std::abs(want[k][j]));
        nonzero += want[k][j] > 0;
      }
    }
    std::printf("[faceres] %-16s %s: %d of %zu reference values > 0, max %.3f; max |LibTorch - TF.js| = %.2e\n", c.arch,
                c.key, nonzero, 2 * want[0].size(), max_ref, max_diff);
    EXPECT_GT(nonzero, 100) << "a reference of zeros proves little";
    EXPECT_LE(max_diff, 1e-3f) << c.arch;
  }
}

// The exported model carries faceres' normalisation: ONNX Runtime on BGR crops (PackNchw with the
// metadata) gives the logit LibTorch gives on the same crops.
TEST(FaceresTest, ExportedModelPacksCropsTheFaceresWay) {
  const std::string path = FaceresPath();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " absent (scripts/setup.sh fetches it)";
  auto graph = LoadTfjsModel(path);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  auto input = KnownPretrainedInput(*graph);
  ASSERT_TRUE(input.ok());
  Model m = Make({.arch = "mobilenetv1_s16", .input_size = 160});
  ASSERT_TRUE(InitFromTfjs(m, *graph, *input).ok());
  {
    torch::NoGradGuard no_grad;
    m->fc->weight.normal_(0.0, 0.2);  // a head that reads the features
  }
  m->eval();
  infer::ModelMetadata meta;
  meta.mean = input->mean;
  meta.std = input->std;
  const std::string onnx = TempDir() + "/faceres_s16.onnx";
  ASSERT_TRUE(ExportOnnx(m, meta, onnx).ok());
  auto loaded = infer::LoadModelMetadata(onnx);
  ASSERT_TRUE(loaded.ok());
  EXPECT_FLOAT_EQ(loaded->std[0], 1.0f / 255.0f);
  EXPECT_FLOAT_EQ(loaded->mean[2], 103.939f / 255.0f);
  auto cls = infer::CreateClassifier({.model_path = onnx, .threads = 1, .max_batch = 2});
  ASSERT_TRUE(cls.ok()) << cls.status().ToString();
  const std::vector<cv::Mat> crops = FixtureCrops(160);
  std::vector<float> scores;
  ASSERT_TRUE((*cls)->Classify(crops, &scores).ok());
  torch::Tensor logits;
  {
    torch::NoGradGuard no_grad;
    logits = m->forward(CropsToTensor(crops, input->mean, input->std)).logit;
  }
  for (int k = 0; k < 2; ++k) {
    EXPECT_NEAR(scores[k], infer::Calibrate(*loaded, logits[k][0].item<float>()), 1e-4) << k;
  }
  EXPECT_GT(std::abs(logits[0][0].item<float>() - logits[1][0].item<float>()), 1e-3f);
}

// Exported size and ONNX Runtime speed (2 threads, the shipping bound: <= 10 MB, <= 5 ms per face)
// of the MobileNet v1 archs against the default model's MobileNetV3-Small, measured in the same run
// (run with --gtest_also_run_disabled_tests; nothing is asserted, docs/training.md has figures).
TEST(FaceresTest, DISABLED_SizeAndSpeedReport) {
  const std::string dir = TempDir();
  for (int size : {128, 160}) {
    const std::vector<cv::Mat> crops = FixtureCrops(size);
    std::vector<cv::Mat> many;
    for (int i = 0; i < 16; ++i) many.push_back(crops[i % 2]);
    for (const char* arch : {"mobilenetv3_small", "mobilenetv1_s16", "mobilenetv1"}) {
      for (bool mask : {false, true}) {
        Model m = Make({.arch = arch, .input_size = size, .mask_head = mask});
        m->eval();
        const std::string onnx = dir + "/" + arch + "_" + std::to_string(size) + (mask ? "_mask" : "") + ".onnx";
        ASSERT_TRUE(ExportOnnx(m, {}, onnx).ok());
        const double mb = static_cast<double>(std::filesystem::file_size(onnx)) / 1e6;
        for (int batch : {1, 8}) {
          auto cls = infer::CreateClassifier({.model_path = onnx, .threads = 2, .max_batch = batch});
          ASSERT_TRUE(cls.ok()) << cls.status().ToString();
          std::vector<float> scores;
          ASSERT_TRUE((*cls)->Classify(many, &scores).ok());  // warm-up
          double best = 1e9;
          for (int r = 0; r < 5; ++r) {  // the fastest of 5 rounds: the machine is shared
            const auto t0 = std::chrono::steady_clock::now();
            ASSERT_TRUE((*cls)->Classify(many, &scores).ok());
            best = std::min(
                best,
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / many.size());
          }
          std::printf("[speed] %-18s %3d px %-5s %6.2f MB  batch %d: %.2f ms/face\n", arch, size, mask ? "mask" : "",
                      mb, batch, best);
        }
      }
    }
  }
}

}  // namespace
}  // namespace deepscan::train
