// The architecture-search arch "mobilenetv3_nas" (train/zoo.h, NasSpec): its checks, its JSON round
// trip, the network it builds for sampled choices, and a checkpoint round trip. Its export parity
// (ORT vs LibTorch) is in export_parity_test.cc with the other archs.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "test_env.h"
#include "train/zoo.h"

namespace deepscan::train {
namespace {

using nlohmann::json;

ModelSpec Nas(int input_size = 64, float width = 0.5f) {
  ModelSpec s;
  s.arch = "mobilenetv3_nas";
  s.width = width;
  s.input_size = input_size;
  return s;
}

// A sampled point of the space, unlike the defaults in every field.
ModelSpec Sampled() {
  ModelSpec s = Nas();
  s.nas.depth = {2, 1, 4, 1, 2};
  s.nas.kernel = {5, 3, 3, 7, 3};
  s.nas.expand = {1.5f, 3, 4, 6, 2.5f};
  s.nas.se = {false, true, false, false, true};
  s.nas.act = {"hswish", "hswish", "relu", "relu", "hswish"};
  return s;
}

TEST(NasSpecTest, DefaultsAreMobileNetV3SmallsLayout) {
  ModelSpec nas = Nas(224, 1.0f);
  auto m = MakeModel(nas);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ModelSpec small = nas;
  small.arch = "mobilenetv3_small";
  auto s = MakeModel(small);
  ASSERT_TRUE(s.ok());
  // Small's 11 blocks, kernels, SE and activations; only the expansions differ (one ratio a stage).
  ASSERT_EQ((*m)->blocks.size(), (*s)->blocks.size());
  for (size_t i = 0; i < (*m)->blocks.size(); ++i) {
    const auto& a = (*m)->blocks[i];
    const auto& b = (*s)->blocks[i];
    EXPECT_EQ(a->stride, b->stride) << i;
    EXPECT_EQ(a->residual, b->residual) << i;
    EXPECT_EQ((*a->depthwise->conv->options.kernel_size())[0], (*b->depthwise->conv->options.kernel_size())[0]) << i;
    EXPECT_EQ(static_cast<bool>(a->se), static_cast<bool>(b->se)) << i;
    EXPECT_EQ(a->depthwise->act, b->depthwise->act) << i;
    EXPECT_EQ(a->project->conv->options.out_channels(), b->project->conv->options.out_channels()) << i;
  }
  const int64_t n = CountParameters(**m), ns = CountParameters(**s);
  std::printf("[nas] default params %lld (mobilenetv3_small %lld)\n", static_cast<long long>(n),
              static_cast<long long>(ns));
  EXPECT_NEAR(static_cast<double>(n) / static_cast<double>(ns), 1.0, 0.1);
  EXPECT_EQ((*m)->mask_tap, (*s)->mask_tap);
}

TEST(NasSpecTest, BuildsTheSampledChoices) {
  ModelSpec spec = Sampled();
  spec.mask_head = true;
  auto m = MakeModel(spec);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ((*m)->blocks.size(), 10u);  // 2 + 1 + 4 + 1 + 2
  const int stage_of[] = {0, 0, 1, 2, 2, 2, 2, 3, 4, 4};
  const int64_t strides[] = {2, 1, 2, 2, 1, 1, 1, 1, 2, 1};
  for (size_t i = 0; i < 10; ++i) {
    const auto& b = (*m)->blocks[i];
    const int st = stage_of[i];
    EXPECT_EQ(b->stride, strides[i]) << i;
    EXPECT_EQ((*b->depthwise->conv->options.kernel_size())[0], spec.nas.kernel[st]) << i;
    EXPECT_EQ(static_cast<bool>(b->se), static_cast<bool>(spec.nas.se[st])) << i;
    EXPECT_EQ(b->depthwise->act, spec.nas.act[st] == "hswish" ? Act::kHardSwish : Act::kRelu) << i;
    // At width 0.5 stages 2 and 3 both have 24 channels, so block 7 keeps a residual (as Small's).
    EXPECT_EQ(b->residual, strides[i] == 1) << i;
  }
  // Block 3 (stage 2's first): stage 1's 24 channels at width 0.5 (16), expanded 4x.
  const int64_t in3 = (*m)->blocks[3]->depthwise->conv->options.in_channels();
  EXPECT_EQ(in3, 64);            // 16 channels * 4
  EXPECT_EQ((*m)->mask_tap, 7);  // the last block at stride 16
  torch::NoGradGuard no_grad;
  (*m)->eval();
  ModelOutput out = (*m)->forward(torch::randn({2, 3, 64, 64}));
  EXPECT_EQ(out.logit.sizes().vec(), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(out.mask_logit.sizes().vec(), (std::vector<int64_t>{2, 1, 4, 4}));
}

TEST(NasSpecTest, JsonRoundTrip) {
  const ModelSpec spec = Sampled();
  const std::string text = ModelSpecToJson(spec);
  const json j = json::parse(text);
  ASSERT_TRUE(j.contains("nas"));
  EXPECT_EQ(j["nas"]["depth"], json({2, 1, 4, 1, 2}));
  auto back = ModelSpecFromJson(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->nas.depth, spec.nas.depth);
  EXPECT_EQ(back->nas.kernel, spec.nas.kernel);
  EXPECT_EQ(back->nas.expand, spec.nas.expand);
  EXPECT_EQ(back->nas.se, spec.nas.se);
  EXPECT_EQ(back->nas.act, spec.nas.act);
  EXPECT_EQ(ModelSpecToJson(*back), text);
  // Only some fields: the others keep the defaults.
  auto partial =
      ModelSpecFromJson(R"({"arch": "mobilenetv3_nas", "input_size": 96, "nas": {"depth": [1, 1, 1, 1, 1]}})");
  ASSERT_TRUE(partial.ok()) << partial.status().ToString();
  EXPECT_EQ(partial->nas.depth, (std::vector<int>{1, 1, 1, 1, 1}));
  EXPECT_EQ(partial->nas.kernel, NasSpec{}.kernel);
  // Other archs write no "nas" (their JSON is what it was).
  ModelSpec small;
  EXPECT_FALSE(json::parse(ModelSpecToJson(small)).contains("nas"));
}

TEST(NasSpecTest, RefusesBadChoicesNamingTheField) {
  auto refused = [](const std::string& nas, const std::string& text) {
    auto s = ModelSpecFromJson(R"({"arch": "mobilenetv3_nas", "input_size": 64, "nas": )" + nas + "}");
    ASSERT_FALSE(s.ok()) << nas;
    EXPECT_EQ(s.status().code(), Code::kInvalidArgument) << s.status().ToString();
    EXPECT_NE(s.status().message().find(text), std::string::npos) << s.status().message();
  };
  refused(R"({"depth": [1, 2, 9, 2, 3]})", "nas.depth[2] = 9 is outside [1, 6]");
  refused(R"({"depth": [0, 2, 3, 2, 3]})", "nas.depth[0] = 0 is outside [1, 6]");
  refused(R"({"kernel": [3, 3, 4, 5, 5]})", "nas.kernel[2] = 4 is not 3, 5 or 7");
  refused(R"({"expand": [0.5, 4, 6, 3, 6]})", "nas.expand[0] = 0.5");
  refused(R"({"act": ["relu", "gelu", "relu", "relu", "relu"]})", "nas.act[1] = \"gelu\" is not");
  refused(R"({"depth": [1, 2, 3, 2]})", "nas.depth needs 5 entries (one per stage), not 4");
  refused(R"({"width": [1, 1, 1, 1, 1]})", "unknown nas field 'width' (depth, kernel, expand, se, act)");
  auto other = ModelSpecFromJson(R"({"arch": "mobilenetv3_small", "input_size": 64, "nas": {}})");
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("read by arch mobilenetv3_nas only"), std::string::npos)
      << other.status().message();
  // The same checks on a spec made in code.
  ModelSpec s = Nas();
  s.nas.se = {true};
  EXPECT_FALSE(MakeModel(s).ok());
}

TEST(NasSpecTest, CheckpointRoundTrip) {
  torch::manual_seed(3);
  auto m = MakeModel(Sampled());
  ASSERT_TRUE(m.ok());
  (*m)->eval();
  const std::string path = testing::TempDir() + "/nas.pt";
  ASSERT_TRUE(SaveCheckpoint(*m, path).ok());
  auto back = LoadCheckpoint(path);  // the spec from the file
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(ModelSpecToJson((*back)->spec()), ModelSpecToJson(Sampled()));
  (*back)->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::randn({2, 3, 64, 64});
  EXPECT_TRUE(torch::equal((*m)->forward(x).logit, (*back)->forward(x).logit));
  // Another point of the space does not take these weights.
  ModelSpec other = Sampled();
  other.nas.kernel[0] = 3;
  auto wrong = LoadCheckpoint(path, &other);
  EXPECT_FALSE(wrong.ok());
}

}  // namespace
}  // namespace deepscan::train
