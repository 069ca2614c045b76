#include "infer/onnx_graph.h"

#include <fstream>
#include <random>

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

namespace deepscan::infer {

struct OnnxGraph::Impl {
  onnx::ModelProto model;
  onnx::GraphProto* graph = nullptr;
};

namespace {
void SetShape(onnx::ValueInfoProto* v, const std::vector<int64_t>& shape) {
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  auto* s = t->mutable_shape();
  for (int64_t d : shape) {
    auto* dim = s->add_dim();
    if (d < 0)
      dim->set_dim_param("N");
    else
      dim->set_dim_value(d);
  }
}
}  // namespace

OnnxGraph::OnnxGraph() : impl_(std::make_unique<Impl>()) {
  auto& m = impl_->model;
  m.set_ir_version(8);
  m.set_producer_name("deepscan");
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(17);
  impl_->graph = m.mutable_graph();
  impl_->graph->set_name("deepscan");
}
OnnxGraph::~OnnxGraph() = default;

void OnnxGraph::AddInput(const std::string& name, const std::vector<int64_t>& shape) {
  auto* v = impl_->graph->add_input();
  v->set_name(name);
  SetShape(v, shape);
}

void OnnxGraph::AddOutput(const std::string& name, const std::vector<int64_t>& shape) {
  auto* v = impl_->graph->add_output();
  v->set_name(name);
  SetShape(v, shape);
}

void OnnxGraph::AddInitializer(const std::string& name, const std::vector<int64_t>& shape,
                               const std::vector<float>& values) {
  auto* t = impl_->graph->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : shape) t->add_dims(d);
  for (float v : values) t->add_float_data(v);
}

void OnnxGraph::AddInt64Initializer(const std::string& name, const std::vector<int64_t>& values) {
  auto* t = impl_->graph->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::INT64);
  t->add_dims(static_cast<int64_t>(values.size()));
  for (int64_t v : values) t->add_int64_data(v);
}

void OnnxGraph::AddNode(const std::string& op, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs, const std::vector<OnnxAttr>& attrs) {
  auto* n = impl_->graph->add_node();
  n->set_op_type(op);
  n->set_name(op + "_" + std::to_string(impl_->graph->node_size()));
  for (const auto& i : inputs) n->add_input(i);
  for (const auto& o : outputs) n->add_output(o);
  for (const auto& a : attrs) {
    auto* p = n->add_attribute();
    p->set_name(a.name);
    if (!a.ints.empty()) {
      if (a.scalar) {
        p->set_type(onnx::AttributeProto::INT);
        p->set_i(a.ints[0]);
      } else {
        p->set_type(onnx::AttributeProto::INTS);
        for (int64_t v : a.ints) p->add_ints(v);
      }
    } else {
      if (a.scalar) {
        p->set_type(onnx::AttributeProto::FLOAT);
        p->set_f(a.floats.empty() ? 0.0f : a.floats[0]);
      } else {
        p->set_type(onnx::AttributeProto::FLOATS);
        for (float v : a.floats) p->add_floats(v);
      }
    }
  }
}

Status OnnxGraph::Save(const std::string& path) const {
  try {
    onnx::checker::check_model(impl_->model);
  } catch (const std::exception& e) {
    return Status::InvalidModel(std::string("ONNX checker rejected the model: ") + e.what());
  }
  std::ofstream out(path, std::ios::binary);
  if (!out || !impl_->model.SerializeToOstream(&out)) return Status::IoError("cannot write " + path);
  return Status::Ok();
}

Status WriteMeanColourModel(const std::string& path, int input_size, const std::vector<float>& w, float b,
                            bool dynamic_batch) {
  if (w.size() != 3) return Status::InvalidArgument("need 3 weights");
  const int64_t n = dynamic_batch ? -1 : 1;
  OnnxGraph g;
  g.AddInput("input", {n, 3, input_size, input_size});
  g.AddNode("GlobalAveragePool", {"input"}, {"pooled"});
  g.AddNode("Flatten", {"pooled"}, {"flat"}, {{.name = "axis", .ints = {1}, .scalar = true}});
  g.AddInitializer("W", {1, 3}, w);  // [out, in] with transB = 1, the layout OpenCV's importer reads
  g.AddInitializer("B", {1}, {b});
  g.AddNode("Gemm", {"flat", "W", "B"}, {"logit"}, {{.name = "transB", .ints = {1}, .scalar = true}});
  g.AddOutput("logit", {n, 1});
  return g.Save(path);
}

Status WriteRandomConvModel(const std::string& path, int input_size, uint32_t seed, bool heatmap) {
  std::mt19937 rng(seed);
  auto randn = [&](size_t count, float scale) {
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(count);
    for (float& x : v) x = d(rng);
    return v;
  };
  OnnxGraph g;
  g.AddInput("input", {-1, 3, input_size, input_size});
  const std::vector<OnnxAttr> conv = {{.name = "kernel_shape", .ints = {3, 3}},
                                      {.name = "strides", .ints = {2, 2}},
                                      {.name = "pads", .ints = {1, 1, 1, 1}}};
  g.AddInitializer("w1", {8, 3, 3, 3}, randn(8 * 27, 0.27f));
  g.AddInitializer("b1", {8}, randn(8, 0.05f));
  g.AddNode("Conv", {"input", "w1", "b1"}, {"c1"}, conv);
  g.AddNode("Relu", {"c1"}, {"r1"});
  g.AddInitializer("w2", {16, 8, 3, 3}, randn(16 * 72, 0.17f));
  g.AddInitializer("b2", {16}, randn(16, 0.05f));
  g.AddNode("Conv", {"r1", "w2", "b2"}, {"c2"}, conv);
  g.AddNode("Relu", {"c2"}, {"r2"});
  g.AddNode("GlobalAveragePool", {"r2"}, {"pooled"});
  g.AddNode("Flatten", {"pooled"}, {"flat"}, {{.name = "axis", .ints = {1}, .scalar = true}});
  g.AddInitializer("w3", {1, 16}, randn(16, 0.5f));
  g.AddInitializer("b3", {1}, {0.0f});
  g.AddNode("Gemm", {"flat", "w3", "b3"}, {"logit"}, {{.name = "transB", .ints = {1}, .scalar = true}});
  g.AddOutput("logit", {-1, 1});
  if (heatmap) {
    const int m = (input_size + 3) / 4;  // two stride-2 convolutions with padding 1
    g.AddInitializer("wm", {1, 16, 1, 1}, randn(16, 0.5f));
    g.AddInitializer("bm", {1}, {0.0f});
    g.AddNode("Conv", {"r2", "wm", "bm"}, {"mask_logit"}, {{.name = "kernel_shape", .ints = {1, 1}}});
    g.AddNode("Sigmoid", {"mask_logit"}, {"mask"});
    g.AddOutput("mask", {-1, 1, m, m});
  }
  return g.Save(path);
}

}  // namespace deepscan::infer
