// train::SamStep: one step of sharpness-aware minimisation (SAM; Foret et al., ICLR 2021), around
// any torch optimizer. SAM seeks weights whose whole neighbourhood has low loss: it climbs to the
// worst point within an L2 ball of radius rho (w + e, e = rho * g / ||g||), takes the gradient
// there, returns to w and lets the base optimizer step with that gradient. It costs a second
// forward/backward pass per step; on face-forgery detection it is one of the regularisers that
// help transfer to unseen manipulations (used e.g. by LAA-Net's and several SBI follow-ups' recipes).
//
// In:  the model's parameters, a closure that runs forward and returns the loss (called twice),
//      the base optimizer over those parameters, rho > 0.
// Out: the base optimizer has stepped with the gradient at w + e; the returned loss is the first
//      pass's (at w). BatchNorm running statistics (any buffers) are restored after the second pass
//      so that each step updates them once, as a plain step would.
// Data-parallel training passes `sync_gradients`, called after each of the two backward passes
// (the ranks' gradients averaged, so every rank climbs to the same point and steps alike); its
// error ends the step, the weights back at w.
// Errors: kInvalidArgument (rho <= 0); a non-finite gradient norm leaves the weights unchanged and
//      the optimizer un-stepped (kInternal), as a divergent step must not be taken.
#ifndef DEEPSCAN_TRAIN_SAM_H_
#define DEEPSCAN_TRAIN_SAM_H_

#include <functional>

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include "deepscan/status.h"

namespace deepscan::train {

Result<double> SamStep(torch::nn::Module& model, const std::function<torch::Tensor()>& loss_fn,
                       torch::optim::Optimizer& optimizer, double rho,
                       const std::function<Status()>& sync_gradients = nullptr);

}  // namespace deepscan::train

#endif  // DEEPSCAN_TRAIN_SAM_H_
