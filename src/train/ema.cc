#include "train/ema.h"

#include <algorithm>
#include <string>

namespace deepscan::train {

Result<WeightEma> WeightEma::Start(Model& model, double decay, int64_t updates) {
  if (!(decay > 0 && decay < 1)) {
    return Status::InvalidArgument("ema decay must be in (0, 1), got " + std::to_string(decay));
  }
  ASSIGN_OR_RETURN(Model ema, MakeModel(model->spec()));
  ema->to(model->parameters().front().device());
  for (auto& p : ema->parameters()) p.set_requires_grad(false);
  CopyWeights(model, ema);
  ema->eval();
  return WeightEma(std::move(ema), decay, std::max<int64_t>(0, updates));
}

double WeightEma::NextDecay() const {
  const double n = static_cast<double>(updates_);
  return std::min(decay_, (1 + n) / (10 + n));
}

void WeightEma::Update(Model& model) {
  torch::NoGradGuard g;
  const double d = NextDecay();
  auto blend = [d](torch::Tensor& avg, const torch::Tensor& live) {
    if (avg.is_floating_point()) {
      avg.mul_(d).add_(live.detach(), 1 - d);
    } else {
      avg.copy_(live);
    }
  };
  auto src = model->named_parameters();
  for (auto& p : ema_->named_parameters()) blend(p.value(), src[p.key()]);
  auto sbuf = model->named_buffers();
  for (auto& b : ema_->named_buffers()) blend(b.value(), sbuf[b.key()]);
  ++updates_;
}

}  // namespace deepscan::train
