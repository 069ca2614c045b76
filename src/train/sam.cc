#include "train/sam.h"

#include <cmath>
#include <vector>

#include <torch/torch.h>

namespace deepscan::train {

Result<double> SamStep(torch::nn::Module& model, const std::function<torch::Tensor()>& loss_fn,
                       torch::optim::Optimizer& optimizer, double rho, const std::function<Status()>& sync_gradients) {
  if (!(rho > 0)) return Status::InvalidArgument("SAM rho must be > 0");
  std::vector<torch::Tensor> params;
  for (torch::Tensor& p : model.parameters()) {
    if (p.requires_grad()) params.push_back(p);
  }
  optimizer.zero_grad();
  torch::Tensor loss = loss_fn();
  loss.backward();
  const double first = loss.item<double>();
  if (sync_gradients) RETURN_IF_ERROR(sync_gradients());

  // Buffers (BatchNorm's running statistics) as the first pass left them.
  std::vector<torch::Tensor> buffers, saved;
  for (torch::Tensor& b : model.buffers()) {
    buffers.push_back(b);
    saved.push_back(b.clone());
  }
  std::vector<torch::Tensor> steps(params.size());
  {
    torch::NoGradGuard no_grad;
    double sq = 0;
    for (const torch::Tensor& p : params) {
      if (p.grad().defined()) sq += p.grad().pow(2).sum().item<double>();
    }
    const double norm = std::sqrt(sq);
    if (!std::isfinite(norm)) {
      optimizer.zero_grad();
      return Status::Internal("SAM: the gradient norm is not finite");
    }
    const double scale = rho / (norm + 1e-12);
    for (size_t i = 0; i < params.size(); ++i) {
      if (!params[i].grad().defined()) continue;
      steps[i] = params[i].grad() * scale;
      params[i].add_(steps[i]);  // to the worst point in the ball
    }
  }
  optimizer.zero_grad();
  loss_fn().backward();  // the gradient there
  const Status synced = sync_gradients ? sync_gradients() : Status::Ok();
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) {
      if (steps[i].defined()) params[i].sub_(steps[i]);  // back to w
    }
    for (size_t i = 0; i < buffers.size(); ++i) buffers[i].copy_(saved[i]);
  }
  RETURN_IF_ERROR(synced);
  optimizer.step();
  return first;
}

}  // namespace deepscan::train
