// Test helper: writes a zoo MobileNet v1 (eval mode, BatchNorm folded) as a TF.js graph model
// laid out like the converted faceres graph (Conv2D / DepthwiseConv2dNative -> Mul -> Add -> Relu
// -> Minimum 6 -> Maximum 0, ..., global_pooling/Mean), for tests of train/tfjs_init.h that need
// no downloaded weights. Variants break it in the ways InitFromTfjs must notice.
#ifndef DEEPSCAN_TESTS_TRAIN_TFJS_GRAPH_WRITER_H_
#define DEEPSCAN_TESTS_TRAIN_TFJS_GRAPH_WRITER_H_

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "report/base64.h"
#include "train/zoo.h"

namespace deepscan::testing {

struct GraphVariant {
  bool plain_relu = false;      // Relu without the clip at 6
  bool valid_padding = false;   // padding VALID on every convolution
  int wrong_stride_layer = -1;  // this layer's stride doubled
  bool fused = false;           // _FusedConv2D / FusedDepthwiseConv2dNative with BiasAdd + Relu6
  bool reverse_stem = false;    // the stem reads B, G, R (its input channels reversed)
  // The model.json's generatedBy; KnownPretrainedInput takes one naming HSE_FaceRec_tf for faceres.
  std::string generated_by = "deepscan test";
};

struct TfjsGraphFiles {
  nlohmann::json model;
  std::string weights;  // the one shard, "weights.bin"
};

inline TfjsGraphFiles GraphFromZoo(train::Model& m, const GraphVariant& v = {}) {
  using nlohmann::json;
  torch::NoGradGuard no_grad;
  TfjsGraphFiles out;
  json nodes = json::array();
  json specs = json::array();
  auto add_const = [&](const std::string& name, const torch::Tensor& t) {
    torch::Tensor c = t.to(torch::kFloat).contiguous();
    nodes.push_back({{"name", name}, {"op", "Const"}, {"attr", {{"dtype", {{"type", "DT_FLOAT"}}}}}});
    specs.push_back({{"name", name}, {"shape", c.sizes().vec()}, {"dtype", "float32"}});
    out.weights.append(reinterpret_cast<const char*>(c.data_ptr<float>()), sizeof(float) * c.numel());
  };
  auto b64 = [](const std::string& s) { return report::Base64(s); };
  nodes.push_back({{"name", "input_1"}, {"op", "Placeholder"}});
  add_const("six", torch::tensor(6.0f).reshape({}));
  add_const("zero", torch::tensor(0.0f).reshape({}));
  std::vector<train::ConvBnActImpl*> layers = {m->stem.get()};
  for (auto& b : m->blocks) {
    layers.push_back(b->depthwise.get());
    layers.push_back(b->project.get());
  }
  std::string at = "input_1";
  for (size_t i = 0; i < layers.size(); ++i) {
    const train::ConvBnActImpl& l = *layers[i];
    const std::string name = "layer" + std::to_string(i);
    const bool dw = l.conv->options.groups() > 1;
    torch::Tensor w = l.conv->weight;
    if (i == 0 && v.reverse_stem) w = w.flip({1});
    w = dw ? w.permute({2, 3, 0, 1}) : w.permute({2, 3, 1, 0});  // -> H,W,C,1 / HWIO
    const auto& bn = *l.bn;
    torch::Tensor a = bn.weight / torch::sqrt(bn.running_var + bn.options.eps());
    torch::Tensor b = bn.bias - a * bn.running_mean;
    int64_t stride = (*l.conv->options.stride())[0];
    if (static_cast<int>(i) == v.wrong_stride_layer) stride *= 2;
    const std::string s = std::to_string(stride);
    json attrs = {{"strides", {{"list", {{"i", {"1", s, s, "1"}}}}}},
                  {"padding", {{"s", b64(v.valid_padding ? "VALID" : "SAME")}}},
                  {"data_format", {{"s", b64("NHWC")}}},
                  {"dilations", {{"list", {{"i", {"1", "1", "1", "1"}}}}}}};
    if (v.fused) {
      // The scale folded into the filter (as the converter does when it fuses).
      add_const(name + "/kernel", dw ? w * a.view({1, 1, -1, 1}) : w * a.view({1, 1, 1, -1}));
      add_const(name + "/bias", b);
      attrs["fused_ops"] = {{"list", {{"s", {b64("BiasAdd"), b64("Relu6")}}}}};
      nodes.push_back({{"name", name + "/conv"},
                       {"op", dw ? "FusedDepthwiseConv2dNative" : "_FusedConv2D"},
                       {"input", {at, name + "/kernel", name + "/bias"}},
                       {"attr", attrs}});
      at = name + "/conv";
      continue;
    }
    add_const(name + "/kernel", w);
    add_const(name + "/scale", a);
    add_const(name + "/bias", b);
    nodes.push_back({{"name", name + "/conv"},
                     {"op", dw ? "DepthwiseConv2dNative" : "Conv2D"},
                     {"input", {at, name + "/kernel"}},
                     {"attr", attrs}});
    nodes.push_back({{"name", name + "/mul"}, {"op", "Mul"}, {"input", {name + "/conv", name + "/scale"}}});
    nodes.push_back({{"name", name + "/add"}, {"op", "Add"}, {"input", {name + "/mul", name + "/bias"}}});
    nodes.push_back({{"name", name + "/relu"}, {"op", "Relu"}, {"input", {name + "/add"}}});
    at = name + "/relu";
    if (!v.plain_relu) {
      nodes.push_back({{"name", name + "/min"}, {"op", "Minimum"}, {"input", {at, "six"}}});
      nodes.push_back({{"name", name + "/max"}, {"op", "Maximum"}, {"input", {name + "/min", "zero"}}});
      at = name + "/max";
    }
  }
  nodes.push_back({{"name", "global_pooling/Mean/reduction_indices"}, {"op", "Const"}});
  specs.push_back({{"name", "global_pooling/Mean/reduction_indices"}, {"shape", {2}}, {"dtype", "int32"}});
  for (int32_t axis : {1, 2}) out.weights.append(reinterpret_cast<const char*>(&axis), 4);
  nodes.push_back(
      {{"name", "global_pooling/Mean"}, {"op", "Mean"}, {"input", {at, "global_pooling/Mean/reduction_indices"}}});
  out.model = {{"format", "graph-model"},
               {"generatedBy", v.generated_by},
               {"modelTopology", {{"node", nodes}}},
               {"weightsManifest", {{{"paths", {"weights.bin"}}, {"weights", specs}}}}};
  return out;
}

// Writes the graph as DIR/model.json + DIR/weights.bin; returns model.json's path.
inline std::string WriteGraph(const TfjsGraphFiles& g, const std::string& dir) {
  std::ofstream(dir + "/model.json") << g.model.dump();
  std::ofstream(dir + "/weights.bin", std::ios::binary) << g.weights;
  return dir + "/model.json";
}

}  // namespace deepscan::testing

#endif  // DEEPSCAN_TESTS_TRAIN_TFJS_GRAPH_WRITER_H_
