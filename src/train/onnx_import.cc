#include "train/onnx_import.h"

#include <filesystem>
#include <map>
#include <set>

#include "compress/onnx_io.h"

namespace deepscan::train {
namespace {

class Weights {
 public:
  Weights(const onnx::GraphProto& g, std::string path) : path_(std::move(path)) {
    for (const auto& t : g.initializer()) by_name_[t.name()] = &t;
  }
  bool Has(const std::string& name) const { return by_name_.count(name) > 0; }

  // Copies initializer `name` into `dst` (same shape). Errors: kInvalidModel.
  Status Into(const std::string& name, torch::Tensor& dst) {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return Status::InvalidModel(path_ + ": no weight '" + name + "' (not this architecture)");
    const onnx::TensorProto& t = *it->second;
    std::vector<int64_t> dims(t.dims().begin(), t.dims().end());
    if (dims != dst.sizes().vec()) {
      return Status::InvalidModel(path_ + ": '" + name + "' has shape " + ShapeText(dims) + ", the architecture " +
                                  ShapeText(dst.sizes().vec()));
    }
    std::vector<float> v = compress::FloatsOf(t);
    if (static_cast<int64_t>(v.size()) != dst.numel()) return Status::InvalidModel(path_ + ": '" + name + "' is not float");
    torch::NoGradGuard no_grad;
    dst.copy_(torch::from_blob(v.data(), dst.sizes(), torch::kFloat));
    used_.insert(name);
    return Status::Ok();
  }
  // Initializers no module took (the Clip bounds aside).
  std::vector<std::string> Unused() const {
    std::vector<std::string> out;
    for (const auto& [name, t] : by_name_) {
      if (!used_.count(name) && name.rfind("relu6.", 0) != 0) out.push_back(name);
    }
    return out;
  }

 private:
  static std::string ShapeText(const std::vector<int64_t>& d) {
    std::string s = "[";
    for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
    return s + "]";
  }
  std::string path_;
  std::map<std::string, const onnx::TensorProto*> by_name_;
  std::set<std::string> used_;
};

// A ConvBnAct exported as conv(s) with the BatchNorm folded into the last one.
Status ImportConvBnAct(ConvBnActImpl& m, const std::string& name, Weights& w) {
  if (m.reduce) RETURN_IF_ERROR(w.Into(name + ".reduce.weight", m.reduce->weight));
  if (m.restore) {
    RETURN_IF_ERROR(w.Into(name + ".core.weight", m.conv->weight));
    RETURN_IF_ERROR(w.Into(name + ".weight", m.restore->weight));
  } else {
    RETURN_IF_ERROR(w.Into(name + ".weight", m.conv->weight));
  }
  torch::NoGradGuard no_grad;
  auto& bn = *m.bn;
  RETURN_IF_ERROR(w.Into(name + ".bias", bn.bias));
  bn.weight.fill_(1.0);
  bn.running_mean.zero_();
  bn.running_var.fill_(1.0 - bn.options.eps());  // scale = 1 / sqrt(var + eps) = 1
  return Status::Ok();
}

}  // namespace

Result<ImportedModel> ImportOnnx(const std::string& onnx_path) {
  if (!std::filesystem::is_regular_file(onnx_path)) return Status::NotFound("model not found: " + onnx_path);
  ImportedModel out;
  ASSIGN_OR_RETURN(out.meta, infer::LoadModelMetadata(onnx_path));
  ASSIGN_OR_RETURN(ModelSpec spec, ReadModelSpec(infer::MetadataPathFor(onnx_path)));
  ASSIGN_OR_RETURN(onnx::ModelProto proto, compress::ReadModel(onnx_path));
  Weights w(proto.graph(), onnx_path);
  if (spec.mask_head && !w.Has("mask_conv.bias")) spec.mask_head = false;  // exported without the heatmap
  ASSIGN_OR_RETURN(out.model, MakeModel(spec));
  std::set<std::string> conv_bn;  // paths of the ConvBnActs (their convs and BatchNorms are theirs)
  for (const auto& item : out.model->named_modules("", /*include_self=*/false)) {
    const std::string& path = item.key();
    const std::string parent = path.substr(0, path.rfind('.') == std::string::npos ? 0 : path.rfind('.'));
    if (conv_bn.count(parent)) continue;
    torch::nn::Module& m = *item.value();
    if (auto* c = m.as<ConvBnActImpl>()) {
      conv_bn.insert(path);
      RETURN_IF_ERROR(ImportConvBnAct(*c, path, w));
    } else if (auto* conv = m.as<torch::nn::Conv2dImpl>()) {
      RETURN_IF_ERROR(w.Into(path + ".weight", conv->weight));
      if (conv->bias.defined()) RETURN_IF_ERROR(w.Into(path + ".bias", conv->bias));
    } else if (auto* linear = m.as<torch::nn::LinearImpl>()) {
      RETURN_IF_ERROR(w.Into(path + ".weight", linear->weight));
      if (linear->bias.defined()) RETURN_IF_ERROR(w.Into(path + ".bias", linear->bias));
    }
  }
  const std::vector<std::string> unused = w.Unused();
  if (!unused.empty()) {
    return Status::InvalidModel(onnx_path + ": weight '" + unused.front() + "' belongs to no layer of " + spec.arch +
                                " (" + std::to_string(unused.size()) + " unused): not this architecture");
  }
  out.model->eval();
  return out;
}

Result<Model> LoadAnyModel(const std::string& path, infer::ModelMetadata* meta) {
  const std::string ext = std::filesystem::path(path).extension().string();
  if (ext != ".onnx") return LoadCheckpoint(path);
  ASSIGN_OR_RETURN(ImportedModel m, ImportOnnx(path));
  if (meta != nullptr) *meta = m.meta;
  return m.model;
}

}  // namespace deepscan::train
