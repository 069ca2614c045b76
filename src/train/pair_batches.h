// train::PairBatches: training batches of real face crops and their pseudo-fakes.
//
// In:  a CropStoreReader and the rows to use (real crops).
// Out: Batch tensors of 2P images: P real crops and, for each, a pseudo-fake made from it (SBI,
//      or with probability cross_blend_p a cross-identity blend with another row), in the order
//      real_0, fake_0, real_1, fake_1, ... Each pair shares one base augmentation (sampled once,
//      applied before synthesis) so only the blend tells them apart; the final augmentation
//      (crop, flip, JPEG) is drawn per image. Labels: 0 real, 1 fake. Masks: the blend mask
//      (zeros for reals) resized to mask_size, for dense supervision.
// Deterministic: the same rows, options and rng state give the same batch.
// Threading: MakePairBatch reads through `reader`, which is single-threaded: one caller at a time.
#ifndef DEEPSCAN_TRAIN_PAIR_BATCHES_H_
#define DEEPSCAN_TRAIN_PAIR_BATCHES_H_

#include <array>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include <torch/types.h>

#include "train/augment.h"
#include "train/crop_store.h"
#include "train/sbi.h"

namespace deepscan::train {

struct BatchOptions {
  int input_size = 128;                               // network input side
  int mask_size = 0;                                  // mask target side; 0 = no mask targets
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};  // RGB normalisation, as infer::PackNchw
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};
  bool augment = true;  // false: no base/final augmentation (validation)
  BaseAugmentOptions base;
  SbiOptions sbi;
  CrossBlendOptions cross;
  float cross_blend_p = 0.0f;     // share of pseudo-fakes made by cross-identity blending
  DegradeOptions degrade;         // codec degradation after blending, one draw per pair (augment only)
  FinalAugmentOptions final_aug;  // output_size is overridden by input_size
};

struct Batch {
  torch::Tensor images;       // float [2P, 3, S, S], normalised RGB
  torch::Tensor labels;       // float [2P, 1]
  torch::Tensor masks;        // float [2P, 1, M, M]; undefined when mask_size == 0
  std::vector<int64_t> rows;  // store row of each image (a fake carries its real's row)
};

// Builds one batch from `rows` (P of them). Errors from the store or synthesis propagate.
Result<Batch> MakePairBatch(CropStoreReader& reader, std::span<const int64_t> rows, const BatchOptions& options,
                            std::mt19937& rng);

// One rank's share of a global batch (data-parallel training, dist/group.h): the pairs [begin, end)
// of `rows`, pair k made with its own rng stream seeded by (batch_seed, k), cross-identity donors
// drawn from all of `rows`. So the shards of W ranks together are exactly the batch that one
// process makes for [0, rows.size()) with the same seed, whatever W is.
Result<Batch> MakePairBatchShard(CropStoreReader& reader, std::span<const int64_t> rows, size_t begin, size_t end,
                                 const BatchOptions& options, uint64_t batch_seed);

// Converts BGR uint8 crops (all input_size square) into a normalised RGB NCHW float tensor.
torch::Tensor CropsToTensor(const std::vector<cv::Mat>& crops, const std::array<float, 3>& mean,
                            const std::array<float, 3>& std);

}  // namespace deepscan::train

#endif  // DEEPSCAN_TRAIN_PAIR_BATCHES_H_
