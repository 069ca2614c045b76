#include "compress/pad_channels.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <onnx/shape_inference/implementation.h>

#include "compress/onnx_io.h"

namespace deepscan::compress {
namespace {

bool IsElementwise(const std::string& op) {
  return op == "Relu" || op == "Clip" || op == "MaxPool" || op == "AveragePool";
}

class Padder {
 public:
  Padder(onnx::ModelProto* model, int multiple) : m_(model), g_(model->mutable_graph()), n_(multiple) {
    for (int i = 0; i < g_->initializer_size(); ++i) init_[g_->initializer(i).name()] = i;
    for (const auto& v : g_->input()) fixed_.insert(v.name());
    for (const auto& v : g_->output()) fixed_.insert(v.name());
    for (int i = 0; i < g_->node_size(); ++i) {
      for (const auto& o : g_->node(i).output()) producer_[o] = i;
      for (const auto& in : g_->node(i).input()) consumers_[in].push_back(i);
    }
    onnx::ModelProto typed = *model;
    try {
      onnx::shape_inference::InferShapes(typed);
    } catch (const std::exception&) {
    }
    auto note = [&](const onnx::ValueInfoProto& v) {
      const auto& t = v.type().tensor_type();
      if (t.elem_type() == onnx::TensorProto::FLOAT && t.shape().dim_size() == 4 && t.shape().dim(1).has_dim_value()) {
        channels_[v.name()] = t.shape().dim(1).dim_value();
      }
    };
    for (const auto& v : typed.graph().value_info()) note(v);
  }

  Result<PadReport> Run() {
    // Candidates: 4-D feature maps whose width is not a multiple, then narrowed to a fixpoint.
    for (const auto& [t, c] : channels_) {
      if (c % n_ != 0 && !fixed_.count(t) && !init_.count(t) && producer_.count(t)) pad_.insert(t);
    }
    for (bool changed = true; changed;) {
      changed = false;
      for (int i = 0; i < g_->node_size(); ++i) changed |= Constrain(g_->node(i));
    }
    PadReport rep;
    rep.tensors_padded = static_cast<int>(pad_.size());
    if (pad_.empty()) return rep;
    for (int i = 0; i < g_->node_size(); ++i) {
      onnx::NodeProto* n = g_->mutable_node(i);
      if (n->op_type() == "Conv") {
        if (RewriteConv(n)) ++rep.convs_changed;
      } else if (n->op_type() == "Concat") {
        RewriteConcat(n);
      }
    }
    g_->clear_value_info();  // widths changed; ORT infers them again
    DropUnused();
    RETURN_IF_ERROR(CheckModel(*m_, "the channel-padded model"));
    return rep;
  }

 private:
  int64_t Width(const std::string& t) const {
    auto it = channels_.find(t);
    if (it == channels_.end()) return -1;
    return pad_.count(t) ? (it->second + n_ - 1) / n_ * n_ : it->second;
  }
  const onnx::TensorProto* Init(const std::string& name) const {
    auto it = init_.find(name);
    return it == init_.end() ? nullptr : &g_->initializer(it->second);
  }
  bool Drop(const std::string& t) { return pad_.erase(t) > 0; }
  bool DropAll(const std::vector<std::string>& ts) {
    bool any = false;
    for (const auto& t : ts) any |= Drop(t);
    return any;
  }
  // The ConstantOfShape of zeros feeding input 1 of a channel Concat, or null.
  const onnx::NodeProto* ZeroPad(const onnx::NodeProto& concat) const {
    if (concat.op_type() != "Concat" || concat.input_size() != 2 || IntAttr(concat, "axis", 0) != 1) return nullptr;
    auto it = producer_.find(concat.input(1));
    if (it == producer_.end()) return nullptr;
    const onnx::NodeProto& c = g_->node(it->second);
    if (c.op_type() != "ConstantOfShape" || !Init(c.input(0))) return nullptr;
    if (const auto* v = Attr(c, "value")) {
      std::vector<float> vals = FloatsOf(v->t());
      if (v->t().data_type() != onnx::TensorProto::FLOAT || vals.size() != 1 || vals[0] != 0.0f) return nullptr;
    }
    return consumers_.at(concat.input(1)).size() == 1 ? &c : nullptr;
  }
  bool IsDepthwise(const onnx::NodeProto& conv) const {
    const auto* w = Init(conv.input(1));
    const int64_t g = IntAttr(conv, "group", 1);
    return w && g > 1 && w->dims_size() == 4 && w->dims(1) == 1 && w->dims(0) == g;
  }
  // Narrows pad_ so that `n` can be rewritten; true when something was dropped.
  bool Constrain(const onnx::NodeProto& n) {
    const std::string& op = n.op_type();
    std::vector<std::string> touched;
    for (const auto& t : n.input())
      if (pad_.count(t)) touched.push_back(t);
    for (const auto& t : n.output())
      if (pad_.count(t)) touched.push_back(t);
    if (touched.empty()) return false;
    if (op == "Conv") {
      const auto* w = Init(n.input(1));
      const int64_t g = IntAttr(n, "group", 1);
      const bool bias_ok = n.input_size() < 3 || n.input(2).empty() || Init(n.input(2));
      if (!w || w->dims_size() != 4 || !bias_ok || pad_.count(n.input(1))) return DropAll(touched);
      if (g == 1) return false;
      if (!IsDepthwise(n)) return DropAll(touched);
      // Depthwise: its groups are its channels, in and out alike.
      if (pad_.count(n.input(0)) != pad_.count(n.output(0))) return DropAll({n.input(0), n.output(0)});
      return false;
    }
    if (op == "Add") {
      if (n.input_size() != 2) return DropAll(touched);
      const std::vector<std::string> all = {n.input(0), n.input(1), n.output(0)};
      const bool same = channels_.count(n.input(0)) && channels_.count(n.input(1)) &&
                        channels_.at(n.input(0)) == channels_.at(n.input(1));
      if (!same || std::any_of(all.begin(), all.end(), [&](const std::string& t) { return !pad_.count(t); })) {
        return DropAll(all);
      }
      return false;
    }
    if (IsElementwise(op)) {
      if (n.output_size() != 1 || pad_.count(n.input(0)) != pad_.count(n.output(0))) {
        return DropAll({n.input(0), n.output(0)});
      }
      return false;
    }
    if (op == "Concat" && ZeroPad(n)) {
      // Zeros fill whatever the input leaves: only their count must not go negative.
      if (Width(n.output(0)) - Width(n.input(0)) < 0) return DropAll({n.input(0)});
      return false;
    }
    return DropAll(touched);
  }

  std::string NewInitializer(const std::string& base, int type, const std::vector<int64_t>& dims, const void* data,
                             size_t bytes) {
    std::string name = base + "/padded";
    while (init_.count(name)) name += "_";
    onnx::TensorProto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(type);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(data, bytes);
    init_[name] = g_->initializer_size() - 1;
    return name;
  }

  bool RewriteConv(onnx::NodeProto* n) {
    const int64_t in_w = Width(n->input(0)), out_w = Width(n->output(0));
    const onnx::TensorProto& w = *Init(n->input(1));
    const int64_t m = w.dims(0), c = w.dims(1), kh = w.dims(2), kw = w.dims(3);
    const bool depthwise = IsDepthwise(*n);
    const int64_t new_m = out_w > 0 ? out_w : m;
    const int64_t new_c = depthwise ? 1 : (in_w > 0 ? in_w : c);
    if (new_m == m && new_c == c) return false;
    std::vector<float> src = FloatsOf(w), dst(static_cast<size_t>(new_m * new_c * kh * kw), 0.0f);
    const int64_t k = kh * kw;
    for (int64_t o = 0; o < m; ++o)
      for (int64_t i = 0; i < c; ++i)
        std::memcpy(&dst[(o * new_c + i) * k], &src[(o * c + i) * k], k * sizeof(float));
    n->set_input(1, NewInitializer(n->input(1), onnx::TensorProto::FLOAT, {new_m, new_c, kh, kw}, dst.data(),
                                   dst.size() * sizeof(float)));
    if (n->input_size() > 2 && !n->input(2).empty() && new_m != m) {
      std::vector<float> b = FloatsOf(*Init(n->input(2)));
      b.resize(new_m, 0.0f);
      n->set_input(2, NewInitializer(n->input(2), onnx::TensorProto::FLOAT, {new_m}, b.data(), b.size() * 4));
    }
    if (depthwise) {
      for (auto& a : *n->mutable_attribute())
        if (a.name() == "group") a.set_i(new_m);
    }
    return true;
  }

  void RewriteConcat(onnx::NodeProto* n) {
    const onnx::NodeProto* zeros = ZeroPad(*n);
    if (!zeros || (!pad_.count(n->input(0)) && !pad_.count(n->output(0)))) return;
    const int64_t z = Width(n->output(0)) - Width(n->input(0));
    if (z == 0) {  // nothing left to fill: the Concat becomes a copy
      const std::string x = n->input(0), y = n->output(0);
      n->Clear();
      n->set_op_type("Identity");
      n->set_name(y + "/identity");
      n->add_input(x);
      n->add_output(y);
      return;
    }
    std::vector<int64_t> shape = Int64sOf(*Init(zeros->input(0)));
    if (shape.size() != 4) return;
    shape[1] = z;
    const std::string name =
        NewInitializer(zeros->input(0), onnx::TensorProto::INT64, {4}, shape.data(), shape.size() * sizeof(int64_t));
    g_->mutable_node(producer_.at(n->input(1)))->set_input(0, name);
  }

  void DropUnused() {
    std::unordered_set<std::string> used;
    for (const auto& n : g_->node())
      for (const auto& in : n.input()) used.insert(in);
    // The ConstantOfShape of a Concat turned Identity: nobody reads it now.
    auto* nodes = g_->mutable_node();
    for (int i = nodes->size() - 1; i >= 0; --i) {
      const auto& n = nodes->Get(i);
      if (n.op_type() != "ConstantOfShape") continue;
      bool read = false;
      for (const auto& o : n.output()) read = read || used.count(o) || fixed_.count(o);
      if (!read) nodes->DeleteSubrange(i, 1);
    }
    used.clear();
    for (const auto& n : g_->node())
      for (const auto& in : n.input()) used.insert(in);
    auto* inits = g_->mutable_initializer();
    for (int i = inits->size() - 1; i >= 0; --i) {
      if (!used.count(inits->Get(i).name()) && !fixed_.count(inits->Get(i).name())) inits->DeleteSubrange(i, 1);
    }
  }

  onnx::ModelProto* m_;
  onnx::GraphProto* g_;
  const int n_;
  std::unordered_map<std::string, int> init_;
  std::unordered_set<std::string> fixed_;
  std::unordered_map<std::string, int> producer_;
  std::unordered_map<std::string, std::vector<int>> consumers_;
  std::unordered_map<std::string, int64_t> channels_;
  std::set<std::string> pad_;
};

}  // namespace

Result<PadReport> PadChannels(const std::string& in_path, const std::string& out_path, int multiple) {
  if (multiple < 2 || multiple > 256) return Status::InvalidArgument("channel multiple must be in [2, 256]");
  ASSIGN_OR_RETURN(onnx::ModelProto model, ReadModel(in_path));
  Padder padder(&model, multiple);
  ASSIGN_OR_RETURN(PadReport rep, padder.Run());
  RETURN_IF_ERROR(WriteModel(model, out_path));
  return rep;
}

}  // namespace deepscan::compress
