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

  std::ofstream f(out, std::ios::binary | std::ios::trunc);
  if (!f || !model.SerializeToOstream(&f)) return Status::IoError("cannot write " + out);
  f.close();
  if (!f) return Status::IoError("cannot write " + out);
  return rewritten;
}

}  // namespace deepscan::bench
