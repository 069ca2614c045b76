// compress::lowrank: low-rank factorisation of zoo models (train/zoo.h). Fine-tuning afterwards is
// the trainer's (TrainConfig::start; `deepscan lowrank` runs both).
//
//   1x1 conv  W [out, in]        truncated SVD, W ~ U S V^T: reduce 1x1 (in -> r) = S^1/2 V^T,
//                                then 1x1 (r -> out) = U S^1/2; the BatchNorm stays after it.
//   k x k conv W [out, in, k, k] Tucker-2 by HOSVD: U_in (in x r_in) and U_out (out x r_out) the
//                                leading left singular vectors of the mode-1 and mode-0 unfoldings;
//                                reduce 1x1 = U_in^T, core k x k = W x0 U_out^T x1 U_in^T, restore
//                                1x1 = U_out (stride and TF padding stay on the core).
//   Linear (pre_logits)          truncated SVD, as the 1x1 conv (the bias stays on the second).
// Depthwise and SE convs and the 1-logit output are left alone (nothing to gain). A layer is
// factorised only if that makes it smaller; the ranks go to ModelSpec::ranks, so checkpoints and
// the ONNX export carry the two or three smaller layers (ONNX Runtime runs them as such).
//
// Rank: per layer, the smallest r whose singular values keep `energy` of sum(s^2), or the largest r
// whose factors hold at most `size_ratio` of the layer's weights; rounded up to `multiple`.
#ifndef DEEPSCAN_COMPRESS_LOWRANK_H_
#define DEEPSCAN_COMPRESS_LOWRANK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "deepscan/status.h"
#include "train/zoo.h"

namespace deepscan::compress {

struct LowRankOptions {
  double energy = 0.9;      // (0, 1]: share of the squared singular values kept
  double size_ratio = 0;    // (0, 1): instead of `energy`, the factors' share of the layer's weights
  int64_t multiple = 8;     // ranks rounded up to a multiple of this (>= 1)
  int64_t min_channels = 64;  // layers whose smaller side is below this are left whole
  std::vector<std::string> only;  // module paths to factorise ("blocks.9.project"); empty = all that qualify
};

struct LayerRank {
  std::string layer;           // module path
  std::vector<int64_t> shape;  // the original weight's shape
  std::vector<int64_t> rank;   // {r} or {r_in, r_out}
  double energy = 0;           // share of sum(s^2) kept (Tucker-2: the smaller of the two unfoldings')
  int64_t params_before = 0, params_after = 0;
};

struct LowRankReport {
  std::vector<LayerRank> layers;
  int64_t params_before = 0, params_after = 0;
};

// A new model with the chosen layers factorised. Errors: kInvalidArgument (options out of range, a
// path in `only` that names no factorisable layer, or a layer that is already factorised).
Result<train::Model> FactorizeLowRank(const train::Model& model, const LowRankOptions& options,
                                      LowRankReport* report = nullptr);

}  // namespace deepscan::compress

#endif  // DEEPSCAN_COMPRESS_LOWRANK_H_
