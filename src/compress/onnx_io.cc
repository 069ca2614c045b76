#include "compress/onnx_io.h"

#include <cstring>
#include <fstream>
#include <unordered_set>

#include <onnx/checker.h>

namespace deepscan::compress {

Result<onnx::ModelProto> ReadModel(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::InvalidModel("cannot open model " + path);
  onnx::ModelProto m;
  if (!m.ParseFromIstream(&f)) return Status::InvalidModel(path + ": not an ONNX model");
  if (!m.has_graph() || m.graph().node_size() == 0) return Status::InvalidModel(path + ": the ONNX model has no graph");
  return m;
}

Status WriteModel(const onnx::ModelProto& m, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out || !m.SerializeToOstream(&out)) return Status::IoError("cannot write " + path);
  out.close();
  if (!out) return Status::IoError("cannot write " + path);
  return Status::Ok();
}

Status CheckModel(const onnx::ModelProto& model, const std::string& what) {
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    return Status::Internal(what + " fails the ONNX checker: " + e.what());
  }
  return Status::Ok();
}

namespace {

// An initializer's values: its raw bytes when set, else its typed repeated field.
template <typename T, typename Field>
std::vector<T> ValuesOf(const onnx::TensorProto& t, const Field& typed) {
  std::vector<T> v;
  if (!t.raw_data().empty()) {
    v.resize(t.raw_data().size() / sizeof(T));
    std::memcpy(v.data(), t.raw_data().data(), v.size() * sizeof(T));
  } else {
    v.assign(typed.begin(), typed.end());
  }
  return v;
}

}  // namespace

std::vector<const onnx::ValueInfoProto*> RuntimeInputs(const onnx::GraphProto& g) {
  std::unordered_set<std::string> inits;
  for (const auto& t : g.initializer()) inits.insert(t.name());
  std::vector<const onnx::ValueInfoProto*> out;
  for (const auto& v : g.input()) {
    if (!inits.count(v.name())) out.push_back(&v);
  }
  return out;
}

std::vector<float> FloatsOf(const onnx::TensorProto& t) { return ValuesOf<float>(t, t.float_data()); }

std::vector<int64_t> Int64sOf(const onnx::TensorProto& t) { return ValuesOf<int64_t>(t, t.int64_data()); }

const onnx::AttributeProto* Attr(const onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

int64_t IntAttr(const onnx::NodeProto& n, const std::string& name, int64_t def) {
  const auto* a = Attr(n, name);
  return a ? a->i() : def;
}

float FloatAttr(const onnx::NodeProto& n, const std::string& name, float def) {
  const auto* a = Attr(n, name);
  return a ? a->f() : def;
}

}  // namespace deepscan::compress
