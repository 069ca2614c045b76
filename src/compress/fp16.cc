#include "compress/fp16.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <unordered_map>

#include <opencv2/core.hpp>

#include "compress/onnx_io.h"

namespace deepscan::compress {
namespace {

constexpr float kHalfMax = 65504.0f;

// `t` (FLOAT) rewritten as FLOAT16 in place; counts clamped values. OpenCV does the conversion
// (round to nearest even).
void ToHalf(onnx::TensorProto* t, int* clamped) {
  std::vector<float> v = FloatsOf(*t);
  for (float& x : v) {
    if (std::fabs(x) > kHalfMax && std::isfinite(x)) {
      x = std::copysign(kHalfMax, x);
      ++*clamped;
    }
  }
  cv::Mat f(1, static_cast<int>(v.size()), CV_32F, v.data()), h;
  f.convertTo(h, CV_16F);
  t->clear_float_data();
  t->set_data_type(onnx::TensorProto::FLOAT16);
  t->set_raw_data(h.data, v.size() * 2);
}

onnx::NodeProto CastNode(const std::string& in, const std::string& out, int to) {
  onnx::NodeProto n;
  n.set_op_type("Cast");
  n.set_name(out + "/cast");
  n.add_input(in);
  n.add_output(out);
  auto* a = n.add_attribute();
  a->set_name("to");
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(to);
  return n;
}

}  // namespace

Result<Fp16Report> ConvertToFp16(const std::string& in_path, const std::string& out_path) {
  ASSIGN_OR_RETURN(onnx::ModelProto model, ReadModel(in_path));
  onnx::GraphProto* g = model.mutable_graph();
  for (const auto& n : g->node()) {
    if (n.op_type() == "Resize" || n.op_type() == "Upsample") {
      return Status::NotSupported(in_path + ": " + n.op_type() + " keeps float inputs; FP16 export does not handle it");
    }
    for (const auto& a : n.attribute()) {
      if (a.type() == onnx::AttributeProto::GRAPH || a.type() == onnx::AttributeProto::GRAPHS) {
        return Status::NotSupported(in_path + ": control flow (" + n.op_type() + ") is not handled by FP16 export");
      }
    }
  }
  Fp16Report rep;
  for (auto& t : *g->mutable_initializer()) {
    if (t.data_type() != onnx::TensorProto::FLOAT) continue;
    ToHalf(&t, &rep.clamped);
    ++rep.initializers;
  }
  for (auto& n : *g->mutable_node()) {
    if (n.op_type() == "ConstantOfShape" && !Attr(n, "value")) {
      // Its default value is a float 0: make it a half 0, or it would feed float into half ops.
      auto* a = n.add_attribute();
      a->set_name("value");
      a->set_type(onnx::AttributeProto::TENSOR);
      onnx::TensorProto* t = a->mutable_t();
      t->set_data_type(onnx::TensorProto::FLOAT);
      t->add_dims(1);
      t->add_float_data(0.0f);
    }
    for (auto& a : *n.mutable_attribute()) {
      if (a.type() == onnx::AttributeProto::TENSOR && a.t().data_type() == onnx::TensorProto::FLOAT) {
        ToHalf(a.mutable_t(), &rep.clamped);  // Constant, ConstantOfShape values
      }
      if (n.op_type() == "Cast" && a.name() == "to" && a.i() == onnx::TensorProto::FLOAT) {
        a.set_i(onnx::TensorProto::FLOAT16);
      }
    }
  }
  // The interface stays float: a Cast to half after each float input, to float before each output.
  std::unordered_map<std::string, std::string> renamed;  // float input -> its half copy
  std::vector<onnx::NodeProto> head;
  for (const onnx::ValueInfoProto* v : RuntimeInputs(*g)) {
    if (v->type().tensor_type().elem_type() != onnx::TensorProto::FLOAT) continue;
    renamed[v->name()] = v->name() + "/fp16";
    head.push_back(CastNode(v->name(), v->name() + "/fp16", onnx::TensorProto::FLOAT16));
  }
  std::unordered_map<std::string, std::string> outputs;  // float output -> the half tensor producing it
  for (const auto& v : g->output()) {
    if (v.type().tensor_type().elem_type() == onnx::TensorProto::FLOAT) outputs[v.name()] = v.name() + "/fp16";
  }
  if (renamed.empty()) return Status::InvalidModel(in_path + ": no float input");
  std::vector<onnx::NodeProto> nodes(head);
  for (const auto& original : g->node()) {
    onnx::NodeProto n = original;
    for (int k = 0; k < n.input_size(); ++k) {
      auto it = renamed.find(n.input(k));
      if (it != renamed.end()) n.set_input(k, it->second);
      auto out = outputs.find(n.input(k));
      if (out != outputs.end()) n.set_input(k, out->second);
    }
    for (int k = 0; k < n.output_size(); ++k) {
      auto out = outputs.find(n.output(k));
      if (out != outputs.end()) n.set_output(k, out->second);
    }
    nodes.push_back(n);
  }
  for (const auto& [name, half] : outputs) nodes.push_back(CastNode(half, name, onnx::TensorProto::FLOAT));
  g->clear_node();
  for (auto& n : nodes) *g->add_node() = std::move(n);
  g->clear_value_info();
  RETURN_IF_ERROR(CheckModel(model, "the FP16 model"));
  const std::string tmp = out_path + ".tmp";
  RETURN_IF_ERROR(WriteModel(model, tmp));
  std::error_code ec;
  std::filesystem::rename(tmp, out_path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return Status::IoError("cannot write " + out_path);
  }
  rep.bytes_in = static_cast<int64_t>(std::filesystem::file_size(in_path, ec));
  rep.bytes_out = static_cast<int64_t>(std::filesystem::file_size(out_path, ec));
  return rep;
}

}  // namespace deepscan::compress
