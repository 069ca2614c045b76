// train::SamStep (sharpness-aware minimisation): the step it takes equals the hand-computed SAM
// step, BatchNorm statistics are updated once per step, and bad radii are refused.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "train/sam.h"
#include "train/trainer.h"

namespace deepscan::train {
namespace {

// loss(w) = (w . x - y)^2 for a Linear(2 -> 1) without bias; its gradient is 2 (w . x - y) x.
TEST(SamTest, StepsWithTheGradientAtTheWorstPointOfTheBall) {
  torch::nn::Linear lin(torch::nn::LinearOptions(2, 1).bias(false));
  {
    torch::NoGradGuard g;
    lin->weight.copy_(torch::tensor({{0.5f, -1.0f}}));
  }
  const torch::Tensor x = torch::tensor({{2.0f, 1.0f}});
  const torch::Tensor y = torch::tensor({{3.0f}});
  const double lr = 0.1, rho = 0.05;
  torch::optim::SGD opt(lin->parameters(), torch::optim::SGDOptions(lr));
  auto loss_fn = [&] { return (lin->forward(x) - y).pow(2).sum(); };

  // By hand: w = (0.5, -1), x = (2, 1), y = 3.
  const double w0 = 0.5, w1 = -1.0;
  auto grad = [](double a, double b) {
    const double r = 2 * (a * 2 + b * 1 - 3);
    return std::pair<double, double>{r * 2, r * 1};
  };
  auto [g0, g1] = grad(w0, w1);
  const double n = std::hypot(g0, g1);
  auto [h0, h1] = grad(w0 + rho * g0 / n, w1 + rho * g1 / n);
  const double want0 = w0 - lr * h0, want1 = w1 - lr * h1;
  const double first_loss = std::pow(w0 * 2 + w1 - 3, 2);

  Result<double> l = SamStep(*lin, loss_fn, opt, rho);
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_NEAR(*l, first_loss, 1e-5) << "the loss reported is the one at w";
  EXPECT_NEAR(lin->weight[0][0].item<double>(), want0, 1e-5);
  EXPECT_NEAR(lin->weight[0][1].item<double>(), want1, 1e-5);
  // And it differs from the plain gradient step, so the test can tell them apart.
  EXPECT_GT(std::abs((w0 - lr * g0) - want0), 1e-3);
}

TEST(SamTest, BatchNormStatisticsAreUpdatedOncePerStep) {
  torch::manual_seed(3);
  auto make = [] {
    torch::nn::Sequential m(torch::nn::BatchNorm1d(3), torch::nn::Linear(3, 1));
    return m;
  };
  torch::nn::Sequential sam = make(), plain = make();
  {
    torch::NoGradGuard g;
    auto ps = sam->parameters(), pp = plain->parameters();
    for (size_t i = 0; i < ps.size(); ++i) pp[i].copy_(ps[i]);
  }
  const torch::Tensor x = torch::randn({16, 3}) * 2 + 1;
  const torch::Tensor y = torch::randn({16, 1});
  torch::optim::SGD opt_sam(sam->parameters(), torch::optim::SGDOptions(0.01));
  torch::optim::SGD opt_plain(plain->parameters(), torch::optim::SGDOptions(0.01));
  ASSERT_TRUE(SamStep(*sam, [&] { return (sam->forward(x) - y).pow(2).mean(); }, opt_sam, 0.05).ok());
  torch::Tensor loss = (plain->forward(x) - y).pow(2).mean();
  opt_plain.zero_grad();
  loss.backward();
  opt_plain.step();
  const auto& bs = sam[0]->as<torch::nn::BatchNorm1dImpl>()->running_mean;
  const auto& bp = plain[0]->as<torch::nn::BatchNorm1dImpl>()->running_mean;
  EXPECT_TRUE(torch::allclose(bs, bp)) << bs << " vs " << bp;
  EXPECT_GT(bs.abs().sum().item<double>(), 0.05) << "the statistics moved at all";
}

TEST(SamTest, RefusesABadRadiusAndTheConfigRoundTripsIt) {
  torch::nn::Linear lin(2, 1);
  torch::optim::SGD opt(lin->parameters(), torch::optim::SGDOptions(0.1));
  auto loss_fn = [&] { return lin->forward(torch::ones({1, 2})).sum(); };
  EXPECT_EQ(SamStep(*lin, loss_fn, opt, 0).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(SamStep(*lin, loss_fn, opt, -0.1).status().code(), Code::kInvalidArgument);
  TrainConfig c;
  c.sam_rho = 0.05f;
  auto back = TrainConfigFromJson(TrainConfigToJson(c));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_FLOAT_EQ(back->sam_rho, 0.05f);
}

}  // namespace
}  // namespace deepscan::train
