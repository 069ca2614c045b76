// Parity of the ONNX exporter (train/onnx_export.h): the exported model run by ONNX Runtime gives
// the logits LibTorch computes for the zoo model in eval mode, for every architecture, with
// non-trivial BatchNorm statistics (which the exporter folds into the convolutions).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "infer/classifier.h"
#include "infer/model_metadata.h"
#include "infer/ort_model.h"
#include "infer/registry.h"
#include "test_env.h"
#include "train/onnx_export.h"
#include "train/zoo.h"

namespace deepscan::train {
namespace {

using deepscan::testing::TempDir;

// A batch of `n` images whose brightness and contrast differ, as normalised floats.
torch::Tensor Images(int n, int s, uint64_t seed) {
  torch::manual_seed(seed);
  torch::Tensor base = torch::randn({n, 3, s, s});
  torch::Tensor scale = torch::rand({n, 1, 1, 1}) * 0.5 + 0.75;
  torch::Tensor shift = torch::randn({n, 3, 1, 1}) * 0.25;
  return (base * scale + shift).contiguous();
}

// Random BatchNorm affine parameters and running statistics taken from train-mode passes over
// random images like the test's (cumulative average), so that BN folding matters and activations
// stay well scaled (a random network fed images unlike its calibration ones can blow up to
// logits of 100+, where float rounding alone exceeds the tolerance); linear layers rescaled so
// that logits are O(1) and differ between images. The test checks this conditioning: LibTorch's
// float32 logits must agree with its float64 ones.
void RandomiseModel(Model& model, uint64_t seed) {
  const int s = model->spec().input_size;
  std::vector<torch::Tensor> calibration;
  for (int i = 0; i < 3; ++i) calibration.push_back(Images(8, s, seed * 100 + i));
  torch::manual_seed(seed);
  {
    torch::NoGradGuard no_grad;
    for (auto& m : model->modules(/*include_self=*/false)) {
      if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) {
        bn->weight.uniform_(0.5, 1.5);
        bn->bias.normal_(0.0, 0.2);
        bn->options.momentum(c10::nullopt);
        bn->reset_running_stats();
      }
    }
    // Residual branches at a modest gain, as in trained networks (and "zero-init" residual BN):
    // a random deep residual stack at full gain is chaotic, and its float32 logits then differ
    // from float64 ones by more than the tolerance, in LibTorch alone.
    for (auto& block : model->blocks) {
      if (block->residual) block->project->bn->weight.uniform_(0.2, 0.6);
    }
    for (torch::nn::Linear* l : {&model->pre_logits, &model->fc}) {
      if (*l) (*l)->weight.normal_(0.0, 2.0 / std::sqrt(static_cast<double>((*l)->weight.size(1))));
      if (*l) (*l)->bias.normal_(0.0, 0.1);
    }
    model->train();
    for (const auto& x : calibration) model->forward(x);
  }
  model->eval();
}

struct Case {
  const char* label;
  ModelSpec spec;
};

class ExportParityTest : public ::testing::TestWithParam<Case> {};

TEST_P(ExportParityTest, OnnxRuntimeMatchesLibTorch) {
  const Case& c = GetParam();
  torch::manual_seed(1234);  // the initial weights too: results must not depend on test order
  auto made = MakeModel(c.spec);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  Model model = *made;
  RandomiseModel(model, 17);
  // The statistics really are non-trivial: folding them wrongly would show.
  const auto& bn = model->blocks[1]->project->bn;
  EXPECT_GT((bn->running_var - 1).abs().max().item<float>(), 0.1f);
  EXPECT_GT(bn->running_mean.abs().max().item<float>(), 0.01f);

  const int s = c.spec.input_size;
  const std::string path = TempDir() + "/" + c.label + ".onnx";
  infer::ModelMetadata meta;
  meta.name = c.label;
  meta.mean = {0.5f, 0.4f, 0.3f};
  meta.std = {0.2f, 0.25f, 0.3f};
  ASSERT_TRUE(ExportOnnx(model, meta, path).ok());

  // The metadata beside it.
  auto loaded_meta = infer::LoadModelMetadata(path);
  ASSERT_TRUE(loaded_meta.ok()) << loaded_meta.status().ToString();
  EXPECT_EQ(loaded_meta->input_size, s);
  EXPECT_EQ(loaded_meta->output, infer::OutputKind::kLogit);
  EXPECT_FLOAT_EQ(loaded_meta->std[1], 0.25f);
  auto spec = ReadModelSpec(infer::MetadataPathFor(path));
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->arch, c.spec.arch);
  EXPECT_EQ(spec->width, c.spec.width);

  auto ort = infer::OrtModel::Load(path, {.threads = 1});
  ASSERT_TRUE(ort.ok()) << ort.status().ToString();
  ASSERT_EQ((*ort)->inputs().size(), 1u);
  EXPECT_EQ((*ort)->inputs()[0].name, "input");
  EXPECT_EQ((*ort)->inputs()[0].shape, (std::vector<int64_t>{-1, 3, s, s}));
  const bool mask_head = c.spec.mask_head;
  const int64_t ms = (s + c.spec.mask_stride - 1) / c.spec.mask_stride;
  ASSERT_EQ((*ort)->outputs().size(), mask_head ? 2u : 1u);  // the heatmap output exactly with a mask head
  EXPECT_EQ((*ort)->outputs()[0].name, "logit");
  EXPECT_EQ((*ort)->outputs()[0].shape, (std::vector<int64_t>{-1, 1}));
  if (mask_head) {
    EXPECT_EQ((*ort)->outputs()[1].name, "mask");
    EXPECT_EQ((*ort)->outputs()[1].shape, (std::vector<int64_t>{-1, 1, ms, ms}));
  }

  const int n = 4;
  torch::Tensor x = Images(n, s, 5);
  torch::Tensor expected, expected_mask;
  {
    torch::NoGradGuard no_grad;
    ModelOutput out = model->forward(x);
    expected = out.logit.contiguous();
    if (mask_head) expected_mask = torch::sigmoid(out.mask_logit).contiguous();
  }
  ASSERT_EQ(expected.sizes().vec(), (std::vector<int64_t>{n, 1}));
  // Logits must differ between images, or the comparison would prove little.
  EXPECT_GT((expected.max() - expected.min()).item<float>(), 0.05f);

  std::vector<std::vector<float>> outputs;
  std::vector<std::vector<int64_t>> shapes;
  ASSERT_TRUE((*ort)->Run(x.data_ptr<float>(), {n, 3, s, s}, &outputs, &shapes).ok());
  ASSERT_EQ(shapes[0], (std::vector<int64_t>{n, 1}));
  float max_diff = 0;
  for (int i = 0; i < n; ++i) max_diff = std::max(max_diff, std::abs(outputs[0][i] - expected[i][0].item<float>()));
  EXPECT_LE(max_diff, 1e-4f);
  if (mask_head) {  // the heatmap: sigmoid(mask logits), same shape and values
    ASSERT_EQ(shapes[1], (std::vector<int64_t>{n, 1, ms, ms}));
    ASSERT_EQ(expected_mask.numel(), static_cast<int64_t>(outputs[1].size()));
    const float* em = expected_mask.data_ptr<float>();
    float mask_diff = 0;
    for (size_t i = 0; i < outputs[1].size(); ++i) mask_diff = std::max(mask_diff, std::abs(outputs[1][i] - em[i]));
    EXPECT_LE(mask_diff, 1e-4f);
    EXPECT_GT((expected_mask.max() - expected_mask.min()).item<float>(), 1e-3f) << "a flat heatmap proves little";
  }
  std::printf("[parity] %-28s params %9lld  logits [%+.3f, %+.3f]  max |ORT - LibTorch| = %.2e\n", c.label,
              static_cast<long long>(CountParameters(*model)), expected.min().item<float>(),
              expected.max().item<float>(), max_diff);

  // Batch 1 gives the same logit as the same image inside a batch.
  torch::Tensor one = x[2].unsqueeze(0).contiguous();
  ASSERT_TRUE((*ort)->Run(one.data_ptr<float>(), {1, 3, s, s}, &outputs, &shapes).ok());
  ASSERT_EQ(outputs[0].size(), 1u);
  EXPECT_NEAR(outputs[0][0], expected[2][0].item<float>(), 1e-4);

  // Through the registry's classifier: 5 BGR crops in batches of 4 and 1.
  auto cls = infer::CreateClassifier({.model_path = path, .threads = 1, .max_batch = 4});
  ASSERT_TRUE(cls.ok()) << cls.status().ToString();
  cv::RNG rng(9);
  std::vector<cv::Mat> crops;
  for (int i = 0; i < 5; ++i) {
    cv::Mat m(s, s, CV_8UC3);
    rng.fill(m, cv::RNG::UNIFORM, 20 * i, 120 + 25 * i);
    crops.push_back(m);
  }
  std::vector<float> scores;
  ASSERT_TRUE((*cls)->Classify(crops, &scores).ok());
  std::vector<float> packed(static_cast<size_t>(crops.size()) * 3 * s * s);
  ASSERT_TRUE(infer::PackNchw(crops, 0, crops.size(), *loaded_meta, packed.data()).ok());
  torch::Tensor crop_logits;
  {
    torch::NoGradGuard no_grad;
    crop_logits = model->forward(torch::from_blob(packed.data(), {5, 3, s, s})).logit;
  }
  for (int i = 0; i < 5; ++i) {
    EXPECT_NEAR(scores[i], infer::Calibrate(*loaded_meta, crop_logits[i][0].item<float>()), 3e-5) << "crop " << i;
  }

  // The premise of the 1e-4 tolerance: this network is well conditioned, i.e. LibTorch's own
  // float32 logits agree with float64 ones to within half of it (over 12 seeds, random B0s
  // reached 2.3e-5 here, and ORT 3.6e-5 from LibTorch's float32, being as close to float64).
  // The bound is 8e-5, not half: LibTorch's float32 reduction order follows its thread count, and
  // on a loaded machine one B0 reached 5.6e-5. Last, as it converts the model.
  model->to(torch::kDouble);
  torch::Tensor exact;
  {
    torch::NoGradGuard no_grad;
    exact = model->forward(x.to(torch::kDouble)).logit;
  }
  EXPECT_LE((exact - expected.to(torch::kDouble)).abs().max().item<double>(), 8e-5);
}

INSTANTIATE_TEST_SUITE_P(
    Zoo, ExportParityTest,
    ::testing::Values(
        Case{"mobilenetv3_small_w0.5_96", {.arch = "mobilenetv3_small", .width = 0.5f, .input_size = 96}},
        Case{"mobilenetv3_large_w0.5_96", {.arch = "mobilenetv3_large", .width = 0.5f, .input_size = 96}},
        Case{"efficientnet_b0_w0.5_96", {.arch = "efficientnet_b0", .width = 0.5f, .input_size = 96}},
        Case{"mobilenetv3_small_w1.0_128", {.arch = "mobilenetv3_small", .width = 1.0f, .input_size = 128}},
        Case{"mobilenetv3_large_w0.5_100_mask",
             {.arch = "mobilenetv3_large", .width = 0.5f, .input_size = 100, .mask_head = true}},
        // TF-"SAME" pads: (0, 1) on even maps, (1, 1) on the odd ones 100 px gives (25, 13, 7).
        Case{"mobilenetv1_w0.5_96", {.arch = "mobilenetv1", .width = 0.5f, .input_size = 96}},
        Case{"mobilenetv1_s16_w1.0_100_mask",
             {.arch = "mobilenetv1_s16", .width = 1.0f, .input_size = 100, .mask_head = true}},
        Case{"mobilenetv1_s16_w1.0_128", {.arch = "mobilenetv1_s16", .width = 1.0f, .input_size = 128}},
        // Two points of the architecture search's space (train/zoo.h, NasSpec).
        Case{"mobilenetv3_nas_default_w0.5_96", {.arch = "mobilenetv3_nas", .width = 0.5f, .input_size = 96}},
        Case{"mobilenetv3_nas_sampled_w0.75_80_mask",
             {.arch = "mobilenetv3_nas",
              .width = 0.75f,
              .input_size = 80,
              .mask_head = true,
              .nas = {.depth = {2, 1, 3, 1, 2},
                      .kernel = {5, 3, 7, 3, 5},
                      .expand = {1.5f, 3, 4, 6, 2.5f},
                      .se = {false, true, false, true, true},
                      .act = {"hswish", "relu", "relu", "hswish", "hswish"}}}}),
    [](const ::testing::TestParamInfo<Case>& info) {
      std::string name = info.param.label;
      std::replace_if(
          name.begin(), name.end(), [](char ch) { return !std::isalnum(static_cast<unsigned char>(ch)); }, '_');
      return name;
    });

TEST(ExportTest, MetadataKeepsTheCallersFieldsButNotItsShape) {
  auto model = MakeModel({.arch = "mobilenetv3_small", .width = 0.5f, .input_size = 64});
  ASSERT_TRUE(model.ok());
  infer::ModelMetadata meta;
  meta.name = "ms";
  meta.version = "7";
  meta.input_size = 224;                          // overridden: the model's is 64
  meta.output = infer::OutputKind::kProbability;  // overridden: the model outputs a logit
  meta.calibration_method = "platt";
  meta.calib_a = 1.5f;
  meta.calib_b = -0.25f;
  const std::string path = TempDir() + "/ms.onnx";
  ASSERT_TRUE(ExportOnnx(*model, meta, path).ok());
  auto m = infer::LoadModelMetadata(path);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->name, "ms");
  EXPECT_EQ(m->version, "7");
  EXPECT_EQ(m->input_size, 64);
  EXPECT_EQ(m->output, infer::OutputKind::kLogit);
  EXPECT_EQ(m->calibration_method, "platt");
  EXPECT_FLOAT_EQ(m->calib_a, 1.5f);
  EXPECT_FLOAT_EQ(m->calib_b, -0.25f);
}

TEST(ExportTest, UnwritablePathIsAnIoError) {
  auto model = MakeModel({.arch = "mobilenetv3_small", .width = 0.5f, .input_size = 64});
  ASSERT_TRUE(model.ok());
  Status st = ExportOnnx(*model, {}, TempDir() + "/no/such/dir/m.onnx");
  EXPECT_EQ(st.code(), Code::kIoError) << st.ToString();
}

}  // namespace
}  // namespace deepscan::train
