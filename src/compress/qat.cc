#include "compress/qat.h"

namespace deepscan::compress {

int FakeQuantizer::Attach(train::Model& model) {
  Detach();
  for (auto& m : model->modules(/*include_self=*/false)) {
    if (auto c = std::dynamic_pointer_cast<train::ConvBnActImpl>(m)) {
      states_.push_back(std::make_unique<train::FakeQuant>());
      states_.back()->weights = weights_;
      states_.back()->activations = activations_;
      c->fake_quant = states_.back().get();
      attached_.push_back(c);
    }
  }
  return static_cast<int>(attached_.size());
}

void FakeQuantizer::Detach() {
  for (auto& c : attached_) c->fake_quant = nullptr;
  attached_.clear();
  states_.clear();
}

}  // namespace deepscan::compress
