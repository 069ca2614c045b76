#include "compress/quantize.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <functional>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>
#include <unistd.h>

#include "compress/onnx_io.h"
#include "compress/pad_channels.h"
#include "infer/ort_model.h"

namespace deepscan::compress {
namespace {

namespace fs = std::filesystem;

// Operators whose meaning did not change from opset 11/12 to 13 (only types were added), so a
// model made of them may be stamped 13. Softmax, Squeeze, Unsqueeze, Split and the reductions
// did change, and are not here.
const std::unordered_set<std::string> kSameAt13 = {
    "Add",      "Sub",       "Mul",      "Div",     "Relu",    "Clip",         "Sigmoid",     "Tanh",
    "Conv",     "Gemm",      "MatMul",   "MaxPool", "AveragePool", "GlobalAveragePool", "Concat",
    "Reshape",  "Transpose", "Flatten",  "Pad",     "ConstantOfShape", "Constant", "Identity", "Shape",
    "Gather",   "Cast",      "Resize",   "LeakyRelu", "PRelu", "HardSigmoid", "BatchNormalization"};

// Operators given QDQ inputs and outputs (ORT has integer kernels for the fused group).
const std::unordered_set<std::string> kCompute = {"Conv", "Gemm", "Add", "Concat", "AveragePool",
                                                   "GlobalAveragePool"};
// Operators whose output range lies inside their input's: they reuse its parameters.
const std::unordered_set<std::string> kPassThrough = {"MaxPool", "Reshape", "Transpose", "Flatten", "Squeeze",
                                                       "Unsqueeze"};

std::atomic<int> temp_counter{0};

std::string TempPath(const std::string& stem) {
  return (fs::temp_directory_path() /
          ("deepscan-" + stem + "-" + std::to_string(getpid()) + "-" + std::to_string(temp_counter++) + ".onnx"))
      .string();
}

// Removes a file when it goes out of scope.
struct TempFile {
  std::string path;
  ~TempFile() {
    std::error_code ec;
    if (!path.empty()) fs::remove(path, ec);
  }
};

void AddTensor(onnx::GraphProto* g, const std::string& name, int type, const std::vector<int64_t>& dims,
               const void* data, size_t bytes) {
  onnx::TensorProto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(type);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(data, bytes);
}

void AddFloats(onnx::GraphProto* g, const std::string& name, const std::vector<float>& v, bool scalar) {
  std::vector<int64_t> dims;
  if (!scalar) dims.push_back(static_cast<int64_t>(v.size()));
  AddTensor(g, name, onnx::TensorProto::FLOAT, dims, v.data(), v.size() * sizeof(float));
}

onnx::NodeProto MakeNode(const std::string& op, const std::vector<std::string>& in, const std::string& out,
                         int axis = -1) {
  onnx::NodeProto n;
  n.set_op_type(op);
  n.set_name(out);
  for (const auto& s : in) n.add_input(s);
  n.add_output(out);
  if (axis >= 0) {
    auto* a = n.add_attribute();
    a->set_name("axis");
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(axis);
  }
  return n;
}

// Running statistics of one tensor over the calibration runs.
struct TensorStats {
  float min = std::numeric_limits<float>::infinity();
  float max = -std::numeric_limits<float>::infinity();
  std::vector<double> hist;  // of |x| over [0, absmax], second pass only

  double absmax() const { return std::max(std::fabs(min), std::fabs(max)); }
  void AddRange(const float* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      min = std::min(min, p[i]);
      max = std::max(max, p[i]);
    }
  }
  void AddHistogram(const float* p, size_t n, int bins) {
    if (hist.empty()) hist.assign(bins, 0.0);
    const double top = absmax();
    if (top <= 0) return;
    const double k = bins / top;
    for (size_t i = 0; i < n; ++i) {
      int b = static_cast<int>(std::fabs(p[i]) * k);
      hist[std::min(b, bins - 1)] += 1;
    }
  }
};

// Which tensor's parameters a quantised tensor uses: its own (calibrated) or another's.
struct QTensor {
  std::string params_of;  // == the tensor's own name when calibrated
};

// The plan: which nodes are quantised and which tensors get a QDQ pair.
struct Plan {
  std::vector<int> compute_nodes;                 // indices into graph.node
  std::unordered_map<std::string, QTensor> qdq;   // tensor -> parameter source
  std::vector<std::string> order;                 // qdq tensors in insertion order
  std::vector<std::string> float_nodes;
};

class Planner {
 public:
  explicit Planner(const onnx::ModelProto& model) : g_(model.graph()) {
    for (const auto& t : g_.initializer()) init_[t.name()] = &t;
    for (const auto& v : g_.output()) graph_outputs_.insert(v.name());
    for (int i = 0; i < g_.node_size(); ++i) {
      const auto& n = g_.node(i);
      for (const auto& in : n.input())
        if (!in.empty()) consumers_[in].push_back(i);
    }
    // Element types, from ONNX shape inference on a copy (the written model stays as it was).
    onnx::ModelProto typed = model;
    try {
      onnx::shape_inference::InferShapes(typed);
    } catch (const std::exception&) {
      // Types stay unknown where inference failed; those tensors are left float.
    }
    auto note = [&](const onnx::ValueInfoProto& v) {
      if (v.type().has_tensor_type()) type_[v.name()] = v.type().tensor_type().elem_type();
    };
    for (const auto& v : typed.graph().value_info()) note(v);
    for (const auto& v : typed.graph().input()) note(v);
    for (const auto& v : typed.graph().output()) note(v);
  }

  bool IsInitializer(const std::string& t) const { return init_.count(t) > 0; }
  const onnx::TensorProto* Initializer(const std::string& t) const {
    auto it = init_.find(t);
    return it == init_.end() ? nullptr : it->second;
  }
  bool IsFloatActivation(const std::string& t) const {
    if (t.empty() || IsInitializer(t)) return false;
    auto it = type_.find(t);
    return it != type_.end() && it->second == onnx::TensorProto::FLOAT;
  }
  bool IsGraphOutput(const std::string& t) const { return graph_outputs_.count(t) > 0; }
  const std::vector<int>& Consumers(const std::string& t) const {
    static const std::vector<int> none;
    auto it = consumers_.find(t);
    return it == consumers_.end() ? none : it->second;
  }

  // The data inputs of a compute node (weights and biases excluded).
  std::vector<std::string> DataInputs(const onnx::NodeProto& n) const {
    if (n.op_type() == "Add" || n.op_type() == "Concat") return {n.input().begin(), n.input().end()};
    return {n.input(0)};
  }

  // Why `n` cannot be quantised ("" when it can).
  std::string WhyNot(const onnx::NodeProto& n) const {
    const std::string& op = n.op_type();
    if (op == "Conv") {
      const auto* w = Initializer(n.input(1));
      if (!w || w->data_type() != onnx::TensorProto::FLOAT || w->dims_size() < 3) return "weights not a float initializer";
      if (n.input_size() > 2 && !n.input(2).empty()) {
        const auto* b = Initializer(n.input(2));
        if (!b || b->dims_size() != 1 || b->dims(0) != w->dims(0)) return "bias not a float initializer";
      }
    } else if (op == "Gemm") {
      const auto* w = Initializer(n.input(1));
      if (!w || w->data_type() != onnx::TensorProto::FLOAT || w->dims_size() != 2) return "B not a float initializer";
      if (IntAttr(n, "transA", 0) != 0) return "transA";
      if (FloatAttr(n, "alpha", 1) != 1.0f || FloatAttr(n, "beta", 1) != 1.0f) return "alpha/beta not 1";
      const int64_t cols = IntAttr(n, "transB", 0) ? w->dims(0) : w->dims(1);
      if (n.input_size() > 2 && !n.input(2).empty()) {
        const auto* c = Initializer(n.input(2));
        if (!c || c->dims_size() != 1 || c->dims(0) != cols) return "C not a 1-D float initializer";
      }
    }
    for (const auto& x : DataInputs(n)) {
      if (!IsFloatActivation(x)) return "input " + x + " not a float activation";
    }
    if (!IsFloatActivation(n.output(0))) return "output type unknown";
    return "";
  }

  // The tensor that carries a compute node's result: its output, or the output of the Relu/Clip
  // that is its only consumer (folded into the range).
  std::string ResultTensor(const onnx::NodeProto& n) const {
    const std::string& out = n.output(0);
    const auto& cons = Consumers(out);
    if (cons.size() == 1 && !IsGraphOutput(out)) {
      const auto& act = g_.node(cons[0]);
      const bool constant_bounds =
          act.op_type() == "Relu" ||
          (act.op_type() == "Clip" && std::all_of(act.input().begin() + 1, act.input().end(), [&](const std::string& s) {
             return s.empty() || IsInitializer(s);
           }));
      if (constant_bounds && act.input(0) == out && IsFloatActivation(act.output(0))) return act.output(0);
    }
    return out;
  }

  // The plan with the quantisable compute nodes that `allowed` accepts (all when empty); the
  // others are listed in float_nodes with `why_not_allowed`.
  Plan Make(const std::function<bool(int, const onnx::NodeProto&)>& allowed = nullptr,
            const std::string& why_not_allowed = "not selected") const {
    Plan p;
    auto add = [&](const std::string& t, const std::string& params_of) {
      if (IsGraphOutput(t) || p.qdq.count(t)) return;
      p.qdq[t] = {params_of};
      p.order.push_back(t);
    };
    // Tensors that reach a model output through range-preserving operators only: the operator
    // producing one is an output layer (detector logits span 10^4, box regressors 10^3 pixels;
    // 256 levels cannot hold them), kept float.
    std::unordered_set<std::string> to_output(graph_outputs_.begin(), graph_outputs_.end());
    for (int i = g_.node_size() - 1; i >= 0; --i) {
      const auto& n = g_.node(i);
      if (kPassThrough.count(n.op_type()) && n.output_size() == 1 && to_output.count(n.output(0))) {
        to_output.insert(n.input(0));
      }
    }
    for (int i = 0; i < g_.node_size(); ++i) {
      const auto& n = g_.node(i);
      if (kCompute.count(n.op_type())) {
        std::string why = to_output.count(ResultTensor(n)) ? "output layer, kept float for precision" : WhyNot(n);
        if (why.empty() && allowed && !allowed(i, n)) why = why_not_allowed;
        if (!why.empty()) {
          p.float_nodes.push_back(n.op_type() + " " + n.name() + ": " + why);
          continue;
        }
        p.compute_nodes.push_back(i);
        for (const auto& x : DataInputs(n)) add(x, x);
        const std::string r = ResultTensor(n);
        add(r, r);
      } else if (kPassThrough.count(n.op_type()) && n.output_size() == 1) {
        auto it = p.qdq.find(n.input(0));
        if (it != p.qdq.end() && IsFloatActivation(n.output(0))) add(n.output(0), it->second.params_of);
      }
    }
    return p;
  }

 private:
  const onnx::GraphProto& g_;
  std::unordered_map<std::string, const onnx::TensorProto*> init_;
  std::unordered_set<std::string> graph_outputs_;
  std::unordered_map<std::string, std::vector<int>> consumers_;
  std::unordered_map<std::string, int> type_;
};

Status CheckOpset(onnx::ModelProto* m, const std::string& path) {
  for (auto& op : *m->mutable_opset_import()) {
    if (!op.domain().empty() && op.domain() != "ai.onnx") continue;
    if (op.version() >= 13) return Status::Ok();
    if (op.version() < 11) {
      return Status::NotSupported(path + ": opset " + std::to_string(op.version()) +
                                  " (INT8 export needs 11 or later; re-export the model)");
    }
    for (const auto& n : m->graph().node()) {
      if (!kSameAt13.count(n.op_type())) {
        return Status::NotSupported(path + ": opset " + std::to_string(op.version()) + " with " + n.op_type() +
                                    ", whose meaning changed at opset 13 (re-export the model at 13 or later)");
      }
    }
    op.set_version(13);  // per-channel QuantizeLinear/DequantizeLinear are opset 13
    return Status::Ok();
  }
  return Status::InvalidModel(path + ": no default-domain opset");
}

// Calibration: min/max (and |x| histograms) of every tensor to calibrate.
Result<std::unordered_map<std::string, TensorStats>> Calibrate(const onnx::ModelProto& model, const Plan& plan,
                                                               const std::string& input_name,
                                                               const std::vector<CalibrationSample>& samples,
                                                               const QuantizeOptions& o) {
  std::unordered_map<std::string, TensorStats> stats;
  std::vector<std::string> to_run;  // tensors read from model outputs
  bool input_needed = false;
  for (const auto& t : plan.order) {
    if (plan.qdq.at(t).params_of != t) continue;
    stats[t];
    if (t == input_name)
      input_needed = true;
    else
      to_run.push_back(t);
  }
  onnx::ModelProto probe = model;
  std::unordered_set<std::string> existing;
  for (const auto& v : probe.graph().output()) existing.insert(v.name());
  for (const auto& t : to_run) {
    if (existing.count(t)) continue;
    auto* v = probe.mutable_graph()->add_output();
    v->set_name(t);
    v->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  }
  TempFile tmp{TempPath("calib")};
  RETURN_IF_ERROR(WriteModel(probe, tmp.path));
  infer::OrtModelOptions ort;
  ort.threads = o.threads;
  ASSIGN_OR_RETURN(std::unique_ptr<infer::OrtModel> session, infer::OrtModel::Load(tmp.path, ort));
  std::vector<TensorStats*> slot;
  for (const auto& spec : session->outputs()) {
    auto it = stats.find(spec.name);
    slot.push_back(it == stats.end() ? nullptr : &it->second);
  }
  TensorStats* input_stats = input_needed ? &stats[input_name] : nullptr;
  std::vector<std::vector<float>> outs;
  std::vector<std::vector<int64_t>> shapes;
  for (int pass = 0; pass < (o.method == CalibrationMethod::kMinMax ? 1 : 2); ++pass) {
    // Pass 0 takes the ranges; pass 1 the |x| histograms over them.
    auto add = [&](TensorStats* st, const std::vector<float>& v) {
      if (pass == 0)
        st->AddRange(v.data(), v.size());
      else
        st->AddHistogram(v.data(), v.size(), o.bins);
    };
    for (const auto& s : samples) {
      RETURN_IF_ERROR(session->Run(s.data.data(), s.shape, &outs, &shapes));
      for (size_t i = 0; i < outs.size(); ++i) {
        if (slot[i]) add(slot[i], outs[i]);
      }
      if (input_stats) add(input_stats, s.data);
    }
  }
  return stats;
}

QParams ParamsFor(const TensorStats& s, const QuantizeOptions& o) {
  if (!std::isfinite(s.min) || !std::isfinite(s.max)) return {};
  float lo = s.min, hi = s.max;
  if (o.method != CalibrationMethod::kMinMax && !s.hist.empty()) {
    const int levels = s.min >= 0 ? 256 : 128;
    const double t = ThresholdFromHistogram(s.hist, s.absmax(), o.method, o.percentile, levels);
    lo = std::max(lo, static_cast<float>(-t));
    hi = std::min(hi, static_cast<float>(t));
  }
  return Uint8Params(lo, hi);
}

// int8 weights, symmetric, per slice along `axis` (or one scale): returns the scales.
std::vector<float> QuantizeWeights(const std::vector<float>& w, const std::vector<int64_t>& dims, int axis,
                                   bool per_channel, std::vector<int8_t>* q) {
  const int64_t channels = per_channel ? dims[axis] : 1;
  int64_t inner = 1;  // elements after `axis`
  for (size_t d = axis + 1; d < dims.size(); ++d) inner *= dims[d];
  auto channel_of = [&](size_t i) -> int64_t { return per_channel ? (static_cast<int64_t>(i) / inner) % dims[axis] : 0; };
  std::vector<float> amax(channels, 0.0f);
  for (size_t i = 0; i < w.size(); ++i) amax[channel_of(i)] = std::max(amax[channel_of(i)], std::fabs(w[i]));
  std::vector<float> scale(channels);
  for (int64_t c = 0; c < channels; ++c) scale[c] = amax[c] > 0 ? amax[c] / 127.0f : 1.0f;
  q->resize(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    float v = std::nearbyint(w[i] / scale[channel_of(i)]);
    (*q)[i] = static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f));
  }
  return scale;
}

}  // namespace

Result<CalibrationMethod> ParseCalibrationMethod(const std::string& name) {
  if (name == "minmax") return CalibrationMethod::kMinMax;
  if (name == "percentile") return CalibrationMethod::kPercentile;
  if (name == "entropy") return CalibrationMethod::kEntropy;
  return Status::InvalidArgument("unknown calibration method '" + name + "' (minmax | percentile | entropy)");
}

const char* CalibrationMethodName(CalibrationMethod m) {
  switch (m) {
    case CalibrationMethod::kMinMax:
      return "minmax";
    case CalibrationMethod::kPercentile:
      return "percentile";
    case CalibrationMethod::kEntropy:
      return "entropy";
  }
  return "?";
}

QParams Uint8Params(float lo, float hi) {
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  QParams p;
  if (!(hi - lo > 1e-12f)) return p;  // a constant-zero tensor: any scale represents it
  p.scale = (hi - lo) / 255.0f;
  p.zero_point = static_cast<uint8_t>(std::clamp(std::nearbyint(-lo / p.scale), 0.0f, 255.0f));
  return p;
}

double ThresholdFromHistogram(const std::vector<double>& hist, double absmax, CalibrationMethod method,
                              double percentile, int levels) {
  const int bins = static_cast<int>(hist.size());
  if (bins == 0 || absmax <= 0 || method == CalibrationMethod::kMinMax) return absmax;
  const double width = absmax / bins;
  double total = 0;
  for (double h : hist) total += h;
  if (total <= 0) return absmax;
  if (method == CalibrationMethod::kPercentile) {
    const double want = total * std::clamp(percentile, 0.0, 100.0) / 100.0;
    double run = 0;
    for (int i = 0; i < bins; ++i) {
      run += hist[i];
      if (run >= want) return (i + 1) * width;
    }
    return absmax;
  }
  // Entropy: the threshold whose `levels`-level quantisation of the clipped distribution P is
  // closest to P in KL divergence (TensorRT's INT8 calibrator).
  if (bins <= levels) return absmax;
  double best_kl = std::numeric_limits<double>::infinity();
  int best_i = bins;
  std::vector<double> p(bins), q(bins);
  double tail = 0;  // mass beyond bin i, folded into P's last bin
  for (int i = bins - 1; i >= levels; --i) tail += hist[i];
  for (int i = levels; i <= bins; ++i) {
    // P: hist[0, i) with the outliers (hist[i, bins)) added to its last bin.
    if (i > levels) tail -= hist[i - 1];
    std::copy(hist.begin(), hist.begin() + i, p.begin());
    p[i - 1] += tail;
    // Q: hist[0, i) merged into `levels` groups, each group's mass spread over its non-empty bins.
    for (int j = 0; j < levels; ++j) {
      const int a = static_cast<int>(static_cast<int64_t>(j) * i / levels);
      const int b = static_cast<int>(static_cast<int64_t>(j + 1) * i / levels);
      double mass = 0;
      int nonzero = 0;
      for (int k = a; k < b; ++k) {
        mass += hist[k];
        if (hist[k] > 0) ++nonzero;
      }
      for (int k = a; k < b; ++k) q[k] = hist[k] > 0 ? mass / nonzero : 0.0;
    }
    double ps = 0, qs = 0;
    for (int k = 0; k < i; ++k) {
      ps += p[k];
      qs += q[k];
    }
    if (ps <= 0 || qs <= 0) continue;
    double kl = 0;
    for (int k = 0; k < i; ++k) {
      if (p[k] <= 0) continue;
      const double pk = p[k] / ps;
      const double qk = q[k] > 0 ? q[k] / qs : 1e-12;  // P's outlier bin may have no Q mass
      kl += pk * std::log(pk / qk);
    }
    if (kl < best_kl) {
      best_kl = kl;
      best_i = i;
    }
  }
  return (best_i + 0.5) * width;
}

namespace {

// Counts of what a QDQ rewrite did.
struct Rewrite {
  onnx::ModelProto model;
  int weight_tensors = 0, activation_tensors = 0;
};

// The QDQ model of `model` for `plan`: the QDQ parameters, each quantised tensor's QuantizeLinear ->
// DequantizeLinear right after its producer (graph inputs first), consumers rewired to the
// dequantised copy, weights int8 and biases int32 behind DequantizeLinear.
Result<Rewrite> BuildQdq(const onnx::ModelProto& model, const Planner& planner, const Plan& plan,
                         const std::unordered_map<std::string, QParams>& params, const QuantizeOptions& o) {
  Rewrite rw;
  rw.model = model;
  const onnx::GraphProto& g = model.graph();
  onnx::GraphProto out_graph = g;
  out_graph.clear_node();
  auto dq_name = [](const std::string& t) { return t + "/dq"; };
  auto emit_qdq = [&](const std::string& t) {
    const QParams& qp = params.at(t);
    AddFloats(&out_graph, t + "/scale", {qp.scale}, true);
    AddTensor(&out_graph, t + "/zero_point", onnx::TensorProto::UINT8, {}, &qp.zero_point, 1);
    *out_graph.add_node() = MakeNode("QuantizeLinear", {t, t + "/scale", t + "/zero_point"}, t + "/q");
    *out_graph.add_node() = MakeNode("DequantizeLinear", {t + "/q", t + "/scale", t + "/zero_point"}, dq_name(t));
    ++rw.activation_tensors;
  };
  for (const auto& v : g.input()) {
    if (plan.qdq.count(v.name())) emit_qdq(v.name());
  }
  std::unordered_set<int> compute(plan.compute_nodes.begin(), plan.compute_nodes.end());
  for (int i = 0; i < g.node_size(); ++i) {
    onnx::NodeProto n = g.node(i);
    for (int k = 0; k < n.input_size(); ++k) {
      if (plan.qdq.count(n.input(k))) n.set_input(k, dq_name(n.input(k)));
    }
    if (compute.count(i) && (n.op_type() == "Conv" || n.op_type() == "Gemm")) {
      const bool gemm = n.op_type() == "Gemm";
      const std::string base = n.output(0);
      const onnx::TensorProto* w = planner.Initializer(g.node(i).input(1));
      std::vector<int64_t> dims(w->dims().begin(), w->dims().end());
      const int axis = gemm && IntAttr(n, "transB", 0) == 0 ? 1 : 0;  // the output-channel axis
      std::vector<int8_t> wq;
      std::vector<float> ws = QuantizeWeights(FloatsOf(*w), dims, axis, o.per_channel, &wq);
      std::vector<int8_t> wzp(ws.size(), 0);
      const std::vector<int64_t> scale_dims = o.per_channel ? std::vector<int64_t>{dims[axis]} : std::vector<int64_t>{};
      AddTensor(&out_graph, base + "/w_int8", onnx::TensorProto::INT8, dims, wq.data(), wq.size());
      AddTensor(&out_graph, base + "/w_scale", onnx::TensorProto::FLOAT, scale_dims, ws.data(), ws.size() * 4);
      AddTensor(&out_graph, base + "/w_zero_point", onnx::TensorProto::INT8, scale_dims, wzp.data(), wzp.size());
      *out_graph.add_node() = MakeNode("DequantizeLinear", {base + "/w_int8", base + "/w_scale", base + "/w_zero_point"},
                                       base + "/w", o.per_channel ? axis : -1);
      n.set_input(1, base + "/w");
      ++rw.weight_tensors;
      if (n.input_size() > 2 && !n.input(2).empty()) {
        const float xs = params.at(g.node(i).input(0)).scale;
        std::vector<float> b = FloatsOf(*planner.Initializer(g.node(i).input(2)));
        std::vector<float> bs(b.size());
        std::vector<int32_t> bq(b.size()), bzp(b.size(), 0);
        for (size_t c = 0; c < b.size(); ++c) {
          bs[c] = xs * ws[o.per_channel ? c : 0];
          double v = std::nearbyint(b[c] / bs[c]);
          bq[c] = static_cast<int32_t>(std::clamp(v, -2147483647.0, 2147483647.0));
        }
        const std::vector<int64_t> bdims{static_cast<int64_t>(b.size())};
        AddTensor(&out_graph, base + "/b_int32", onnx::TensorProto::INT32, bdims, bq.data(), bq.size() * 4);
        AddTensor(&out_graph, base + "/b_scale", onnx::TensorProto::FLOAT, bdims, bs.data(), bs.size() * 4);
        AddTensor(&out_graph, base + "/b_zero_point", onnx::TensorProto::INT32, bdims, bzp.data(), bzp.size() * 4);
        *out_graph.add_node() =
            MakeNode("DequantizeLinear", {base + "/b_int32", base + "/b_scale", base + "/b_zero_point"}, base + "/b", 0);
        n.set_input(2, base + "/b");
      }
    }
    *out_graph.add_node() = n;
    for (const auto& t : g.node(i).output()) {
      if (plan.qdq.count(t)) emit_qdq(t);
    }
  }
  // Drop the float initializers nothing reads any more.
  std::unordered_set<std::string> used;
  for (const auto& n : out_graph.node())
    for (const auto& in : n.input()) used.insert(in);
  for (const auto& v : out_graph.output()) used.insert(v.name());
  auto* inits = out_graph.mutable_initializer();
  std::unordered_set<std::string> dropped;
  for (int k = inits->size() - 1; k >= 0; --k) {
    if (!used.count(inits->Get(k).name())) {
      dropped.insert(inits->Get(k).name());
      inits->DeleteSubrange(k, 1);
    }
  }
  auto* ins = out_graph.mutable_input();
  for (int k = ins->size() - 1; k >= 0; --k) {
    if (dropped.count(ins->Get(k).name())) ins->DeleteSubrange(k, 1);
  }
  *rw.model.mutable_graph() = std::move(out_graph);
  rw.model.set_producer_name("deepscan quantize");
  RETURN_IF_ERROR(CheckModel(rw.model, "the QDQ model"));
  return rw;
}

using Outputs = std::vector<std::vector<std::vector<float>>>;  // per sample, per output

// Runs the model at `path` on samples [0, count).
Result<Outputs> RunAll(const std::string& path, const std::vector<CalibrationSample>& samples, size_t count,
                       int threads, std::vector<std::vector<int64_t>>* shapes = nullptr) {
  infer::OrtModelOptions ort;
  ort.threads = threads;
  ASSIGN_OR_RETURN(std::unique_ptr<infer::OrtModel> m, infer::OrtModel::Load(path, ort));
  Outputs all(count);
  std::vector<std::vector<int64_t>> sh;
  for (size_t s = 0; s < count; ++s) RETURN_IF_ERROR(m->Run(samples[s].data.data(), samples[s].shape, &all[s], &sh));
  if (shapes) *shapes = sh;
  return all;
}

}  // namespace

double MeanRelativeError(const std::vector<std::vector<std::vector<float>>>& ref,
                         const std::vector<std::vector<std::vector<float>>>& got,
                         const std::vector<std::vector<int64_t>>& /*shapes*/) {
  if (ref.empty()) return 0;
  double total = 0;
  const size_t outputs = ref[0].size();
  for (size_t k = 0; k < outputs; ++k) {
    double sum = 0, n = 0, diff = 0;
    for (const auto& s : ref)
      for (float v : s[k]) sum += v, ++n;
    const double mean = n ? sum / n : 0;
    double dev = 0;
    for (size_t i = 0; i < ref.size() && i < got.size(); ++i) {
      for (size_t e = 0; e < ref[i][k].size() && e < got[i][k].size(); ++e) {
        dev += std::fabs(ref[i][k][e] - mean);
        diff += std::fabs(ref[i][k][e] - got[i][k][e]);
      }
    }
    total += dev > 0 ? diff / dev : diff;
  }
  return total / outputs;
}

Result<QuantizeReport> QuantizeStatic(const std::string& in_path, const std::string& out_path,
                                      const std::vector<CalibrationSample>& samples, const QuantizeOptions& o) {
  if (samples.empty()) return Status::InvalidArgument("no calibration samples");
  if (o.percentile <= 0 || o.percentile > 100) return Status::InvalidArgument("percentile must be in (0, 100]");
  if (o.bins < 256 || o.bins > 1 << 16) return Status::InvalidArgument("histogram bins must be in [256, 65536]");
  if (o.max_float_layers < 0) return Status::InvalidArgument("max_float_layers must be >= 0");
  TempFile padded{o.pad_channels > 1 ? TempPath("padded") : ""};
  int tensors_padded = 0;
  if (o.pad_channels > 1) {
    ASSIGN_OR_RETURN(PadReport pad, PadChannels(in_path, padded.path, o.pad_channels));
    tensors_padded = pad.tensors_padded;
  }
  // The float model the INT8 one is built from and judged against.
  const std::string& float_path = padded.path.empty() ? in_path : padded.path;
  ASSIGN_OR_RETURN(onnx::ModelProto model, ReadModel(float_path));
  RETURN_IF_ERROR(CheckOpset(&model, in_path));
  const onnx::GraphProto& g = model.graph();
  std::string input_name;
  for (const onnx::ValueInfoProto* v : RuntimeInputs(g)) {
    if (v->type().tensor_type().elem_type() != onnx::TensorProto::FLOAT) {
      return Status::InvalidModel(in_path + ": input " + v->name() + " is not float");
    }
    if (input_name.empty()) input_name = v->name();
  }
  if (input_name.empty()) return Status::InvalidModel(in_path + ": no input");
  for (const auto& n : g.node()) {
    if (n.op_type() == "QuantizeLinear" || n.op_type() == "DequantizeLinear" || n.op_type() == "QLinearConv") {
      return Status::InvalidModel(in_path + ": already quantised");
    }
  }

  Planner planner(model);
  auto requested_float = [&](const onnx::NodeProto& n) {
    return std::any_of(o.keep_float.begin(), o.keep_float.end(),
                       [&](const std::string& k) {
                         return !k.empty() && (n.name().find(k) != std::string::npos ||
                                               (n.output_size() > 0 && n.output(0).find(k) != std::string::npos));
                       });
  };
  Plan full = planner.Make([&](int, const onnx::NodeProto& n) { return !requested_float(n); }, "kept float as asked");
  if (full.compute_nodes.empty()) return Status::InvalidModel(in_path + ": no operator that INT8 can run");
  // Every tensor any sub-plan may quantise gets its own statistics (an alias in the full plan
  // may stand alone in a sub-plan).
  Plan calib = full;
  for (auto& [t, q] : calib.qdq) q.params_of = t;
  ASSIGN_OR_RETURN(auto stats, Calibrate(model, calib, input_name, samples, o));
  std::unordered_map<std::string, QParams> params;
  for (const auto& t : calib.order) params[t] = ParamsFor(stats.at(t), o);
  auto params_for = [&](const Plan& p) {
    std::unordered_map<std::string, QParams> out;
    for (const auto& t : p.order) out[t] = params.at(p.qdq.at(t).params_of);
    return out;
  };

  const size_t checked = std::min<size_t>(samples.size(), 64);
  std::vector<std::vector<int64_t>> shapes;
  ASSIGN_OR_RETURN(Outputs reference, RunAll(float_path, samples, checked, o.threads, &shapes));
  const OutputError error = o.error ? o.error : OutputError(MeanRelativeError);
  TempFile probe{TempPath("candidate")};
  // A QDQ model built, run by ORT on the checked samples, and judged: the one chosen is written
  // as it was measured.
  struct Candidate {
    Plan plan;
    Rewrite rw;
    Outputs got;
    double error = 0;
  };
  auto measure = [&](const Plan& plan) -> Result<Candidate> {
    Candidate c;
    c.plan = plan;
    ASSIGN_OR_RETURN(c.rw, BuildQdq(model, planner, plan, params_for(plan), o));
    RETURN_IF_ERROR(WriteModel(c.rw.model, probe.path));
    ASSIGN_OR_RETURN(c.got, RunAll(probe.path, samples, checked, o.threads));
    c.error = error(reference, c.got, shapes);
    return c;
  };

  QuantizeReport report;
  report.samples = static_cast<int64_t>(samples.size());
  report.tensors_padded = tensors_padded;
  ASSIGN_OR_RETURN(Candidate chosen, measure(full));
  report.error_all_int8 = chosen.error;
  if (o.max_float_layers > 0 && chosen.error > o.target_error) {
    // One-at-a-time sensitivity: the error of the model with only that operator quantised.
    std::vector<std::pair<double, int>> sens;
    for (int node : full.compute_nodes) {
      Plan one = planner.Make([&](int i, const onnx::NodeProto&) { return i == node; });
      ASSIGN_OR_RETURN(Candidate alone, measure(one));
      sens.push_back({alone.error, node});
    }
    std::sort(sens.begin(), sens.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (size_t k = 0; k < sens.size() && k < 8; ++k) {
      report.sensitivity.push_back({g.node(sens[k].second).op_type() + " " + g.node(sens[k].second).name(),
                                    sens[k].first});
    }
    // Keep the most sensitive 1, 2, 4, ... operators float until the error reaches the target.
    std::unordered_set<int> kept;
    const int most = std::min(o.max_float_layers, static_cast<int>(sens.size()));
    for (int k = 1; k <= most; k = k == most ? most + 1 : std::min(2 * k, most)) {
      kept.clear();
      for (int j = 0; j < k; ++j) kept.insert(sens[j].second);
      // A float operator between two INT8 ones is quantised again by ORT (its QDQ
      // WeightBiasQuantization pass fuses DQ -> Conv -> Q whatever the weights), with weights of
      // its own choosing: float ones must form runs. Runs of up to 2 INT8 operators between
      // float ones (in graph order) go float as well.
      const auto& order = full.compute_nodes;
      int last_float = -1;
      for (int p = 0; p < static_cast<int>(order.size()); ++p) {
        if (!kept.count(order[p])) continue;
        if (last_float >= 0 && p - last_float - 1 <= 2) {
          for (int q = last_float + 1; q < p; ++q) kept.insert(order[q]);
        }
        last_float = p;
      }
      Plan mixed = planner.Make([&](int i, const onnx::NodeProto& n) { return !kept.count(i) && !requested_float(n); },
                                "kept float: among the most sensitive to INT8");
      ASSIGN_OR_RETURN(chosen, measure(mixed));
      report.float_layers = static_cast<int>(kept.size());
      if (chosen.error <= o.target_error) break;
    }
  }
  report.error = chosen.error;
  report.float_nodes = chosen.plan.float_nodes;
  report.quantized_nodes = static_cast<int>(chosen.plan.compute_nodes.size());
  report.weight_tensors = chosen.rw.weight_tensors;
  report.activation_tensors = chosen.rw.activation_tensors;
  // Written beside the target (ORT ran these very bytes above), then renamed into place.
  TempFile tmp{out_path + ".tmp"};
  RETURN_IF_ERROR(WriteModel(chosen.rw.model, tmp.path));
  const Outputs& got = chosen.got;
  double diff_sum = 0;
  int64_t diff_n = 0;
  const size_t outputs = reference.empty() ? 0 : reference[0].size();
  for (size_t k = 0; k < outputs; ++k) {
    QuantizeReport::Output out;
    if (k < static_cast<size_t>(g.output_size())) out.name = g.output(static_cast<int>(k)).name();
    out.min = std::numeric_limits<float>::infinity();
    out.max = -out.min;
    int64_t n = 0;
    for (size_t s = 0; s < checked; ++s) {
      for (size_t e = 0; e < reference[s][k].size() && e < got[s][k].size(); ++e) {
        const double d = std::fabs(static_cast<double>(reference[s][k][e]) - got[s][k][e]);
        out.max_diff = std::max(out.max_diff, d);
        out.mean_diff += d;
        out.min = std::min(out.min, reference[s][k][e]);
        out.max = std::max(out.max, reference[s][k][e]);
        ++n;
        report.max_output_diff = std::max(report.max_output_diff, d);
        diff_sum += d;
        ++diff_n;
      }
    }
    if (n) out.mean_diff /= n;
    report.outputs.push_back(out);
  }
  report.mean_output_diff = diff_n ? diff_sum / diff_n : 0;
  std::error_code ec;
  fs::rename(tmp.path, out_path, ec);
  if (ec) return Status::IoError("cannot write " + out_path + ": " + ec.message());
  tmp.path.clear();
  report.bytes_in = static_cast<int64_t>(fs::file_size(in_path, ec));
  report.bytes_out = static_cast<int64_t>(fs::file_size(out_path, ec));
  return report;
}

Result<std::map<std::string, int>> OptimizedOpCounts(const std::string& path, int threads) {
  TempFile opt{TempPath("optimized")};
  infer::OrtModelOptions ort;
  ort.threads = threads;
  ort.optimized_model_path = opt.path;
  {
    ASSIGN_OR_RETURN(std::unique_ptr<infer::OrtModel> session, infer::OrtModel::Load(path, ort));
  }
  ASSIGN_OR_RETURN(onnx::ModelProto m, ReadModel(opt.path));
  std::map<std::string, int> counts;
  for (const auto& n : m.graph().node()) ++counts[n.domain() + ":" + n.op_type()];
  return counts;
}

}  // namespace deepscan::compress
