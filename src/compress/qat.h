// compress::qat: quantisation-aware fine-tuning of zoo models, for when post-training INT8
// (compress/quantize.h) loses accuracy. `deepscan qat` fine-tunes with every ConvBnAct fake-
// quantised as the INT8 export will run it (train::FakeQuant: int8 per-channel weights, uint8
// outputs over a running range, straight-through gradients), exports the float model and then
// quantises it with QuantizeStatic, whose calibrated ranges and weight grid the fine-tuning has
// adapted to. Depthwise and SE convs, Add and Mul are quantised by the export as well; only the
// ConvBnAct weights and outputs are simulated here (the dominant error of this network family).
#ifndef DEEPSCAN_COMPRESS_QAT_H_
#define DEEPSCAN_COMPRESS_QAT_H_

#include <memory>
#include <vector>

#include "train/zoo.h"

namespace deepscan::compress {

class FakeQuantizer {
 public:
  FakeQuantizer(bool weights = true, bool activations = true) : weights_(weights), activations_(activations) {}
  FakeQuantizer(const FakeQuantizer&) = delete;
  FakeQuantizer& operator=(const FakeQuantizer&) = delete;
  ~FakeQuantizer() { Detach(); }

  // Points every ConvBnAct of `model` at a fresh FakeQuant state owned here (the modules are held
  // until Detach, so either may go first). Returns how many.
  int Attach(train::Model& model);
  // Stops the fake quantisation (the model computes in float again).
  void Detach();

 private:
  bool weights_, activations_;
  std::vector<std::unique_ptr<train::FakeQuant>> states_;
  std::vector<std::shared_ptr<train::ConvBnActImpl>> attached_;
};

}  // namespace deepscan::compress

#endif  // DEEPSCAN_COMPRESS_QAT_H_
