// train::WeightEma: an exponential moving average of a model's weights (Polyak averaging, as timm's
// ModelEmaV2 and most ImageNet recipes keep), validated and exported instead of the raw weights.
// With a high learning rate the raw weights jump between epochs (version 4's held-out AUC swung
// 0.80-0.95 from one epoch to the next); their running mean follows the same path smoothed over
// about 1 / (1 - decay) steps.
//
// In:  the live model after each optimizer step.
// Out: averaged(): a model of the same architecture whose floating-point parameters and buffers
//      (BatchNorm's running statistics included) are ema := d * ema + (1 - d) * w, with
//      d = min(decay, (1 + n) / (10 + n)) after n updates (timm's warm-up: early updates weigh more,
//      so the mean does not stay near the start); integer buffers are copied.
// The average lives on the live model's device and never receives gradients. Resuming a run reloads
// it from its own checkpoint (ema.pt, train/trainer.cc); n restarts from the step count.
#ifndef DEEPSCAN_TRAIN_EMA_H_
#define DEEPSCAN_TRAIN_EMA_H_

#include <cstdint>

#include "deepscan/status.h"
#include "train/zoo.h"

namespace deepscan::train {

class WeightEma {
 public:
  // Starts the average at `model`'s weights; `updates` = how many steps it already averaged (a
  // resumed run). Errors: kInvalidArgument (decay outside (0, 1)), as MakeModel's.
  static Result<WeightEma> Start(Model& model, double decay, int64_t updates = 0);

  // Folds `model`'s current weights into the average (same architecture as at Start).
  void Update(Model& model);

  // The decay that the next Update applies.
  double NextDecay() const;

  Model& averaged() { return ema_; }
  int64_t updates() const { return updates_; }

 private:
  WeightEma(Model ema, double decay, int64_t updates) : ema_(std::move(ema)), decay_(decay), updates_(updates) {}
  Model ema_;
  double decay_;
  int64_t updates_;
};

}  // namespace deepscan::train

#endif  // DEEPSCAN_TRAIN_EMA_H_
