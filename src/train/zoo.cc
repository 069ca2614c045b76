#include "train/zoo.h"

#include "infer/classifier.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>

#include <torch/nn/functional/padding.h>
#include <torch/nn/init.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <nlohmann/json.hpp>

namespace deepscan::train {
namespace {

// torchvision's _make_divisible: nearest multiple of `divisor` (at least `divisor`), never more
// than 10% below `v`.
int64_t MakeDivisible(double v, int64_t divisor = 8) {
  int64_t new_v = std::max<int64_t>(divisor, static_cast<int64_t>(v + divisor / 2.0) / divisor * divisor);
  if (static_cast<double>(new_v) < 0.9 * v) new_v += divisor;
  return new_v;
}

torch::Tensor Activate(const torch::Tensor& x, Act act) {
  switch (act) {
    case Act::kNone: return x;
    case Act::kRelu: return torch::relu(x);
    case Act::kHardSwish: return torch::hardswish(x);
    case Act::kSilu: return torch::silu(x);
    case Act::kRelu6: return torch::hardtanh(x, 0.0, 6.0);
  }
  return x;
}

// One depthwise-separable block of MobileNet v1 (Howard et al. 2017, Table 1): pointwise output
// channels and the depthwise stride, before width scaling.
struct SeparableRow {
  int out, stride;
};

constexpr SeparableRow kMobileNetV1[] = {
    {64, 1},  {128, 2}, {128, 1}, {256, 2}, {256, 1},  {512, 2},  {512, 1},
    {512, 1}, {512, 1}, {512, 1}, {512, 1}, {1024, 2}, {1024, 1},
};
constexpr int kMobileNetV1S16Blocks = 11;  // the last block at stride 16
// The mask head's hidden channels on MobileNet v1: its 512-channel tap would otherwise make a
// 2.4 M-parameter 3x3 conv, more than the shipped-size budget leaves.
constexpr int64_t kMobileNetV1MaskChannels = 64;

bool IsMobileNetV1(const std::string& arch) { return arch == "mobilenetv1" || arch == "mobilenetv1_s16"; }

// One row of a MobileNetV3 table (Howard et al. 2019, Tables 1 and 2), before width scaling.
struct Bneck {
  int in, kernel, expanded, out;
  bool se;
  bool hard_swish;
  int stride;
};

constexpr Bneck kMobileNetV3Small[] = {
    {16, 3, 16, 16, true, false, 2}, {16, 3, 72, 24, false, false, 2}, {24, 3, 88, 24, false, false, 1},
    {24, 5, 96, 40, true, true, 2},  {40, 5, 240, 40, true, true, 1},  {40, 5, 240, 40, true, true, 1},
    {40, 5, 120, 48, true, true, 1}, {48, 5, 144, 48, true, true, 1},  {48, 5, 288, 96, true, true, 2},
    {96, 5, 576, 96, true, true, 1}, {96, 5, 576, 96, true, true, 1},
};

constexpr Bneck kMobileNetV3Large[] = {
    {16, 3, 16, 16, false, false, 1},  {16, 3, 64, 24, false, false, 2},  {24, 3, 72, 24, false, false, 1},
    {24, 5, 72, 40, true, false, 2},   {40, 5, 120, 40, true, false, 1},  {40, 5, 120, 40, true, false, 1},
    {40, 3, 240, 80, false, true, 2},  {80, 3, 200, 80, false, true, 1},  {80, 3, 184, 80, false, true, 1},
    {80, 3, 184, 80, false, true, 1},  {80, 3, 480, 112, true, true, 1},  {112, 3, 672, 112, true, true, 1},
    {112, 5, 672, 160, true, true, 2}, {160, 5, 960, 160, true, true, 1}, {160, 5, 960, 160, true, true, 1},
};

// One EfficientNet-B0 stage (Tan & Le 2019, Table 1), before width scaling.
struct MbStage {
  int expand_ratio, kernel, stride, in, out, layers;
};

constexpr MbStage kEfficientNetB0[] = {
    {1, 3, 1, 32, 16, 1},  {6, 3, 2, 16, 24, 2},   {6, 5, 2, 24, 40, 2},   {6, 3, 2, 40, 80, 3},
    {6, 5, 1, 80, 112, 3}, {6, 5, 2, 112, 192, 4}, {6, 3, 1, 192, 320, 1},
};

// The stages of "mobilenetv3_nas" (MobileNetV3-Small's, Table 2): output channels and stride of
// each stage's first block, before width scaling; the stem gives 16 channels.
struct NasStage {
  int out, stride;
};
constexpr NasStage kNasStageTable[kNasStages] = {{16, 2}, {24, 2}, {40, 2}, {48, 1}, {96, 2}};
constexpr int kNasStemChannels = 16;

std::string JoinNames(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

Status ValidateNas(const NasSpec& n) {
  auto size_ok = [](size_t size, const char* field) {
    return size == static_cast<size_t>(kNasStages)
               ? Status::Ok()
               : Status::InvalidArgument(std::string("nas.") + field + " needs " + std::to_string(kNasStages) +
                                         " entries (one per stage), not " + std::to_string(size));
  };
  RETURN_IF_ERROR(size_ok(n.depth.size(), "depth"));
  RETURN_IF_ERROR(size_ok(n.kernel.size(), "kernel"));
  RETURN_IF_ERROR(size_ok(n.expand.size(), "expand"));
  RETURN_IF_ERROR(size_ok(n.se.size(), "se"));
  RETURN_IF_ERROR(size_ok(n.act.size(), "act"));
  for (int i = 0; i < kNasStages; ++i) {
    std::string at = "[";  // (built by appends: GCC 12 warns wrongly (-Wrestrict) on "[" + std::string)
    at += std::to_string(i);
    at += "] = ";
    if (n.depth[i] < 1 || n.depth[i] > 6) {
      return Status::InvalidArgument("nas.depth" + at + std::to_string(n.depth[i]) + " is outside [1, 6]");
    }
    if (n.kernel[i] != 3 && n.kernel[i] != 5 && n.kernel[i] != 7) {
      return Status::InvalidArgument("nas.kernel" + at + std::to_string(n.kernel[i]) + " is not 3, 5 or 7");
    }
    if (!(n.expand[i] >= 1.0f && n.expand[i] <= 8.0f)) {
      return Status::InvalidArgument("nas.expand" + at + std::to_string(n.expand[i]) + " is outside [1, 8]");
    }
    if (n.act[i] != "relu" && n.act[i] != "hswish") {
      return Status::InvalidArgument("nas.act" + at + "\"" + n.act[i] + "\" is not \"relu\" or \"hswish\"");
    }
  }
  return Status::Ok();
}

}  // namespace

std::vector<std::string> KnownArchs() {
  return {"mobilenetv3_small", "mobilenetv3_large", "efficientnet_b0",
          "mobilenetv1",       "mobilenetv1_s16",   "mobilenetv3_nas"};
}

std::pair<int64_t, int64_t> TfSamePadding(int64_t size, int64_t kernel, int64_t stride) {
  const int64_t out = (size + stride - 1) / stride;
  const int64_t total = std::max<int64_t>(0, (out - 1) * stride + kernel - size);
  return {total / 2, total - total / 2};
}

Status ValidateModelSpec(const ModelSpec& spec) {
  const auto archs = KnownArchs();
  if (std::find(archs.begin(), archs.end(), spec.arch) == archs.end()) {
    return Status::InvalidArgument("unknown arch '" + spec.arch + "' (" + JoinNames(archs) + ")");
  }
  if (spec.arch == "mobilenetv3_nas") RETURN_IF_ERROR(ValidateNas(spec.nas));
  if (!(spec.width > 0.1f && spec.width <= 4.0f)) return Status::InvalidArgument("width must be in (0.1, 4]");
  if (spec.input_size < 32 || spec.input_size > 1024)
    return Status::InvalidArgument("input_size must be in [32, 1024]");
  if (!(spec.dropout >= 0.0f && spec.dropout < 1.0f)) return Status::InvalidArgument("dropout must be in [0, 1)");
  if (!(spec.drop_path >= 0.0f && spec.drop_path < 1.0f)) return Status::InvalidArgument("drop_path must be in [0, 1)");
  if (spec.mask_stride != 8 && spec.mask_stride != 16) return Status::InvalidArgument("mask_stride must be 8 or 16");
  return Status::Ok();
}

// ---- building blocks ----------------------------------------------------------------------

ConvBnActImpl::ConvBnActImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups, Act act,
                             double bn_eps, double bn_momentum, bool tf_same, const std::vector<int64_t>& rank)
    : act(act), tf_same(tf_same) {
  if (!rank.empty() && (groups != 1 || rank.size() > 2 || rank.front() < 1 || rank.back() < 1)) {
    throw std::invalid_argument("a factorised conv needs groups 1 and one or two ranks >= 1");
  }
  auto plain = [](int64_t i, int64_t o) {
    return torch::nn::Conv2d(torch::nn::Conv2dOptions(i, o, 1).bias(false));
  };
  const int64_t core_in = rank.empty() ? in : rank[0];
  const int64_t core_out = rank.size() == 2 ? rank[1] : out;
  if (!rank.empty()) reduce = register_module("reduce", plain(in, rank[0]));
  conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(core_in, core_out, kernel)
                                                       .stride(stride)
                                                       .padding(tf_same ? 0 : (kernel - 1) / 2)
                                                       .groups(groups)
                                                       .bias(false)));
  if (rank.size() == 2) restore = register_module("restore", plain(rank[1], out));
  bn = register_module("bn",
                       torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).eps(bn_eps).momentum(bn_momentum)));
}

namespace {

// Per output channel, symmetric: the grid of compress::QuantizeStatic's int8 weights.
torch::Tensor FakeQuantWeight(const torch::Tensor& w) {
  const torch::Tensor amax = w.detach().abs().flatten(1).amax(1).clamp_min(1e-12).to(torch::kFloat);
  const torch::Tensor zero = torch::zeros({w.size(0)}, torch::TensorOptions().dtype(torch::kInt));
  return torch::fake_quantize_per_channel_affine(w, amax / 127.0, zero, 0, -127, 127);
}

// Per tensor, uint8 asymmetric over the running range (which always holds 0, as QuantizeStatic's).
torch::Tensor FakeQuantOutput(const torch::Tensor& y, FakeQuant* q, bool training) {
  if (training) {
    torch::NoGradGuard no_grad;
    const torch::Tensor lo = y.detach().min().clamp_max(0), hi = y.detach().max().clamp_min(0);
    q->lo = q->lo.defined() ? q->lo + q->momentum * (lo - q->lo) : lo;
    q->hi = q->hi.defined() ? q->hi + q->momentum * (hi - q->hi) : hi;
  }
  if (!q->lo.defined()) return y;
  const double lo = q->lo.item<double>(), hi = q->hi.item<double>();
  if (hi - lo <= 1e-12) return y;
  const double scale = (hi - lo) / 255.0;
  const auto zero_point = static_cast<int64_t>(std::clamp(std::nearbyint(-lo / scale), 0.0, 255.0));
  return torch::fake_quantize_per_tensor_affine(y, scale, zero_point, 0, 255);
}

torch::Tensor RunConv(torch::nn::Conv2d& conv, const torch::Tensor& x, bool fake_quant) {
  if (!fake_quant) return conv(x);
  const auto& o = conv->options;
  const auto* pad = c10::get_if<torch::ExpandingArray<2>>(&o.padding());
  return torch::conv2d(x, FakeQuantWeight(conv->weight), conv->bias, *o.stride(),
                       pad ? torch::IntArrayRef(**pad) : torch::IntArrayRef({0, 0}), *o.dilation(), o.groups());
}

}  // namespace

torch::Tensor ConvBnActImpl::forward(const torch::Tensor& input) {
  const bool fq = fake_quant != nullptr && fake_quant->weights;
  const torch::Tensor x = reduce ? RunConv(reduce, input, fq) : input;
  torch::Tensor z;
  if (tf_same) {
    const auto& o = conv->options;
    const auto [top, bottom] = TfSamePadding(x.size(2), (*o.kernel_size())[0], (*o.stride())[0]);
    const auto [left, right] = TfSamePadding(x.size(3), (*o.kernel_size())[1], (*o.stride())[1]);
    namespace F = torch::nn::functional;
    z = RunConv(conv, F::pad(x, F::PadFuncOptions({left, right, top, bottom})), fq);
  } else {
    z = RunConv(conv, x, fq);
  }
  if (restore) z = RunConv(restore, z, fq);
  if (record != nullptr) {
    torch::NoGradGuard no_grad;
    const torch::Tensor d = z.detach().to(torch::kDouble);
    const torch::Tensor sum = d.sum({0, 2, 3}), sum_sq = (d * d).sum({0, 2, 3});
    record->sum = record->sum.defined() ? record->sum + sum : sum;
    record->sum_sq = record->sum_sq.defined() ? record->sum_sq + sum_sq : sum_sq;
    record->count += z.size(0) * z.size(2) * z.size(3);
  }
  torch::Tensor y = Activate(bn(z), act);
  if (fake_quant != nullptr && fake_quant->activations) y = FakeQuantOutput(y, fake_quant, is_training());
  return y;
}

SqueezeExciteImpl::SqueezeExciteImpl(int64_t channels, int64_t squeeze, Act inner, bool hard_gate)
    : inner(inner), hard_gate(hard_gate) {
  fc1 = register_module("fc1", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, squeeze, 1)));
  fc2 = register_module("fc2", torch::nn::Conv2d(torch::nn::Conv2dOptions(squeeze, channels, 1)));
}

torch::Tensor SqueezeExciteImpl::forward(const torch::Tensor& x) {
  torch::Tensor s = x.mean({2, 3}, /*keepdim=*/true);
  s = fc2(Activate(fc1(s), inner));
  return x * (hard_gate ? torch::hardsigmoid(s) : torch::sigmoid(s));
}

InvertedResidualImpl::InvertedResidualImpl(const BlockConfig& c)
    : residual(c.residual), drop_path(c.drop_path), stride(c.stride) {
  if (c.residual && c.in != c.out) throw std::invalid_argument("a residual block needs in == out channels");
  if (!c.has_expand && c.expanded != c.in) throw std::invalid_argument("a block without expansion needs expanded == in");
  if (c.has_expand) {
    expand = register_module("expand", ConvBnAct(c.in, c.expanded, 1, 1, 1, c.act, c.bn_eps, c.bn_momentum, false,
                                                 c.expand_rank));
  }
  depthwise = register_module("depthwise", ConvBnAct(c.expanded, c.expanded, c.kernel, c.stride, c.expanded, c.act,
                                                     c.bn_eps, c.bn_momentum, c.tf_same && c.stride > 1));
  if (c.squeeze > 0) se = register_module("se", SqueezeExcite(c.expanded, c.squeeze, c.se_inner, c.hard_gate));
  project = register_module("project", ConvBnAct(c.expanded, c.out, 1, 1, 1, c.project_act, c.bn_eps, c.bn_momentum,
                                                 false, c.project_rank));
}

torch::Tensor InvertedResidualImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = expand ? expand(x) : x;
  y = depthwise(y);
  if (se) y = se(y);
  y = project(y);
  if (!residual) return y;
  if (is_training() && drop_path > 0.0) {
    // Stochastic depth, "row" mode: drop the whole branch per sample, rescale the survivors.
    const double keep = 1.0 - drop_path;
    torch::Tensor noise = torch::empty({y.size(0), 1, 1, 1}, y.options()).bernoulli_(keep).div_(keep);
    y = y * noise;
  }
  return y + x;
}

// ---- the network ----------------------------------------------------------------------------

ZooNetImpl::ZooNetImpl(const ModelSpec& spec) : spec_(spec) {
  const double w = spec.width;
  auto ch = [w](int c) { return MakeDivisible(c * w); };
  block_list_ = register_module("blocks", torch::nn::ModuleList());
  std::vector<BlockConfig> configs;
  const bool mobilenet = spec.arch != "efficientnet_b0";  // v1 and v3 (Keras/TF BatchNorm settings)
  const bool v1 = IsMobileNetV1(spec.arch);
  const double bn_eps = mobilenet ? 1e-3 : 1e-5;
  const double bn_momentum = mobilenet ? 0.01 : 0.1;
  int64_t head_in = 0, head_out = 0, hidden = 0, stem_out = 0;
  Act stem_act = Act::kRelu;
  if (v1) {
    const int rows = spec.arch == "mobilenetv1_s16" ? kMobileNetV1S16Blocks : static_cast<int>(std::size(kMobileNetV1));
    int64_t in = ch(32);
    for (int i = 0; i < rows; ++i) {
      BlockConfig c;
      c.in = in;
      c.expanded = in;  // no expansion: depthwise then pointwise
      c.out = ch(kMobileNetV1[i].out);
      c.kernel = 3;
      c.stride = kMobileNetV1[i].stride;
      c.act = Act::kRelu6;
      c.project_act = Act::kRelu6;
      c.allow_residual = false;
      c.tf_same = true;
      configs.push_back(c);
      in = c.out;
    }
    stem_out = ch(32);
    stem_act = Act::kRelu6;
  } else if (spec.arch == "mobilenetv3_nas") {
    int64_t in = ch(kNasStemChannels);
    for (int stage = 0; stage < kNasStages; ++stage) {
      for (int layer = 0; layer < spec.nas.depth[stage]; ++layer) {
        BlockConfig c;
        c.in = in;
        c.out = ch(kNasStageTable[stage].out);
        // Ratio 1 (expanded == in): no expansion conv, as Small's first block.
        c.expanded = std::max(c.in, MakeDivisible(static_cast<double>(c.in) * spec.nas.expand[stage]));
        c.kernel = spec.nas.kernel[stage];
        c.stride = layer == 0 ? kNasStageTable[stage].stride : 1;
        c.squeeze = spec.nas.se[stage] ? MakeDivisible(static_cast<double>(c.expanded / 4)) : 0;
        c.act = spec.nas.act[stage] == "hswish" ? Act::kHardSwish : Act::kRelu;
        c.se_inner = Act::kRelu;
        c.hard_gate = true;
        configs.push_back(c);
        in = c.out;
      }
    }
    head_out = 6 * configs.back().out;
    hidden = ch(1024);
    stem_out = configs.front().in;
    stem_act = Act::kHardSwish;
  } else if (mobilenet) {
    const bool small = spec.arch == "mobilenetv3_small";
    const Bneck* table = small ? kMobileNetV3Small : kMobileNetV3Large;
    const size_t rows = small ? std::size(kMobileNetV3Small) : std::size(kMobileNetV3Large);
    for (size_t i = 0; i < rows; ++i) {
      const Bneck& b = table[i];
      BlockConfig c;
      c.in = ch(b.in);
      c.expanded = ch(b.expanded);
      c.out = ch(b.out);
      c.kernel = b.kernel;
      c.stride = b.stride;
      c.squeeze = b.se ? MakeDivisible(static_cast<double>(c.expanded / 4)) : 0;
      c.act = b.hard_swish ? Act::kHardSwish : Act::kRelu;
      c.se_inner = Act::kRelu;
      c.hard_gate = true;
      configs.push_back(c);
    }
    head_out = 6 * configs.back().out;
    hidden = ch(small ? 1024 : 1280);
    stem_out = configs.front().in;
    stem_act = Act::kHardSwish;
  } else {
    for (const MbStage& s : kEfficientNetB0) {
      for (int layer = 0; layer < s.layers; ++layer) {
        BlockConfig c;
        c.in = layer == 0 ? ch(s.in) : ch(s.out);
        c.out = ch(s.out);
        c.expanded = MakeDivisible(static_cast<double>(c.in) * s.expand_ratio);
        c.kernel = s.kernel;
        c.stride = layer == 0 ? s.stride : 1;
        c.squeeze = std::max<int64_t>(1, c.in / 4);
        c.act = Act::kSilu;
        c.se_inner = Act::kSilu;
        c.hard_gate = false;
        configs.push_back(c);
      }
    }
    head_out = 4 * configs.back().out;
    stem_out = configs.front().in;
    stem_act = Act::kSilu;
  }
  // The block shapes, from the unpruned table; then the overrides of a compressed model.
  for (BlockConfig& c : configs) {
    c.has_expand = c.expanded != c.in;
    c.residual = c.allow_residual && c.stride == 1 && c.in == c.out;
  }
  std::set<std::string> used;  // override keys this architecture read
  auto over = [&spec, &used](const std::string& key, int64_t v) {
    used.insert(key);
    auto it = spec.channels.find(key);
    if (it != spec.channels.end() && it->second < 1) throw std::invalid_argument("channels of " + key + " must be >= 1");
    return it == spec.channels.end() ? v : it->second;
  };
  auto rank = [&spec, &used](const std::string& key) {
    used.insert(key);
    auto it = spec.ranks.find(key);
    return it == spec.ranks.end() ? std::vector<int64_t>{} : it->second;
  };
  stem_out = over("stem", stem_out);
  int64_t prev = stem_out;
  for (size_t i = 0; i < configs.size(); ++i) {
    BlockConfig& c = configs[i];
    const std::string key = "blocks." + std::to_string(i);
    c.in = prev;
    c.expanded = c.has_expand ? over(key + ".expanded", c.expanded) : c.in;
    c.out = c.residual ? c.in : over(key + ".out", c.out);
    if (c.squeeze > 0) c.squeeze = over(key + ".squeeze", c.squeeze);
    c.expand_rank = rank(key + ".expand");
    c.project_rank = rank(key + ".project");
    prev = c.out;
  }
  head_in = prev;
  if (head_out > 0) head_out = over("head", head_out);
  if (hidden > 0) hidden = over("hidden", hidden);
  stem = register_module("stem", ConvBnAct(3, stem_out, 3, 2, 1, stem_act, bn_eps, bn_momentum, /*tf_same=*/v1,
                                           rank("stem")));
  int64_t stride = 2;  // after the stem
  for (size_t i = 0; i < configs.size(); ++i) {
    BlockConfig& c = configs[i];
    c.bn_eps = bn_eps;
    c.bn_momentum = bn_momentum;
    c.drop_path = spec.drop_path * static_cast<double>(i) / static_cast<double>(configs.size());
    InvertedResidual block(c);
    block_list_->push_back(block);
    blocks.push_back(block);
    stride *= c.stride;
    if (stride == spec.mask_stride) mask_tap = static_cast<int>(i);
  }
  int64_t fc_in = head_in;
  if (head_out > 0) {
    head_conv = register_module("head_conv", ConvBnAct(head_in, head_out, 1, 1, 1,
                                                       mobilenet ? Act::kHardSwish : Act::kSilu, bn_eps, bn_momentum,
                                                       false, rank("head_conv")));
    fc_in = head_out;
  }
  if (hidden > 0) {
    const std::vector<int64_t> r = rank("pre_logits");
    if (r.size() > 1 || (r.size() == 1 && r[0] < 1)) throw std::invalid_argument("pre_logits takes one rank >= 1");
    int64_t pre_in = head_out;
    if (!r.empty()) {
      pre_logits_reduce =
          register_module("pre_logits_reduce", torch::nn::Linear(torch::nn::LinearOptions(head_out, r[0]).bias(false)));
      pre_in = r[0];
    }
    pre_logits = register_module("pre_logits", torch::nn::Linear(pre_in, hidden));
    fc_in = hidden;
  }
  dropout = register_module("dropout", torch::nn::Dropout(torch::nn::DropoutOptions(spec.dropout)));
  fc = register_module("fc", torch::nn::Linear(fc_in, 1));
  if (spec.mask_head) {
    const int64_t tap_channels = configs[mask_tap].out;
    const int64_t mid = over("mask", v1 ? kMobileNetV1MaskChannels : std::max<int64_t>(16, tap_channels));
    mask_conv = register_module("mask_conv", ConvBnAct(tap_channels, mid, 3, 1, 1, Act::kRelu, bn_eps, bn_momentum,
                                                       false, rank("mask_conv")));
    mask_out = register_module("mask_out", torch::nn::Conv2d(torch::nn::Conv2dOptions(mid, 1, 1)));
  }
  used.insert({"mask", "mask_conv"});  // a spec may drop the mask head of a compressed model
  for (const auto& [key, v] : spec.channels) {
    if (!used.count(key)) throw std::invalid_argument("no channel count '" + key + "' in this architecture");
  }
  for (const auto& [key, v] : spec.ranks) {
    if (!used.count(key)) throw std::invalid_argument("no factorisable layer '" + key + "' in this architecture");
  }

  // The references' initialisation.
  torch::NoGradGuard no_grad;
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* conv = m->as<torch::nn::Conv2dImpl>()) {
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut);
      if (conv->bias.defined()) torch::nn::init::zeros_(conv->bias);
    } else if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) {
      torch::nn::init::ones_(bn->weight);
      torch::nn::init::zeros_(bn->bias);
    } else if (auto* linear = m->as<torch::nn::LinearImpl>()) {
      if (mobilenet) {
        torch::nn::init::normal_(linear->weight, 0.0, 0.01);
      } else {
        const double range = 1.0 / std::sqrt(static_cast<double>(linear->options.out_features()));
        torch::nn::init::uniform_(linear->weight, -range, range);
      }
      if (linear->bias.defined()) torch::nn::init::zeros_(linear->bias);
    }
  }
  if (v1 && mask_out) {
    // The mask logits start small, like the linear heads': Kaiming fan-out on a 1-channel output
    // gives logits of std ~8 whose gradients would first shake a pretrained trunk (train --init).
    torch::nn::init::normal_(mask_out->weight, 0.0, 0.01);
  }
}

torch::Tensor ZooNetImpl::Trunk(const torch::Tensor& input, torch::Tensor* tap) {
  torch::Tensor x = stem(input);
  for (size_t i = 0; i < blocks.size(); ++i) {
    x = blocks[i](x);
    if (tap != nullptr && static_cast<int>(i) == mask_tap) *tap = x;
  }
  if (head_conv) x = head_conv(x);
  return x.mean({2, 3});
}

torch::Tensor ZooNetImpl::Features(const torch::Tensor& input) { return Trunk(input, nullptr); }

ModelOutput ZooNetImpl::forward(const torch::Tensor& input) {
  torch::Tensor tap;
  torch::Tensor x = Trunk(input, &tap);
  if (pre_logits_reduce) x = pre_logits_reduce(x);
  if (pre_logits) x = torch::hardswish(pre_logits(x));
  ModelOutput out;
  out.logit = fc(dropout(x));
  if (mask_conv) out.mask_logit = mask_out(mask_conv(tap));
  return out;
}

void CopyWeights(Model& from, Model& to) {
  torch::NoGradGuard g;
  auto src = from->named_parameters();
  for (auto& p : to->named_parameters()) p.value().copy_(src[p.key()]);
  auto sbuf = from->named_buffers();
  for (auto& b : to->named_buffers()) b.value().copy_(sbuf[b.key()]);
}

Result<Model> MakeModel(const ModelSpec& spec) {
  RETURN_IF_ERROR(ValidateModelSpec(spec));
  try {
    return Model(spec);
  } catch (const std::exception& e) {  // channel / rank overrides that do not fit (std::invalid_argument, c10::Error)
    return Status::InvalidArgument("the model's channel or rank overrides do not fit " + spec.arch + ": " + e.what());
  }
}

int64_t CountParameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) {
    if (p.requires_grad()) n += p.numel();
  }
  return n;
}

// ---- serialisation --------------------------------------------------------------------------

std::string ModelSpecToJson(const ModelSpec& spec) {
  nlohmann::json j = {{"arch", spec.arch},
                      {"width", spec.width},
                      {"input_size", spec.input_size},
                      {"mask_head", spec.mask_head},
                      {"dropout", spec.dropout},
                      {"drop_path", spec.drop_path},
                      {"mask_stride", spec.mask_stride}};
  if (!spec.channels.empty()) j["channels"] = spec.channels;
  if (!spec.ranks.empty()) j["ranks"] = spec.ranks;
  if (spec.arch == "mobilenetv3_nas") {
    j["nas"] = {{"depth", spec.nas.depth},
                {"kernel", spec.nas.kernel},
                {"expand", spec.nas.expand},
                {"se", spec.nas.se},
                {"act", spec.nas.act}};
  }
  return j.dump();
}

Result<ModelSpec> ModelSpecFromJson(const std::string& json) {
  ModelSpec spec;
  try {
    nlohmann::json j = nlohmann::json::parse(json);
    spec.arch = j.at("arch").get<std::string>();
    spec.width = j.value("width", spec.width);
    spec.input_size = j.at("input_size").get<int>();
    spec.mask_head = j.value("mask_head", spec.mask_head);
    spec.dropout = j.value("dropout", spec.dropout);
    spec.drop_path = j.value("drop_path", spec.drop_path);
    spec.mask_stride = j.value("mask_stride", spec.mask_stride);
    if (j.contains("channels")) spec.channels = j["channels"].get<std::map<std::string, int64_t>>();
    if (j.contains("ranks")) spec.ranks = j["ranks"].get<std::map<std::string, std::vector<int64_t>>>();
    if (j.contains("nas")) {
      if (spec.arch != "mobilenetv3_nas") {
        return Status::InvalidArgument("\"nas\" is read by arch mobilenetv3_nas only (this spec's arch is " +
                                       spec.arch + ")");
      }
      const nlohmann::json& n = j["nas"];
      if (!n.is_object()) return Status::InvalidArgument("\"nas\" must be an object {depth, kernel, expand, se, act}");
      for (auto it = n.begin(); it != n.end(); ++it) {
        const std::string& k = it.key();
        if (k == "depth") {
          spec.nas.depth = it->get<std::vector<int>>();
        } else if (k == "kernel") {
          spec.nas.kernel = it->get<std::vector<int>>();
        } else if (k == "expand") {
          spec.nas.expand = it->get<std::vector<float>>();
        } else if (k == "se") {
          spec.nas.se = it->get<std::vector<bool>>();
        } else if (k == "act") {
          spec.nas.act = it->get<std::vector<std::string>>();
        } else {
          return Status::InvalidArgument("unknown nas field '" + k + "' (depth, kernel, expand, se, act)");
        }
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidModel(std::string("malformed model spec: ") + e.what());
  }
  RETURN_IF_ERROR(ValidateModelSpec(spec));
  return spec;
}

Status SaveCheckpoint(const Model& model, const std::string& path) {
  try {
    torch::serialize::OutputArchive archive;
    model->save(archive);
    archive.write("deepscan_spec", c10::IValue(ModelSpecToJson(model->spec())));
    archive.save_to(path);
  } catch (const std::exception& e) {
    return Status::IoError("cannot write checkpoint " + path + ": " + e.what());
  }
  return Status::Ok();
}

Result<Model> LoadCheckpoint(const std::string& path, const ModelSpec* spec) {
  if (!std::filesystem::is_regular_file(path)) return Status::NotFound("checkpoint not found: " + path);
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const std::exception& e) {
    return Status::InvalidModel("cannot read checkpoint " + path + ": " + e.what());
  }
  ModelSpec use;
  if (spec != nullptr) {
    use = *spec;
  } else {
    c10::IValue stored;
    if (!archive.try_read("deepscan_spec", stored) || !stored.isString()) {
      return Status::InvalidModel(path + ": checkpoint carries no model spec; pass one");
    }
    ASSIGN_OR_RETURN(use, ModelSpecFromJson(stored.toStringRef()));
  }
  ASSIGN_OR_RETURN(Model model, MakeModel(use));
  // InputArchive replaces tensors wholesale (shape included): record the expected shapes first.
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& p : model->named_parameters()) shapes[p.key()] = p.value().sizes().vec();
  for (const auto& b : model->named_buffers()) shapes[b.key()] = b.value().sizes().vec();
  try {
    model->load(archive);
  } catch (const std::exception& e) {
    return Status::InvalidModel(path + ": weights do not fit " + use.arch + ": " + e.what());
  }
  auto check = [&](const std::string& key, const torch::Tensor& t) -> Status {
    if (t.sizes().vec() != shapes[key]) {
      return Status::InvalidModel(path + ": '" + key + "' has a shape that does not fit " + use.arch + " at width " +
                                  std::to_string(use.width));
    }
    return Status::Ok();
  };
  for (const auto& p : model->named_parameters()) RETURN_IF_ERROR(check(p.key(), p.value()));
  for (const auto& b : model->named_buffers()) RETURN_IF_ERROR(check(b.key(), b.value()));
  return model;
}

Status WriteModelMetadata(const std::string& json_path, const infer::ModelMetadata& meta, const ModelSpec& spec) {
  if (meta.input_size != spec.input_size) {
    return Status::InvalidArgument("metadata input_size " + std::to_string(meta.input_size) +
                                   " differs from the model's " + std::to_string(spec.input_size));
  }
  nlohmann::json j = nlohmann::json::parse(infer::ModelMetadataToJson(meta));
  j["architecture"] = nlohmann::json::parse(ModelSpecToJson(spec));
  std::ofstream out(json_path);
  out << j.dump(2) << "\n";
  if (!out) return Status::IoError("cannot write " + json_path);
  return Status::Ok();
}

Result<ModelSpec> ReadModelSpec(const std::string& json_path) {
  std::ifstream in(json_path);
  if (!in) return Status::InvalidModel("model metadata not found: " + json_path);
  std::string arch;
  try {
    nlohmann::json j = nlohmann::json::parse(in);
    if (!j.contains("architecture")) {
      return Status::InvalidModel(json_path + ": no \"architecture\" entry (not a deepscan zoo model)");
    }
    arch = j["architecture"].dump();
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidModel(json_path + ": malformed metadata: " + e.what());
  }
  auto spec = ModelSpecFromJson(arch);
  if (!spec.ok()) return Status::InvalidModel(json_path + ": " + spec.status().message());
  return spec;
}

Result<std::vector<float>> MaskMaxLogits(const torch::Tensor& mask_logit) {
  if (!mask_logit.defined() || mask_logit.dim() < 2 || mask_logit.numel() == 0) {
    return Status::InvalidModel("no mask head output to score by");
  }
  const torch::Tensor heat = torch::sigmoid(mask_logit).reshape({mask_logit.size(0), -1}).to(torch::kCPU).contiguous();
  const size_t cells = static_cast<size_t>(heat.size(1));
  std::vector<float> out(static_cast<size_t>(heat.size(0)));
  for (size_t r = 0; r < out.size(); ++r) out[r] = infer::MaskMaxLogit(heat.data_ptr<float>() + r * cells, cells);
  return out;
}

}  // namespace deepscan::train
