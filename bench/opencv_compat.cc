#include "opencv_compat.h"

#include <cstring>
#include <fstream>
#include <map>
#include <vector>

#include <onnx/onnx_pb.h>

namespace deepscan::bench {
namespace {

// The values of a float initializer, whichever field holds them; false for other storage.
bool ReadFloats(const onnx::TensorProto& t, std::vector<float>* v) {
  if (t.data_type() != onnx::TensorProto::FLOAT || t.data_location() == onnx::TensorProto::EXTERNAL) return false;
  if (t.float_data_size() > 0) {
    v->assign(t.float_data().begin(), t.float_data().end());
    return true;
  }
  const std::string& raw = t.raw_data();
  if (raw.size() % sizeof(float) != 0) return false;
  v->resize(raw.size() / sizeof(float));
  if (!raw.empty()) std::memcpy(v->data(), raw.data(), raw.size());  // ONNX raw data is little-endian, as is x86
  return true;
}

// The attribute `name` of `node`, or null.
onnx::AttributeProto* FindAttr(onnx::NodeProto* node, const std::string& name) {
  for (auto& a : *node->mutable_attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

}  // namespace

Result<int> WriteOpenCvCompatibleCopy(const std::string& in, const std::string& out) {
  onnx::ModelProto model;
  {
    std::ifstream f(in, std::ios::binary);
    if (!f || !model.ParseFromIstream(&f)) return Status::InvalidModel("cannot parse ONNX model " + in);
  }
  onnx::GraphProto* graph = model.mutable_graph();
  std::map<std::string, onnx::TensorProto*> initializers;
  for (auto& t : *graph->mutable_initializer()) initializers[t.name()] = &t;
  std::map<std::string, int> uses;  // a transposed initializer must not feed another node
  for (const auto& node : graph->node()) {
    for (const std::string& i : node.input()) ++uses[i];
  }

  int rewritten = 0;
  for (auto& node : *graph->mutable_node()) {
    if (node.op_type() != "Gemm" || node.input_size() < 2) continue;
    onnx::AttributeProto* trans_b = FindAttr(&node, "transB");
    if (trans_b != nullptr && trans_b->i() != 0) continue;
    auto it = initializers.find(node.input(1));
    if (it == initializers.end() || uses[node.input(1)] != 1) continue;
    onnx::TensorProto* b = it->second;
    if (b->dims_size() != 2) continue;
    std::vector<float> v;
    if (!ReadFloats(*b, &v)) return Status::InvalidModel("unsupported storage of Gemm weights " + b->name());
    const int64_t rows = b->dims(0), cols = b->dims(1);
    if (static_cast<int64_t>(v.size()) != rows * cols) return Status::InvalidModel("bad size of " + b->name());
    b->clear_float_data();
    b->clear_raw_data();
    b->set_dims(0, cols);
    b->set_dims(1, rows);
    for (int64_t c = 0; c < cols; ++c) {
      for (int64_t r = 0; r < rows; ++r) b->add_float_data(v[r * cols + c]);
    }
    if (trans_b == nullptr) {
      trans_b = node.add_attribute();
      trans_b->set_name("transB");
      trans_b->set_type(onnx::AttributeProto::INT);
    }
    trans_b->set_i(1);
    ++rewritten;
  }

  // Clip(x, lo, hi) with constant bounds (ReLU6 in the MobileNet v1 archs): OpenCV 4.6 reads only the
  // opset-6 attribute form, which ONNX Runtime refuses at opset 11+. Both read the same function as
  // Relu(x - lo) + lo - Relu(x - hi) (for lo <= hi), so that is what the copy holds.
  std::vector<onnx::NodeProto> nodes(graph->node().begin(), graph->node().end());
  graph->clear_node();
  int clips = 0;
  auto scalar = [&](const std::string& name, float* v) {
    auto it = initializers.find(name);
    std::vector<float> f;
    if (it == initializers.end() || !ReadFloats(*it->second, &f) || f.size() != 1) return false;
    *v = f[0];
    return true;
  };
  auto constant = [&](const std::string& name, float v) {
    onnx::TensorProto* t = graph->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    t->add_float_data(v);
  };
  for (const onnx::NodeProto& node : nodes) {
    float lo = 0, hi = 0;
    if (node.op_type() != "Clip" || node.input_size() != 3 || !scalar(node.input(1), &lo) ||
        !scalar(node.input(2), &hi) || lo > hi) {
      *graph->add_node() = node;
      continue;
    }
    const std::string p = "ocv_clip" + std::to_string(clips++) + "_", x = node.input(0);
    constant(p + "lo", lo);
    constant(p + "hi", hi);
    auto add = [&](const char* op, std::vector<std::string> ins, const std::string& output) {
      onnx::NodeProto* n = graph->add_node();
      n->set_op_type(op);
      n->set_name(p + output);
      for (const std::string& i : ins) n->add_input(i);
      n->add_output(output);
    };
    add("Sub", {x, p + "lo"}, p + "a");
    add("Relu", {p + "a"}, p + "ra");
    add("Add", {p + "ra", p + "lo"}, p + "b");
    add("Sub", {x, p + "hi"}, p + "c");
    add("Relu", {p + "c"}, p + "rc");
    add("Sub", {p + "b", p + "rc"}, node.output(0));
  }
  rewritten += clips;

  std::ofstream f(out, std::ios::binary | std::ios::trunc);
  if (!f || !model.SerializeToOstream(&f)) return Status::IoError("cannot write " + out);
  f.close();
  if (!f) return Status::IoError("cannot write " + out);
  return rewritten;
}

}  // namespace deepscan::bench
