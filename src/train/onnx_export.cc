#include "train/onnx_export.h"

#include <cmath>
#include <map>
#include <tuple>
#include <vector>

#include <torch/nn/utils.h>

#include "infer/onnx_graph.h"

namespace deepscan::train {
namespace {

using infer::OnnxAttr;

std::vector<float> ToVector(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat).contiguous();
  const float* p = c.data_ptr<float>();
  return std::vector<float>(p, p + c.numel());
}

std::vector<int64_t> Shape(const torch::Tensor& t) { return t.sizes().vec(); }

OnnxAttr IntsAttr(const std::string& name, std::vector<int64_t> values) {
  OnnxAttr a;
  a.name = name;
  a.ints = std::move(values);
  return a;
}

OnnxAttr IntAttr(const std::string& name, int64_t value) {
  OnnxAttr a = IntsAttr(name, {value});
  a.scalar = true;
  return a;
}

OnnxAttr FloatAttr(const std::string& name, float value) {
  OnnxAttr a;
  a.name = name;
  a.floats = {value};
  a.scalar = true;
  return a;
}

// Emits graph nodes for the zoo's modules; every helper returns the name of its output value.
class Emitter {
 public:
  // `input` of spatial side `input_size`: the TF-"SAME" convolutions need each map's size.
  Emitter(infer::OnnxGraph* g, const std::string& input, int64_t input_size) : g_(g) { side_[input] = input_size; }

  // Conv with the BatchNorm folded in: w' = w * s, b' = beta - mean * s, s = gamma / sqrt(var + eps).
  std::string ConvBnAct(const ConvBnActImpl& m, const std::string& x, const std::string& name) {
    torch::NoGradGuard no_grad;
    const auto& bn = *m.bn;
    torch::Tensor scale =
        bn.weight.to(torch::kDouble) / torch::sqrt(bn.running_var.to(torch::kDouble) + bn.options.eps());
    torch::Tensor b = bn.bias.to(torch::kDouble) - bn.running_mean.to(torch::kDouble) * scale;
    // A factorised conv (low rank): reduce -> core -> [restore], the BatchNorm folded into the last.
    std::string in = x;
    if (m.reduce) in = Conv(m.reduce->options, m.reduce->weight, torch::Tensor(), in, name + ".reduce");
    const torch::nn::Conv2dImpl& last = m.restore ? *m.restore : *m.conv;
    torch::Tensor w = last.weight.to(torch::kDouble) * scale.view({-1, 1, 1, 1});
    std::string y;
    if (m.restore) {
      const std::string core = Conv(m.conv->options, m.conv->weight, torch::Tensor(), in, name + ".core", m.tf_same);
      y = Conv(m.restore->options, w, b, core, name);
    } else {
      y = Conv(m.conv->options, w, b, in, name, m.tf_same);
    }
    return Activation(m.act, y, name);
  }

  // A Conv2d with its own bias.
  std::string PlainConv(const torch::nn::Conv2dImpl& conv, const std::string& x, const std::string& name) {
    return Conv(conv.options, conv.weight, conv.bias, x, name);
  }

  std::string Activation(Act act, const std::string& x, const std::string& name) {
    switch (act) {
      case Act::kNone: return x;
      case Act::kRelu: return Node("Relu", {x}, name + ".relu");
      case Act::kHardSwish: return Node("HardSwish", {x}, name + ".hswish");
      case Act::kSilu: {
        const std::string s = Node("Sigmoid", {x}, name + ".sigmoid");
        return Node("Mul", {x, s}, name + ".silu");
      }
      case Act::kRelu6: {
        if (!relu6_bounds_) {  // Clip's bounds are inputs since opset 11: one shared pair
          g_->AddInitializer("relu6.min", {}, {0.0f});
          g_->AddInitializer("relu6.max", {}, {6.0f});
          relu6_bounds_ = true;
        }
        return Node("Clip", {x, "relu6.min", "relu6.max"}, name + ".relu6");
      }
    }
    return x;
  }

  std::string SqueezeExcite(const SqueezeExciteImpl& se, const std::string& x, const std::string& name) {
    std::string s = Node("GlobalAveragePool", {x}, name + ".pool");
    s = PlainConv(*se.fc1, s, name + ".fc1");
    s = Activation(se.inner, s, name + ".fc1");
    s = PlainConv(*se.fc2, s, name + ".fc2");
    if (se.hard_gate) {
      // torch: relu6(v + 3) / 6 == clip(v / 6 + 0.5, 0, 1) (ONNX's default alpha is 0.2).
      s = Node("HardSigmoid", {s}, name + ".gate", {FloatAttr("alpha", 1.0f / 6.0f), FloatAttr("beta", 0.5f)});
    } else {
      s = Node("Sigmoid", {s}, name + ".gate");
    }
    return Node("Mul", {x, s}, name + ".scale");
  }

  std::string Block(const InvertedResidualImpl& b, const std::string& x, const std::string& name) {
    std::string y = x;
    if (b.expand) y = ConvBnAct(*b.expand, y, name + ".expand");
    y = ConvBnAct(*b.depthwise, y, name + ".depthwise");
    if (b.se) y = SqueezeExcite(*b.se, y, name + ".se");
    y = ConvBnAct(*b.project, y, name + ".project");
    if (b.residual) y = Node("Add", {y, x}, name + ".add");
    return y;
  }

  // y = x W^T [+ b] for a [N, in] input.
  std::string Linear(const torch::nn::LinearImpl& l, const std::string& x, const std::string& name,
                     const std::string& out = "") {
    g_->AddInitializer(name + ".weight", Shape(l.weight), ToVector(l.weight));
    std::vector<std::string> inputs = {x, name + ".weight"};
    if (l.bias.defined()) {
      g_->AddInitializer(name + ".bias", Shape(l.bias), ToVector(l.bias));
      inputs.push_back(name + ".bias");
    }
    const std::string y = out.empty() ? name : out;
    g_->AddNode("Gemm", inputs, {y}, {IntAttr("transB", 1)});
    return y;
  }

  // Element-wise and pooling nodes: the output keeps the first input's spatial side (if known).
  std::string Node(const std::string& op, const std::vector<std::string>& inputs, const std::string& out,
                   const std::vector<OnnxAttr>& attrs = {}) {
    g_->AddNode(op, inputs, {out}, attrs);
    auto it = inputs.empty() ? side_.end() : side_.find(inputs[0]);
    if (it != side_.end()) side_[out] = op == "GlobalAveragePool" ? 1 : it->second;
    return out;
  }

 private:
  std::string Conv(const torch::nn::detail::ConvNdOptions<2>& o, const torch::Tensor& w, const torch::Tensor& b,
                   const std::string& x, const std::string& name, bool tf_same = false) {
    const int64_t kh = (*o.kernel_size())[0], kw = (*o.kernel_size())[1];
    const int64_t sh = (*o.stride())[0], sw = (*o.stride())[1];
    // The zoo always gives explicit padding (never "same"/"valid"), or TF "SAME" from the input's size.
    const auto* pad = c10::get_if<torch::ExpandingArray<2>>(&o.padding());
    int64_t top = pad ? (**pad)[0] : 0, left = pad ? (**pad)[1] : 0, bottom = top, right = left;
    auto in_side = side_.find(x);
    if (tf_same) {
      // Square maps throughout (the zoo's input is square).
      const int64_t side = in_side != side_.end() ? in_side->second : 0;
      std::tie(top, bottom) = TfSamePadding(side, kh, sh);
      std::tie(left, right) = TfSamePadding(side, kw, sw);
    }
    if (in_side != side_.end()) {
      const int64_t dh = (*o.dilation())[0];
      side_[name] = (in_side->second + top + bottom - dh * (kh - 1) - 1) / sh + 1;
    }
    g_->AddInitializer(name + ".weight", Shape(w), ToVector(w));
    std::vector<std::string> inputs = {x, name + ".weight"};
    if (b.defined()) {
      g_->AddInitializer(name + ".bias", Shape(b), ToVector(b));
      inputs.push_back(name + ".bias");
    }
    g_->AddNode("Conv", inputs, {name},
                {IntsAttr("kernel_shape", {kh, kw}), IntsAttr("strides", {sh, sw}),
                 IntsAttr("pads", {top, left, bottom, right}),
                 IntsAttr("dilations", {(*o.dilation())[0], (*o.dilation())[1]}), IntAttr("group", o.groups())});
    return name;
  }

  infer::OnnxGraph* g_;
  std::map<std::string, int64_t> side_;  // spatial side of each value whose size is known
  bool relu6_bounds_ = false;
};

}  // namespace

Status ExportOnnx(const Model& model, const infer::ModelMetadata& meta, const std::string& onnx_path) {
  const ModelSpec& spec = model->spec();
  const ZooNetImpl& net = *model;
  infer::OnnxGraph g;
  const int64_t s = spec.input_size;
  Emitter e(&g, "input", s);
  g.AddInput("input", {-1, 3, s, s});
  std::string x = e.ConvBnAct(*net.stem, "input", "stem");
  std::string tap;  // the feature map the mask head reads
  for (size_t i = 0; i < net.blocks.size(); ++i) {
    x = e.Block(*net.blocks[i], x, "blocks." + std::to_string(i));
    if (static_cast<int>(i) == net.mask_tap) tap = x;
  }
  if (net.head_conv) x = e.ConvBnAct(*net.head_conv, x, "head_conv");
  x = e.Node("GlobalAveragePool", {x}, "pool");
  x = e.Node("Flatten", {x}, "features", {IntAttr("axis", 1)});
  if (net.pre_logits_reduce) x = e.Linear(*net.pre_logits_reduce, x, "pre_logits_reduce");
  if (net.pre_logits) {
    x = e.Linear(*net.pre_logits, x, "pre_logits");
    x = e.Activation(Act::kHardSwish, x, "pre_logits");
  }
  e.Linear(*net.fc, x, "fc", "logit");
  g.AddOutput("logit", {-1, 1});  // first: the classifiers read output 0
  if (net.mask_conv && !tap.empty()) {
    // The blend heatmap: sigmoid of the mask head's logits, where the model sees blending.
    std::string m = e.ConvBnAct(*net.mask_conv, tap, "mask_conv");
    m = e.PlainConv(*net.mask_out, m, "mask_out");
    e.Node("Sigmoid", {m}, "mask");
    const int64_t side = (s + spec.mask_stride - 1) / spec.mask_stride;
    g.AddOutput("mask", {-1, 1, side, side});
  }
  RETURN_IF_ERROR(g.Save(onnx_path));

  infer::ModelMetadata m = meta;
  m.input_size = spec.input_size;
  m.output = infer::OutputKind::kLogit;
  return WriteModelMetadata(infer::MetadataPathFor(onnx_path), m, spec);
}

}  // namespace deepscan::train
