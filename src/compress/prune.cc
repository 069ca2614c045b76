#include "compress/prune.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <torch/nn/modules/batchnorm.h>

namespace deepscan::compress {
namespace {

using train::ConvBnActImpl;

class GroupBuilder {
 public:
  int New(const std::string& key, int64_t channels) {
    ChannelGroup g;
    g.key = key;
    g.channels = channels;
    groups.push_back(g);
    return static_cast<int>(groups.size()) - 1;
  }
  void Tensor(int g, const std::string& name, int dim) { groups[g].members.push_back({name, dim}); }
  // The output channels of the ConvBnAct at `path`: its last conv's filters and its BatchNorm.
  void ConvOut(int g, const ConvBnActImpl& m, const std::string& path, bool producer) {
    const std::string w = path + (m.restore ? ".restore.weight" : ".conv.weight");
    Tensor(g, w, 0);
    for (const char* b : {"weight", "bias", "running_mean", "running_var"}) Tensor(g, path + ".bn." + b, 0);
    if (producer) groups[g].producers.push_back({w, path + ".bn"});
  }
  // The input channels of the ConvBnAct at `path` (a full conv: its first conv's dim 1).
  void ConvIn(int g, const ConvBnActImpl& m, const std::string& path) {
    Tensor(g, path + (m.reduce ? ".reduce.weight" : ".conv.weight"), 1);
  }
  std::vector<ChannelGroup> groups;
};

int64_t OutChannels(const ConvBnActImpl& m) { return m.bn->options.num_features(); }

std::map<std::string, torch::Tensor> AllTensors(const train::Model& model) {
  std::map<std::string, torch::Tensor> all;
  for (const auto& p : model->named_parameters()) all[p.key()] = p.value();
  for (const auto& b : model->named_buffers()) all[b.key()] = b.value();
  return all;
}

// The magnitudes of the weights the network actually applies: |w| with the BatchNorm after it
// folded in (each output row times |gamma| / sqrt(var + eps)), in double.
class FoldedWeights {
 public:
  explicit FoldedWeights(const train::Model& model) : all_(AllTensors(model)) {
    for (const auto& item : model->named_modules("", false)) {
      if (const auto* bn = item.value()->as<torch::nn::BatchNorm2dImpl>()) eps_[item.key()] = bn->options.eps();
    }
  }
  // `batchnorm` is the BatchNorm's prefix ("stem.bn"), or "" for a layer without one.
  torch::Tensor Magnitude(const std::string& weight, const std::string& batchnorm) const {
    torch::Tensor a = all_.at(weight).detach().to(torch::kDouble).abs();
    if (batchnorm.empty()) return a;
    const torch::Tensor gamma = all_.at(batchnorm + ".weight").detach().to(torch::kDouble).abs();
    const torch::Tensor var = all_.at(batchnorm + ".running_var").detach().to(torch::kDouble);
    std::vector<int64_t> shape(a.dim(), 1);
    shape[0] = a.size(0);
    return a * (gamma / torch::sqrt(var + eps_.at(batchnorm))).view(shape);
  }

 private:
  std::map<std::string, torch::Tensor> all_;
  std::map<std::string, double> eps_;
};

// The conv and linear weights that magnitude pruning touches (the 1-logit output layer aside).
std::vector<std::string> PrunableWeights(const train::Model& model) {
  std::vector<std::string> names;
  for (const auto& item : model->named_modules("", /*include_self=*/false)) {
    const torch::nn::Module& m = *item.value();
    if (m.as<torch::nn::Conv2dImpl>() || (m.as<torch::nn::LinearImpl>() && item.key() != "fc")) {
      names.push_back(item.key() + ".weight");
    }
  }
  return names;
}

}  // namespace

std::vector<ChannelGroup> ChannelGroups(const train::Model& model) {
  const train::ZooNetImpl& net = *model;
  GroupBuilder b;
  int cur = b.New("stem", OutChannels(*net.stem));
  b.ConvOut(cur, *net.stem, "stem", true);
  for (size_t i = 0; i < net.blocks.size(); ++i) {
    const train::InvertedResidualImpl& blk = *net.blocks[i];
    const std::string p = "blocks." + std::to_string(i);
    int e = cur;  // the channels the depthwise conv filters
    if (blk.expand) {
      b.ConvIn(cur, *blk.expand, p + ".expand");
      e = b.New(p + ".expanded", OutChannels(*blk.expand));
      b.ConvOut(e, *blk.expand, p + ".expand", true);
    }
    b.ConvOut(e, *blk.depthwise, p + ".depthwise", false);
    if (blk.se) {
      b.Tensor(e, p + ".se.fc1.weight", 1);
      b.Tensor(e, p + ".se.fc2.weight", 0);
      b.Tensor(e, p + ".se.fc2.bias", 0);
      const int s = b.New(p + ".squeeze", blk.se->fc1->options.out_channels());
      b.Tensor(s, p + ".se.fc1.weight", 0);
      b.Tensor(s, p + ".se.fc1.bias", 0);
      b.Tensor(s, p + ".se.fc2.weight", 1);
      b.groups[s].producers.push_back({p + ".se.fc1.weight", ""});
    }
    b.ConvIn(e, *blk.project, p + ".project");
    // A residual block adds its input: its output channels are its input's.
    const int o = blk.residual ? cur : b.New(p + ".out", OutChannels(*blk.project));
    b.ConvOut(o, *blk.project, p + ".project", true);
    if (static_cast<int>(i) == net.mask_tap && net.mask_conv) b.ConvIn(o, *net.mask_conv, "mask_conv");
    cur = o;
  }
  if (net.head_conv) {
    b.ConvIn(cur, *net.head_conv, "head_conv");
    cur = b.New("head", OutChannels(*net.head_conv));
    b.ConvOut(cur, *net.head_conv, "head_conv", true);
  }
  if (net.pre_logits) {
    b.Tensor(cur, net.pre_logits_reduce ? "pre_logits_reduce.weight" : "pre_logits.weight", 1);
    cur = b.New("hidden", net.pre_logits->options.out_features());
    b.Tensor(cur, "pre_logits.weight", 0);
    b.Tensor(cur, "pre_logits.bias", 0);
    b.groups[cur].producers.push_back({"pre_logits.weight", ""});
  }
  b.Tensor(cur, "fc.weight", 1);
  if (net.mask_conv) {
    const int m = b.New("mask", OutChannels(*net.mask_conv));
    b.ConvOut(m, *net.mask_conv, "mask_conv", true);
    b.Tensor(m, "mask_out.weight", 1);
  }
  return b.groups;
}

std::vector<double> ChannelImportance(const train::Model& model, const ChannelGroup& group) {
  torch::NoGradGuard no_grad;
  const FoldedWeights folded(model);
  torch::Tensor score = torch::zeros({group.channels}, torch::kDouble);
  for (const auto& p : group.producers) {
    const torch::Tensor l1 = folded.Magnitude(p.weight, p.batchnorm).flatten(1).sum(1);
    const double mean = l1.mean().item<double>();
    score += mean > 0 ? l1 / mean : l1;
  }
  return std::vector<double>(score.data_ptr<double>(), score.data_ptr<double>() + group.channels);
}

Result<train::Model> SliceChannels(const train::Model& model, const train::ModelSpec& spec,
                                   const std::map<std::string, std::vector<int64_t>>& keep) {
  ASSIGN_OR_RETURN(train::Model out, train::MakeModel(spec));
  // tensor name -> (axis, kept indices) of every group that indexes it
  std::map<std::string, std::vector<std::pair<int, torch::Tensor>>> slices;
  for (const ChannelGroup& g : ChannelGroups(model)) {
    auto it = keep.find(g.key);
    if (it == keep.end()) continue;
    for (int64_t i : it->second) {
      if (i < 0 || i >= g.channels) return Status::InvalidArgument("channel index out of range in group " + g.key);
    }
    torch::Tensor idx = torch::tensor(it->second, torch::kLong);
    for (const auto& m : g.members) slices[m.tensor].push_back({m.dim, idx});
  }
  const auto src = AllTensors(model);
  torch::NoGradGuard no_grad;
  auto fill = [&](const std::string& name, torch::Tensor& dst) -> Status {
    auto s = src.find(name);
    if (s == src.end()) return Status::InvalidArgument("the pruned spec has a tensor '" + name + "' the model lacks");
    torch::Tensor t = s->second.detach();
    auto sl = slices.find(name);
    if (sl != slices.end()) {
      for (const auto& [dim, idx] : sl->second) t = t.index_select(dim, idx);
    }
    if (t.sizes() != dst.sizes()) {
      return Status::InvalidArgument("pruned '" + name + "' does not fit the spec (" + std::to_string(t.numel()) +
                                     " values for " + std::to_string(dst.numel()) + ")");
    }
    dst.copy_(t);
    return Status::Ok();
  };
  for (auto& p : out->named_parameters()) RETURN_IF_ERROR(fill(p.key(), p.value()));
  for (auto& b : out->named_buffers()) RETURN_IF_ERROR(fill(b.key(), b.value()));
  out->train(model->is_training());
  return out;
}

Result<train::Model> PruneChannels(const train::Model& model, const ChannelPruneOptions& o, PruneReport* report) {
  if (!(o.ratio >= 0 && o.ratio < 0.95)) return Status::InvalidArgument("the prune ratio must be in [0, 0.95)");
  if (o.multiple < 1 || o.min_channels < 1) return Status::InvalidArgument("multiple and min_channels must be >= 1");
  const std::vector<ChannelGroup> groups = ChannelGroups(model);
  for (const std::string& k : o.skip) {
    if (std::none_of(groups.begin(), groups.end(), [&](const ChannelGroup& g) { return g.key == k; })) {
      return Status::InvalidArgument("no channel group '" + k + "' to skip (groups: stem, blocks.<i>.out, ...)");
    }
  }
  train::ModelSpec spec = model->spec();
  std::map<std::string, std::vector<int64_t>> keep;
  PruneReport rep;
  for (const ChannelGroup& g : groups) {
    int64_t n = g.channels;
    if (std::find(o.skip.begin(), o.skip.end(), g.key) == o.skip.end()) {
      n = static_cast<int64_t>(std::ceil(static_cast<double>(g.channels) * (1.0 - o.ratio) - 1e-9));
      n = (n + o.multiple - 1) / o.multiple * o.multiple;
      n = std::min(g.channels, std::max(n, o.min_channels));
    }
    const std::vector<double> score = ChannelImportance(model, g);
    std::vector<int64_t> order(g.channels);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return score[a] > score[b]; });
    order.resize(n);
    std::sort(order.begin(), order.end());
    keep[g.key] = order;
    spec.channels[g.key] = n;
    rep.groups.push_back({g.key, g.channels, n});
  }
  ASSIGN_OR_RETURN(train::Model out, SliceChannels(model, spec, keep));
  rep.params_before = train::CountParameters(*model);
  rep.params_after = train::CountParameters(*out);
  if (report != nullptr) *report = rep;
  return out;
}

Result<Masks> MagnitudeMasks(const train::Model& model, const MagnitudeOptions& o) {
  if (!(o.sparsity >= 0 && o.sparsity < 1)) return Status::InvalidArgument("sparsity must be in [0, 1)");
  torch::NoGradGuard no_grad;
  const std::vector<std::string> names = PrunableWeights(model);
  // The BatchNorm after each conv (the groups' producers name it), folded into its magnitudes.
  std::map<std::string, std::string> bn_of;
  for (const ChannelGroup& g : ChannelGroups(model)) {
    for (const auto& p : g.producers) bn_of[p.weight] = p.batchnorm;
  }
  const FoldedWeights weights(model);
  auto folded = [&](const std::string& n) {
    auto it = bn_of.find(n);
    return weights.Magnitude(n, it == bn_of.end() ? "" : it->second);
  };
  // LAMP (Lee et al., ICLR 2021): a weight's score is its square over the sum of the squares of the
  // weights of its layer that are not smaller. Scale-free per layer, so one threshold can be shared,
  // and each layer's largest weight scores 1: no layer is emptied.
  auto lamp = [](const torch::Tensor& magnitude) {
    const torch::Tensor sq = magnitude.flatten().pow(2);
    auto [sorted, order] = sq.sort();
    const torch::Tensor suffix = sorted.flip(0).cumsum(0).flip(0);
    const torch::Tensor score = sorted / suffix.clamp_min(1e-300);
    return torch::empty_like(score).scatter_(0, order, score).view(magnitude.sizes());
  };
  // The k-th smallest of `values` (k = floor(sparsity * n)); -1 when nothing is pruned.
  auto threshold = [&](const torch::Tensor& values) {
    const int64_t k = static_cast<int64_t>(std::floor(o.sparsity * static_cast<double>(values.numel())));
    if (k < 1) return -1.0;
    return std::get<0>(values.flatten().kthvalue(k)).item<double>();
  };
  std::map<std::string, torch::Tensor> score;
  for (const auto& n : names) score[n] = o.global ? lamp(folded(n)) : folded(n);
  double global = -1;
  if (o.global) {
    std::vector<torch::Tensor> flat;
    for (const auto& n : names) flat.push_back(score[n].flatten());
    global = threshold(torch::cat(flat));
  }
  Masks masks;
  for (const auto& n : names) {
    const double t = o.global ? global : threshold(score[n]);
    masks[n] = (score[n] > t).to(torch::kFloat);
  }
  return masks;
}

void ApplyMasks(train::Model& model, const Masks& masks) {
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    auto it = masks.find(p.key());
    if (it != masks.end()) p.value().mul_(it->second.to(p.value().device()));
  }
}

double MaskedSparsity(const train::Model& model, const Masks& masks) {
  torch::NoGradGuard no_grad;
  int64_t zeros = 0, total = 0;
  for (const auto& p : model->named_parameters()) {
    if (!masks.count(p.key())) continue;
    zeros += (p.value() == 0).sum().item<int64_t>();
    total += p.value().numel();
  }
  return total ? static_cast<double>(zeros) / static_cast<double>(total) : 0.0;
}

}  // namespace deepscan::compress
