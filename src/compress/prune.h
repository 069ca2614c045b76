// compress::prune: structured channel pruning and unstructured magnitude pruning of zoo models
// (train/zoo.h), the Torch side of docs/compression.md. Fine-tuning afterwards is the trainer's
// (TrainConfig::start; `deepscan prune` runs both).
//
// Structured: the network's channels fall into groups that must shrink together (ChannelGroups):
// a conv's output channels with its BatchNorm, the depthwise conv and SE gates that read them and
// every conv or linear layer that consumes them; a residual chain (block outputs added to their
// inputs) is one group across all its blocks; a block's expanded channels and its SE bottleneck are
// groups of their own. Each channel is scored by the L1 norm of its producing filters with the
// BatchNorm folded in (|w| * |gamma| / sqrt(var + eps); in a residual chain the producers' scores,
// each normalised by its mean, are summed), the lowest-scoring ones are removed, and a genuinely
// smaller model is built: ModelSpec::channels records the new counts, so that checkpoints, the
// ONNX export and every backend see fewer channels, not a mask.
//
// Unstructured: the smallest weights of the conv and linear layers are set to zero, the
// magnitudes taken with the following BatchNorm folded in; with one threshold over the whole
// network (global: on LAMP scores, w^2 over the sum of the layer's not-smaller w^2, which are
// comparable across layers; raw magnitudes are not: one threshold over them emptied the small-
// weighted linear layers of the default model and its output went constant) or the same share per
// layer; the masks are kept during fine-tuning (ApplyMasks after each step). The exported model
// has as many weights as before: dense kernels (ONNX Runtime on this CPU) gain nothing from zeros;
// only the compressed file shrinks.
#ifndef DEEPSCAN_COMPRESS_PRUNE_H_
#define DEEPSCAN_COMPRESS_PRUNE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "deepscan/status.h"
#include "train/zoo.h"

namespace deepscan::compress {

struct ChannelGroup {
  std::string key;       // ModelSpec::channels key ("stem", "blocks.4.expanded", "blocks.2.out", "head"...)
  int64_t channels = 0;  // current count
  struct Member {
    std::string tensor;  // a name of named_parameters() / named_buffers()
    int dim = 0;         // the axis that indexes the group's channels
  };
  std::vector<Member> members;
  struct Producer {
    std::string weight;     // the weight whose rows (output filters) make the channels
    std::string batchnorm;  // its BatchNorm's prefix ("stem.bn"), or "" (a conv or linear with bias)
  };
  std::vector<Producer> producers;
};

// The channel groups of `model`, in network order.
std::vector<ChannelGroup> ChannelGroups(const train::Model& model);

// One score per channel of `group` (higher = keep), as described above.
std::vector<double> ChannelImportance(const train::Model& model, const ChannelGroup& group);

struct ChannelPruneOptions {
  double ratio = 0.3;                // share of each group's channels removed, [0, 0.95)
  int64_t multiple = 8;              // kept counts rounded up to a multiple of this (>= 1)
  int64_t min_channels = 8;          // and never below this
  std::vector<std::string> skip;     // group keys left whole
};

struct GroupChange {
  std::string key;
  int64_t before = 0, after = 0;
};

struct PruneReport {
  std::vector<GroupChange> groups;
  int64_t params_before = 0, params_after = 0;
  double sparsity = 0;  // unstructured: share of zero weights in the pruned layers
};

// A new, smaller model holding `model`'s weights for the kept channels. A group whose lowest-
// scoring channels are exactly zero (filters and BatchNorm shift) is pruned without changing what
// the model computes. Errors: kInvalidArgument (ratio or multiple out of range, an unknown key in
// `skip`).
Result<train::Model> PruneChannels(const train::Model& model, const ChannelPruneOptions& options,
                                   PruneReport* report = nullptr);

// Builds a model of `spec` (whose channel counts are the kept ones) from `model`'s tensors, each
// sliced along its groups' axes by `keep` (key -> kept channel indices, ascending). Errors:
// kInvalidArgument (a spec that does not fit, indices out of range).
Result<train::Model> SliceChannels(const train::Model& model, const train::ModelSpec& spec,
                                   const std::map<std::string, std::vector<int64_t>>& keep);

struct MagnitudeOptions {
  double sparsity = 0.5;  // share of the weights set to zero, [0, 1)
  bool global = true;     // one threshold over all layers' LAMP scores (else the same share in each layer)
};

using Masks = std::map<std::string, torch::Tensor>;  // parameter name -> 0/1 float mask

// The magnitude masks of the conv and linear weights (depthwise included; the 1-logit output layer
// and the biases excluded). Errors: kInvalidArgument (sparsity out of range).
Result<Masks> MagnitudeMasks(const train::Model& model, const MagnitudeOptions& options);

// weights *= masks (in place, no gradient).
void ApplyMasks(train::Model& model, const Masks& masks);

// Share of exact zeros over the weights that `masks` names.
double MaskedSparsity(const train::Model& model, const Masks& masks);

}  // namespace deepscan::compress

#endif  // DEEPSCAN_COMPRESS_PRUNE_H_
