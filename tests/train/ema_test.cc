// train::WeightEma: the average's arithmetic, its warm-up, buffers, and the refusal of a bad decay.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "train/ema.h"
#include "train/zoo.h"

namespace deepscan::train {
namespace {

ModelSpec Small() {
  ModelSpec s;
  s.arch = "mobilenetv3_small";
  s.width = 0.5f;
  s.input_size = 32;
  s.mask_head = true;
  return s;
}

void Fill(Model& m, float v) {
  torch::NoGradGuard g;
  for (auto& p : m->parameters()) p.fill_(v);
  for (auto& b : m->named_buffers()) {
    if (b.value().is_floating_point()) b.value().fill_(v);
  }
}

TEST(WeightEmaTest, AveragesParametersAndBuffersWithTheWarmUpDecay) {
  auto live = MakeModel(Small());
  ASSERT_TRUE(live.ok());
  Fill(*live, 1.0f);
  auto ema = WeightEma::Start(*live, 0.9);
  ASSERT_TRUE(ema.ok());
  // The first decays are (1 + n) / (10 + n): 0.1, then 2/11, ... until they reach 0.9.
  EXPECT_DOUBLE_EQ(ema->NextDecay(), 0.1);
  Fill(*live, 3.0f);
  ema->Update(*live);  // 0.1 * 1 + 0.9 * 3 = 2.8
  EXPECT_DOUBLE_EQ(ema->NextDecay(), 2.0 / 11);
  Fill(*live, 0.0f);
  ema->Update(*live);  // 2/11 * 2.8 + 9/11 * 0 = 0.50909...
  const float want = static_cast<float>(2.0 / 11 * 2.8);
  for (const auto& p : ema->averaged()->named_parameters()) {
    EXPECT_NEAR(p.value().min().item<float>(), want, 1e-5) << p.key();
    EXPECT_NEAR(p.value().max().item<float>(), want, 1e-5) << p.key();
    EXPECT_FALSE(p.value().requires_grad()) << p.key();
  }
  int float_buffers = 0;
  for (const auto& b : ema->averaged()->named_buffers()) {
    if (!b.value().is_floating_point()) continue;
    ++float_buffers;  // BatchNorm's running statistics follow the average too
    EXPECT_NEAR(b.value().max().item<float>(), want, 1e-5) << b.key();
  }
  EXPECT_GT(float_buffers, 0);
  EXPECT_EQ(ema->updates(), 2);
  // The live model is not touched by the average.
  EXPECT_EQ((*live)->parameters().front().abs().max().item<float>(), 0.0f);

  // A resumed average starts its warm-up where it left off; the decay is capped.
  auto later = WeightEma::Start(*live, 0.9, 1000);
  ASSERT_TRUE(later.ok());
  EXPECT_DOUBLE_EQ(later->NextDecay(), 0.9);
}

TEST(WeightEmaTest, ADecayOutsideTheOpenUnitIntervalIsRefused) {
  auto live = MakeModel(Small());
  ASSERT_TRUE(live.ok());
  for (double d : {0.0, 1.0, -0.5, 1.5}) {
    EXPECT_EQ(WeightEma::Start(*live, d).status().code(), Code::kInvalidArgument) << d;
  }
}

}  // namespace
}  // namespace deepscan::train
