#include "infer/ort_model.h"

#include <filesystem>

#include <onnxruntime_cxx_api.h>

namespace deepscan::infer {
namespace {

// One ORT environment per process, created on first use (not at static-initialisation time).
Ort::Env& Environment() {
  static Ort::Env* env = new Ort::Env(ORT_LOGGING_LEVEL_ERROR, "deepscan");  // never destroyed: ORT
  return *env;                                                               // dislikes late teardown
}

std::vector<int64_t> ShapeOf(const Ort::TypeInfo& info) {
  auto t = info.GetTensorTypeAndShapeInfo();
  return t.GetShape();
}

}  // namespace

struct OrtModel::Impl {
  std::unique_ptr<Ort::Session> session;
  std::vector<TensorSpec> inputs, outputs;
  std::vector<const char*> input_names, output_names;
  Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
};

OrtModel::OrtModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OrtModel::~OrtModel() = default;
const std::vector<TensorSpec>& OrtModel::inputs() const { return impl_->inputs; }
const std::vector<TensorSpec>& OrtModel::outputs() const { return impl_->outputs; }

Result<std::unique_ptr<OrtModel>> OrtModel::Load(const std::string& path, const OrtModelOptions& options) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return Status::InvalidModel("model file not found: " + path);
  if (options.provider != "cpu") return Status::NotSupported("execution provider not available: " + options.provider);
  auto impl = std::make_unique<Impl>();
  try {
    Ort::SessionOptions so;
    so.SetIntraOpNumThreads(std::max(1, options.threads));
    so.SetInterOpNumThreads(1);
    so.SetExecutionMode(ExecutionMode::ORT_SEQUENTIAL);
    so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
    so.AddConfigEntry("session.intra_op.allow_spinning", "0");
    impl->session = std::make_unique<Ort::Session>(Environment(), path.c_str(), so);
    Ort::AllocatorWithDefaultOptions alloc;
    for (size_t i = 0; i < impl->session->GetInputCount(); ++i) {
      impl->inputs.push_back(
          {impl->session->GetInputNameAllocated(i, alloc).get(), ShapeOf(impl->session->GetInputTypeInfo(i))});
    }
    for (size_t i = 0; i < impl->session->GetOutputCount(); ++i) {
      impl->outputs.push_back(
          {impl->session->GetOutputNameAllocated(i, alloc).get(), ShapeOf(impl->session->GetOutputTypeInfo(i))});
    }
  } catch (const Ort::Exception& e) {
    return Status::InvalidModel("cannot load ONNX model " + path + ": " + e.what());
  }
  if (impl->inputs.size() != 1) {
    return Status::InvalidModel(path + ": expected exactly one input, found " + std::to_string(impl->inputs.size()));
  }
  for (auto& t : impl->inputs) impl->input_names.push_back(t.name.c_str());
  for (auto& t : impl->outputs) impl->output_names.push_back(t.name.c_str());
  return std::unique_ptr<OrtModel>(new OrtModel(std::move(impl)));
}

Status OrtModel::Run(const float* input, const std::vector<int64_t>& shape, std::vector<std::vector<float>>* outputs,
                     std::vector<std::vector<int64_t>>* shapes) const {
  size_t count = 1;
  for (int64_t d : shape) count *= static_cast<size_t>(d);
  try {
    Ort::Value in =
        Ort::Value::CreateTensor<float>(impl_->memory, const_cast<float*>(input), count, shape.data(), shape.size());
    auto out = impl_->session->Run(Ort::RunOptions{nullptr}, impl_->input_names.data(), &in, 1,
                                   impl_->output_names.data(), impl_->output_names.size());
    outputs->resize(out.size());
    shapes->resize(out.size());
    for (size_t i = 0; i < out.size(); ++i) {
      auto info = out[i].GetTensorTypeAndShapeInfo();
      if (info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
        return Status::InvalidModel("output " + impl_->outputs[i].name + " is not float32");
      }
      (*shapes)[i] = info.GetShape();
      const float* p = out[i].GetTensorData<float>();
      (*outputs)[i].assign(p, p + info.GetElementCount());
    }
  } catch (const Ort::Exception& e) {
    return Status::InvalidModel(std::string("inference failed: ") + e.what());
  }
  return Status::Ok();
}

}  // namespace deepscan::infer
