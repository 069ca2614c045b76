#include "train/tfjs_init.h"

#include <cmath>
#include <map>
#include <optional>
#include <sstream>

#include <torch/torch.h>

namespace deepscan::train {
namespace {

// A node input as written ("name", "name:0", "^name") -> the producing node's name.
std::string Producer(const std::string& input) {
  std::string s = input;
  if (!s.empty() && s[0] == '^') s.erase(0, 1);
  const size_t colon = s.rfind(':');
  if (colon != std::string::npos && colon + 1 < s.size() &&
      s.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
    s.erase(colon);
  }
  return s;
}

// One convolution layer of the graph with its folded affine and activation.
struct GraphLayer {
  std::string conv_node;  // the Conv2D / DepthwiseConv2dNative node
  bool depthwise = false;
  const TfjsTensor* filter = nullptr;  // HWIO, or H,W,C,multiplier
  int64_t stride = 1;
  std::vector<float> scale;  // per output channel; empty = 1
  std::vector<float> bias;   // per output channel; empty = 0
  std::string activation;    // "relu6", "relu" or "" (none)
  std::string out_node;      // the node whose output ends the layer
};

class GraphWalker {
 public:
  explicit GraphWalker(const TfjsModel& g) : g_(g) {
    for (const TfjsNode& n : g.nodes) {
      by_name_[n.name] = &n;
      for (const std::string& in : n.inputs) {
        if (!in.empty() && in[0] == '^') continue;  // control edges carry no data
        consumers_[Producer(in)].push_back(&n);
      }
    }
  }

  Result<std::string> Input() const {
    const TfjsNode* input = nullptr;
    for (const TfjsNode& n : g_.nodes) {
      if (n.op != "Placeholder") continue;
      if (input != nullptr) return Status::InvalidModel("the graph has more than one input");
      input = &n;
    }
    if (input == nullptr) return Status::InvalidModel("the graph has no input (Placeholder)");
    return input->name;
  }

  // The single data consumer of `node`'s output; null when there is none. Errors when it branches.
  Result<const TfjsNode*> Next(const std::string& node) const {
    auto it = consumers_.find(node);
    if (it == consumers_.end() || it->second.empty()) return static_cast<const TfjsNode*>(nullptr);
    if (it->second.size() > 1) {
      return Status::InvalidModel("the output of '" + node + "' feeds " + std::to_string(it->second.size()) +
                                  " nodes; a MobileNet v1 is a chain");
    }
    return it->second.front();
  }

  // The constant tensor behind input `k` of `n`; null when it is not a constant with weights.
  const TfjsTensor* ConstInput(const TfjsNode& n, size_t k) const {
    if (k >= n.inputs.size()) return nullptr;
    const std::string name = Producer(n.inputs[k]);
    auto it = by_name_.find(name);
    if (it == by_name_.end() || it->second->op != "Const") return nullptr;
    return g_.FindTensor(name);
  }

  // The input of `n` that is not `from` (for binary ops with a constant operand).
  const TfjsTensor* OtherConst(const TfjsNode& n, const std::string& from) const {
    if (n.inputs.size() != 2) return nullptr;
    return ConstInput(n, Producer(n.inputs[0]) == from ? 1 : 0);
  }

  // Reads the layer that starts at `n` (a convolution consuming `from`).
  Result<GraphLayer> Layer(const TfjsNode& n, const std::string& from) const {
    GraphLayer l;
    l.conv_node = n.name;
    const bool fused = n.op == "_FusedConv2D" || n.op == "FusedDepthwiseConv2dNative";
    l.depthwise = n.op == "DepthwiseConv2dNative" || n.op == "FusedDepthwiseConv2dNative";
    if (n.inputs.empty() || Producer(n.inputs[0]) != from) {
      return Status::InvalidModel("'" + n.name + "' does not read '" + from + "' as its data input");
    }
    l.filter = ConstInput(n, 1);
    if (l.filter == nullptr || l.filter->shape.size() != 4) {
      return Status::InvalidModel("'" + n.name + "' has no 4-d constant filter");
    }
    const std::string format = n.StringAttr("data_format");
    if (!format.empty() && format != "NHWC") {
      return Status::InvalidModel("'" + n.name + "' has data_format " + format + " (NHWC expected)");
    }
    if (n.StringAttr("padding") != "SAME") {
      return Status::InvalidModel("'" + n.name + "' has padding '" + n.StringAttr("padding") +
                                  "'; the zoo's MobileNet v1 reproduces TF's SAME");
    }
    const std::vector<int64_t> dil = n.IntsAttr("dilations");
    for (int64_t d : dil) {
      if (d != 1) return Status::InvalidModel("'" + n.name + "' is dilated");
    }
    const std::vector<int64_t> st = n.IntsAttr("strides");
    if (st.size() != 4 || st[0] != 1 || st[3] != 1 || st[1] != st[2]) {
      return Status::InvalidModel("'" + n.name + "' has strides that are not [1, s, s, 1]");
    }
    l.stride = st[1];
    const int64_t channels = l.depthwise ? l.filter->shape[2] * l.filter->shape[3] : l.filter->shape[3];
    std::string last = n.name;
    if (fused) {
      std::vector<std::string> ops =
          n.attrs.count("fused_ops") ? n.attrs.at("fused_ops").strings : std::vector<std::string>{};
      if (ops.empty() || ops[0] != "BiasAdd") {
        return Status::InvalidModel("'" + n.name + "' fuses something other than BiasAdd first");
      }
      const TfjsTensor* b = ConstInput(n, 2);
      if (b == nullptr || static_cast<int64_t>(b->values.size()) != channels) {
        return Status::InvalidModel("'" + n.name + "' has no per-channel fused bias");
      }
      l.bias = b->values;
      if (ops.size() > 2) return Status::InvalidModel("'" + n.name + "' fuses more than a bias and an activation");
      if (ops.size() == 2) {
        if (ops[1] == "Relu6") {
          l.activation = "relu6";
        } else if (ops[1] == "Relu") {
          l.activation = "relu";
        } else {
          return Status::InvalidModel("'" + n.name + "' fuses the activation " + ops[1]);
        }
      }
    }
    // Per-channel (or scalar) Mul and Add constants: the converter's folded BatchNorm.
    auto per_channel = [&](const TfjsTensor* t) -> std::optional<std::vector<float>> {
      if (t == nullptr) return std::nullopt;
      if (t->values.size() == 1) return std::vector<float>(static_cast<size_t>(channels), t->values[0]);
      if (static_cast<int64_t>(t->values.size()) == channels) return t->values;
      return std::nullopt;
    };
    while (l.activation.empty()) {
      ASSIGN_OR_RETURN(const TfjsNode* next, Next(last));
      if (next == nullptr) break;
      const std::string& op = next->op;
      if (op == "Mul" && l.bias.empty()) {
        auto s = per_channel(OtherConst(*next, last));
        if (!s) return Status::InvalidModel("'" + next->name + "' is not a per-channel scale");
        if (l.scale.empty()) {
          l.scale = *s;
        } else {
          for (size_t c = 0; c < s->size(); ++c) l.scale[c] *= (*s)[c];
        }
      } else if (op == "Add" || op == "AddV2" || op == "BiasAdd") {
        auto b = per_channel(OtherConst(*next, last));
        if (!b) return Status::InvalidModel("'" + next->name + "' is not a per-channel bias");
        if (l.bias.empty()) l.bias.assign(static_cast<size_t>(channels), 0.0f);
        for (size_t c = 0; c < b->size(); ++c) l.bias[c] += (*b)[c];
      } else if (op == "Relu6") {
        l.activation = "relu6";
      } else if (op == "Relu") {
        l.activation = "relu";
      } else {
        break;  // the next layer (or the pooling) begins
      }
      last = next->name;
    }
    // Relu -> Minimum(6) [-> Maximum(0)]: Keras' ReLU(max_value=6) as the converter writes it.
    if (l.activation == "relu") {
      ASSIGN_OR_RETURN(const TfjsNode* next, Next(last));
      if (next != nullptr && next->op == "Minimum") {
        const TfjsTensor* c = OtherConst(*next, last);
        if (c == nullptr || c->values.size() != 1 || c->values[0] != 6.0f) {
          return Status::InvalidModel("'" + next->name + "' clips at something other than 6");
        }
        l.activation = "relu6";
        last = next->name;
        ASSIGN_OR_RETURN(const TfjsNode* after, Next(last));
        if (after != nullptr && after->op == "Maximum") {
          const TfjsTensor* z = OtherConst(*after, last);
          if (z == nullptr || z->values.size() != 1 || z->values[0] > 0.0f) {
            return Status::InvalidModel("'" + after->name + "' is not a clip at 0");
          }
          last = after->name;
        }
      }
    }
    l.out_node = last;
    return l;
  }

  static bool IsConv(const TfjsNode& n) {
    return n.op == "Conv2D" || n.op == "DepthwiseConv2dNative" || n.op == "_FusedConv2D" ||
           n.op == "FusedDepthwiseConv2dNative";
  }

 private:
  const TfjsModel& g_;
  std::map<std::string, const TfjsNode*> by_name_;
  std::map<std::string, std::vector<const TfjsNode*>> consumers_;
};

torch::Tensor FromTf(const TfjsTensor& t) {
  return torch::from_blob(const_cast<float*>(t.values.data()), t.shape, torch::kFloat).clone();
}

// Writes `layer` into `target` (a zoo ConvBnAct); `what` names it in errors.
Status Place(const GraphLayer& layer, ConvBnActImpl& target, bool reverse_input, const std::string& what) {
  auto mismatch = [&](const std::string& why) {
    return Status::InvalidModel("graph layer '" + layer.conv_node + "' does not fit the zoo's " + what + ": " + why);
  };
  const auto& o = target.conv->options;
  const bool depthwise = o.groups() > 1;
  if (depthwise != layer.depthwise) {
    return mismatch(std::string("the graph's is ") + (layer.depthwise ? "depthwise" : "a full convolution"));
  }
  if ((*o.stride())[0] != layer.stride) {
    return mismatch("stride " + std::to_string(layer.stride) + " against " + std::to_string((*o.stride())[0]));
  }
  if (!target.tf_same && layer.stride > 1) return mismatch("the zoo layer does not pad like TF's SAME");
  if (target.act != Act::kRelu6 || layer.activation != "relu6") {
    return mismatch("activation '" + layer.activation + "'; the zoo's MobileNet v1 uses ReLU6");
  }
  torch::Tensor w = FromTf(*layer.filter);
  if (depthwise) {
    if (layer.filter->shape[3] != 1) return mismatch("depth multiplier " + std::to_string(layer.filter->shape[3]));
    w = w.permute({2, 3, 0, 1});  // H,W,C,1 -> C,1,H,W
  } else {
    w = w.permute({3, 2, 0, 1});  // HWIO -> OIHW
  }
  w = w.contiguous();
  if (w.sizes() != target.conv->weight.sizes()) {
    std::ostringstream a, b;
    a << w.sizes();
    b << target.conv->weight.sizes();
    return mismatch("weight shape " + a.str() + " against " + b.str() + " (is the width 1.0?)");
  }
  if (reverse_input) w = w.flip({1});  // the graph reads B, G, R; the zoo model reads R, G, B
  const int64_t c = w.size(0);
  torch::Tensor scale = layer.scale.empty() ? torch::ones({c}) : torch::tensor(layer.scale);
  torch::Tensor bias = layer.bias.empty() ? torch::zeros({c}) : torch::tensor(layer.bias);
  torch::NoGradGuard no_grad;
  auto& bn = *target.bn;
  target.conv->weight.copy_(w);
  bn.weight.copy_(scale * std::sqrt(1.0 + bn.options.eps()));
  bn.bias.copy_(bias);
  bn.running_mean.zero_();
  bn.running_var.fill_(1.0);
  return Status::Ok();
}

}  // namespace

Result<PretrainedInput> KnownPretrainedInput(const TfjsModel& graph) {
  const TfjsNode* input = graph.FindNode("input_1");
  if (graph.generated_by.find("HSE_FaceRec_tf") != std::string::npos && input != nullptr &&
      input->op == "Placeholder") {
    PretrainedInput in;
    in.name = "faceres";
    in.bgr = true;
    in.mean = {123.68f / 255.0f, 116.779f / 255.0f, 103.939f / 255.0f};
    in.std = {1.0f / 255.0f, 1.0f / 255.0f, 1.0f / 255.0f};
    in.native_size = 224;
    in.description = "HSE faceres (keras 'caffe' preprocessing: BGR, 0..255 minus the ImageNet means)";
    return in;
  }
  return Status::NotSupported("unknown input normalisation for this TF.js graph (generatedBy '" + graph.generated_by +
                              "'); deepscan knows faceres (HSE_FaceRec_tf)");
}

Result<TfjsInitReport> InitFromTfjs(Model& model, const TfjsModel& graph, const PretrainedInput& input) {
  const ModelSpec& spec = model->spec();
  if (spec.arch != "mobilenetv1" && spec.arch != "mobilenetv1_s16") {
    return Status::InvalidArgument("a TF.js MobileNet v1 initialises only mobilenetv1 / mobilenetv1_s16, not " +
                                   spec.arch);
  }
  GraphWalker walk(graph);
  ASSIGN_OR_RETURN(std::string at, walk.Input());
  // The zoo's convolution layers in graph order.
  std::vector<std::pair<ConvBnActImpl*, std::string>> targets = {{model->stem.get(), "stem"}};
  for (size_t i = 0; i < model->blocks.size(); ++i) {
    targets.emplace_back(model->blocks[i]->depthwise.get(), "blocks." + std::to_string(i) + ".depthwise");
    targets.emplace_back(model->blocks[i]->project.get(), "blocks." + std::to_string(i) + ".project");
  }
  TfjsInitReport report;
  for (;;) {
    ASSIGN_OR_RETURN(const TfjsNode* next, walk.Next(at));
    if (next == nullptr || !GraphWalker::IsConv(*next)) {
      if (report.layers_loaded < static_cast<int>(targets.size())) {
        return Status::InvalidModel("the graph has " + std::to_string(report.layers_loaded) +
                                    " convolution layers in a chain; " + spec.arch + " needs " +
                                    std::to_string(targets.size()) +
                                    (next ? " (the chain goes on with '" + next->name + "', a " + next->op + ")" : ""));
      }
      if (next != nullptr && next->op == "Mean" && report.layers_unused == 0) report.features_node = next->name;
      break;
    }
    ASSIGN_OR_RETURN(GraphLayer layer, walk.Layer(*next, at));
    if (report.layers_loaded < static_cast<int>(targets.size())) {
      const auto& [target, what] = targets[static_cast<size_t>(report.layers_loaded)];
      RETURN_IF_ERROR(Place(layer, *target, report.layers_loaded == 0 && input.bgr, what));
      ++report.layers_loaded;
      report.last_node = layer.out_node;
    } else {
      ++report.layers_unused;
    }
    at = layer.out_node;
  }
  if (report.features_node.empty() && report.layers_unused == 0) {
    return Status::InvalidModel("the graph's last convolution layer '" + report.last_node +
                                "' is not followed by a global mean");
  }
  return report;
}

Status RecalibrateBatchNorm(Model& model, const std::vector<torch::Tensor>& images) {
  if (images.empty()) return Status::InvalidArgument("RecalibrateBatchNorm needs images");
  std::vector<std::pair<ConvBnActImpl*, BnInputStats>> layers;
  for (auto& m : model->modules(/*include_self=*/false)) {
    if (auto* c = m->as<ConvBnActImpl>()) layers.emplace_back(c, BnInputStats{});
  }
  for (auto& [layer, stats] : layers) layer->record = &stats;
  const bool was_training = model->is_training();
  model->eval();
  {
    torch::NoGradGuard no_grad;
    const torch::Device device = model->parameters().front().device();
    for (const torch::Tensor& x : images) model->forward(x.to(device));
  }
  model->train(was_training);
  torch::NoGradGuard no_grad;
  for (auto& [layer, stats] : layers) {
    layer->record = nullptr;
    if (stats.count == 0) continue;  // a layer the forward pass does not reach
    auto& bn = *layer->bn;
    const double eps = bn.options.eps();
    const torch::Tensor mean = stats.sum / static_cast<double>(stats.count);
    const torch::Tensor var = (stats.sum_sq / static_cast<double>(stats.count) - mean * mean).clamp_min(0.0);
    // What the BatchNorm computes now: a * z + b.
    const torch::Tensor a = bn.weight.to(torch::kDouble) / torch::sqrt(bn.running_var.to(torch::kDouble) + eps);
    const torch::Tensor b = bn.bias.to(torch::kDouble) - a * bn.running_mean.to(torch::kDouble);
    bn.running_mean.copy_(mean);
    bn.running_var.copy_(var);
    bn.weight.copy_(a * torch::sqrt(var + eps));
    bn.bias.copy_(b + a * mean);
  }
  return Status::Ok();
}

}  // namespace deepscan::train
