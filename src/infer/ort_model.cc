#include "infer/ort_model.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <set>
#include <unordered_map>

#include <onnxruntime_cxx_api.h>
#include <spdlog/spdlog.h>

#include "core/cuda_probe.h"

namespace deepscan::infer {
namespace {

// While a thread tries an accelerated provider, ORT's complaints about it are expected: they go
// to spdlog at debug level, and the last one is kept to explain the failure.
thread_local bool t_trying_provider = false;
thread_local std::string t_last_ort_error;

// ORT messages carry a source-location prefix ending in "[ONNXRuntimeError] : 1 : FAIL : ".
std::string Tidy(std::string message) {
  if (auto at = message.rfind("[ONNXRuntimeError]"); at != std::string::npos) {
    // Skip the " : <number> : <CODE> : " that follows.
    size_t p = at;
    for (int colons = 0; colons < 3 && p != std::string::npos; ++colons) p = message.find(" : ", p + 1);
    if (p != std::string::npos) message = message.substr(p + 3);
  }
  while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back()))) message.pop_back();
  return message;
}

void LogFromOrt(void* /*param*/, OrtLoggingLevel severity, const char* /*category*/, const char* /*logid*/,
                const char* /*code_location*/, const char* message) {
  spdlog::level::level_enum level = spdlog::level::trace;
  switch (severity) {
    case ORT_LOGGING_LEVEL_VERBOSE: level = spdlog::level::trace; break;
    case ORT_LOGGING_LEVEL_INFO: level = spdlog::level::debug; break;
    case ORT_LOGGING_LEVEL_WARNING: level = spdlog::level::warn; break;
    case ORT_LOGGING_LEVEL_ERROR: level = spdlog::level::err; break;
    case ORT_LOGGING_LEVEL_FATAL: level = spdlog::level::critical; break;
  }
  std::string text = Tidy(message ? message : "");
  if (t_trying_provider) {
    if (severity >= ORT_LOGGING_LEVEL_ERROR) t_last_ort_error = text;
    level = spdlog::level::debug;
  }
  spdlog::log(level, "onnxruntime: {}", text);
}

// One ORT environment per process, created on first use (not at static-initialisation time).
Ort::Env& Environment() {
  // Never destroyed: ORT dislikes late teardown.
  static Ort::Env* env = new Ort::Env(ORT_LOGGING_LEVEL_ERROR, "deepscan", &LogFromOrt, nullptr);
  return *env;
}

std::vector<int64_t> ShapeOf(const Ort::TypeInfo& info) {
  auto t = info.GetTensorTypeAndShapeInfo();
  return t.GetShape();
}

Ort::SessionOptions BaseSessionOptions(const OrtModelOptions& options) {
  Ort::SessionOptions so;
  so.SetIntraOpNumThreads(std::max(1, options.threads));
  so.SetInterOpNumThreads(1);
  so.SetExecutionMode(ExecutionMode::ORT_SEQUENTIAL);
  so.SetGraphOptimizationLevel(options.optimize ? GraphOptimizationLevel::ORT_ENABLE_ALL
                                                : GraphOptimizationLevel::ORT_DISABLE_ALL);
  so.AddConfigEntry("session.intra_op.allow_spinning", "0");
  if (!options.optimized_model_path.empty()) so.SetOptimizedModelFilePath(options.optimized_model_path.c_str());
  if (!options.profile_prefix.empty()) so.EnableProfiling(options.profile_prefix.c_str());
  return so;
}

bool BuildHas(const char* ep_name) {
  static const std::vector<std::string> available = Ort::GetAvailableProviders();
  return std::find(available.begin(), available.end(), ep_name) != available.end();
}

const char* DisplayName(const std::string& provider) {
  return provider == "tensorrt" ? "TensorRT" : provider == "cuda" ? "CUDA" : "CPU";
}

// TensorRT builds an engine for a range of input shapes; a shape outside it rebuilds the engine
// (tens of seconds). For a model whose only dynamic dimension is the batch, the range is set to
// 1..max_batch up front. Reads the input through a CPU session (the model is small).
void AddTrtBatchProfile(const std::string& path, const OrtModelOptions& options,
                        std::unordered_map<std::string, std::string>* trt_options) {
  if (options.max_batch < 1) return;
  Ort::Session cpu(Environment(), path.c_str(), BaseSessionOptions(options));
  if (cpu.GetInputCount() != 1) return;
  Ort::AllocatorWithDefaultOptions alloc;
  const std::string name = cpu.GetInputNameAllocated(0, alloc).get();
  const std::vector<int64_t> shape = ShapeOf(cpu.GetInputTypeInfo(0));
  if (shape.empty() || shape[0] >= 0 || name.find_first_of(":,") != std::string::npos) return;
  std::string rest;
  for (size_t i = 1; i < shape.size(); ++i) {
    if (shape[i] < 0) return;  // other dynamic dimensions: leave the ranges to TensorRT
    rest += "x" + std::to_string(shape[i]);
  }
  const std::string largest = name + ":" + std::to_string(options.max_batch) + rest;
  (*trt_options)["trt_profile_min_shapes"] = name + ":1" + rest;
  (*trt_options)["trt_profile_opt_shapes"] = largest;
  (*trt_options)["trt_profile_max_shapes"] = largest;
}

// Runs `session` once on zeros (dynamic dimensions as 1). Some GPU failures (cuDNN or cuBLAS
// missing or refusing the device) surface only at the first run; here they still mean a fall-back
// to the CPU instead of a failed scan, and CUDA start-up and TensorRT's engine build happen at load.
void WarmUp(Ort::Session& session) {
  if (session.GetInputCount() != 1) return;
  Ort::AllocatorWithDefaultOptions alloc;
  const std::string in_name = session.GetInputNameAllocated(0, alloc).get();
  std::vector<int64_t> shape = ShapeOf(session.GetInputTypeInfo(0));
  size_t count = 1;
  for (int64_t& d : shape) {
    if (d < 1) d = 1;
    count *= static_cast<size_t>(d);
  }
  std::vector<float> zeros(count, 0.0f);
  const size_t n_out = session.GetOutputCount();
  std::vector<std::string> out_names;
  std::vector<const char*> outs;
  out_names.reserve(n_out);
  outs.reserve(n_out);
  for (size_t i = 0; i < n_out; ++i) out_names.push_back(session.GetOutputNameAllocated(i, alloc).get());
  for (const auto& n : out_names) outs.push_back(n.c_str());
  const char* ins[] = {in_name.c_str()};
  auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  Ort::Value in = Ort::Value::CreateTensor<float>(memory, zeros.data(), count, shape.data(), shape.size());
  session.Run(Ort::RunOptions{nullptr}, ins, &in, 1, outs.data(), outs.size());
}

// Tries a session of `path` on `provider` ("cuda", or "tensorrt" with CUDA behind it for the nodes
// TensorRT cannot run). Returns the reason it failed, empty on success.
std::string TryAccelerated(const std::string& provider, const std::string& path, const OrtModelOptions& options,
                           std::unique_ptr<Ort::Session>* session) {
  t_trying_provider = true;
  t_last_ort_error.clear();
  std::string reason;
  try {
    Ort::SessionOptions so = BaseSessionOptions(options);
    const std::string device = std::to_string(options.device_id);
    if (provider == "tensorrt") {
      std::unordered_map<std::string, std::string> trt_options = {
          {"device_id", device}, {"trt_fp16_enable", "0"}};  // fp32, like the CPU: same scores
      std::string cache = options.trt_cache_dir.empty() ? DefaultTrtCacheDir() : options.trt_cache_dir;
      std::error_code ec;
      if (!cache.empty()) std::filesystem::create_directories(cache, ec);
      if (!cache.empty() && !ec) {
        trt_options.insert({{"trt_engine_cache_enable", "1"},
                            {"trt_engine_cache_path", cache},
                            {"trt_timing_cache_enable", "1"},
                            {"trt_timing_cache_path", cache}});
      } else {
        spdlog::debug("TensorRT engine cache off: cannot create '{}': {}", cache, ec.message());
      }
      AddTrtBatchProfile(path, options, &trt_options);
      Ort::TensorRTProviderOptions trt;
      trt.Update(trt_options);
      so.AppendExecutionProvider_TensorRT_V2(*trt);
    }
    Ort::CUDAProviderOptions cuda;
    cuda.Update({{"device_id", device},
                 {"cudnn_conv_algo_search", "HEURISTIC"},  // no per-shape benchmark at start
                 {"arena_extend_strategy", "kSameAsRequested"},
                 {"do_copy_in_default_stream", "1"}});
    so.AppendExecutionProvider_CUDA_V2(*cuda);
    *session = std::make_unique<Ort::Session>(Environment(), path.c_str(), so);
    WarmUp(**session);
  } catch (const Ort::Exception& e) {
    reason = Tidy(e.what());
    // Provider-library failures say only "Failed to load shared library"; ORT logged the cause.
    if (!t_last_ort_error.empty() && reason.find(t_last_ort_error) == std::string::npos) {
      reason += ": " + t_last_ort_error;
    }
    session->reset();
  }
  t_trying_provider = false;
  return reason;
}

// Warns once per process and distinct message: two models of one scan share one warning.
void WarnOnce(const std::string& message) {
  static std::mutex mu;
  static std::set<std::string>* warned = new std::set<std::string>();  // never destroyed
  std::lock_guard<std::mutex> lock(mu);
  if (warned->insert(message).second) spdlog::warn("{}", message);
}

}  // namespace

const std::vector<std::string>& KnownProviders() {
  static const std::vector<std::string> names = {"cpu", "cuda", "tensorrt", "auto"};
  return names;
}

std::string DefaultTrtCacheDir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::string(xdg) + "/deepscan/trt";
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.cache/deepscan/trt";
  return "";
}

struct OrtModel::Impl {
  std::unique_ptr<Ort::Session> session;
  std::vector<TensorSpec> inputs, outputs;
  std::vector<const char*> input_names, output_names;
  std::string provider = "cpu", fallback_reason;
  Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
};

OrtModel::OrtModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OrtModel::~OrtModel() = default;
const std::vector<TensorSpec>& OrtModel::inputs() const { return impl_->inputs; }
const std::vector<TensorSpec>& OrtModel::outputs() const { return impl_->outputs; }
const std::string& OrtModel::provider() const { return impl_->provider; }
const std::string& OrtModel::fallback_reason() const { return impl_->fallback_reason; }

Result<std::string> OrtModel::EndProfiling() {
  try {
    Ort::AllocatorWithDefaultOptions alloc;
    return std::string(impl_->session->EndProfilingAllocated(alloc).get());
  } catch (const Ort::Exception& e) {
    return Status::InvalidModel(std::string("ONNX Runtime profiling: ") + e.what());
  }
}

Result<std::unique_ptr<OrtModel>> OrtModel::Load(const std::string& path, const OrtModelOptions& options) {
  const std::string& want = options.provider;
  if (std::find(KnownProviders().begin(), KnownProviders().end(), want) == KnownProviders().end()) {
    return Status::InvalidArgument("unknown execution provider '" + want + "' (cpu, cuda, tensorrt or auto)");
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return Status::InvalidModel("model file not found: " + path);
  auto impl = std::make_unique<Impl>();
  try {
    Environment();
    // An accelerator first, when asked for and possible; every failure leaves the CPU.
    std::string reason;
    if (want != "cpu") {
      const bool trt_wanted = want == "tensorrt";
      if (!BuildHas("CUDAExecutionProvider")) {
        reason =
            "this ONNX Runtime is the CPU-only build (`DEEPSCAN_GPU=1 scripts/setup.sh` installs the GPU one, "
            "docs/gpu.md)";
      } else if (ProbeCuda().devices == 0) {
        reason = ProbeCuda().problem;
      } else if (options.device_id < 0 || options.device_id >= ProbeCuda().devices) {
        reason = "no CUDA device " + std::to_string(options.device_id) + " (the driver sees " +
                 std::to_string(ProbeCuda().devices) + ")";
      } else {
        std::vector<std::string> attempts;
        if (trt_wanted && BuildHas("TensorrtExecutionProvider")) attempts.push_back("tensorrt");
        if (trt_wanted && attempts.empty()) reason = "TensorRT: not in this ONNX Runtime build";
        attempts.push_back("cuda");
        for (const std::string& attempt : attempts) {
          std::string why = TryAccelerated(attempt, path, options, &impl->session);
          if (impl->session) {
            impl->provider = attempt;
            break;
          }
          if (!reason.empty()) reason += "; ";
          reason += (trt_wanted ? std::string(DisplayName(attempt)) + ": " : "") + why;
        }
      }
      const bool as_asked = impl->provider == want || (want == "auto" && impl->provider == "cuda");
      if (!as_asked) impl->fallback_reason = reason;
    }
    if (!impl->session) {
      impl->session = std::make_unique<Ort::Session>(Environment(), path.c_str(), BaseSessionOptions(options));
    }
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
    return Status::InvalidModel("cannot load ONNX model " + path + ": " + Tidy(e.what()));
  }
  if (impl->inputs.size() != 1) {
    return Status::InvalidModel(path + ": expected exactly one input, found " + std::to_string(impl->inputs.size()));
  }
  for (auto& t : impl->inputs) impl->input_names.push_back(t.name.c_str());
  for (auto& t : impl->outputs) impl->output_names.push_back(t.name.c_str());
  // Said only now that the model loaded: a broken model file is an error, not a fallback.
  const std::string file = std::filesystem::path(path).filename().string();
  if (!impl->fallback_reason.empty()) {
    std::string message = std::string(DisplayName(want == "auto" ? "cuda" : want)) + " not usable (" +
                          impl->fallback_reason + "); ONNX Runtime runs on " +
                          (impl->provider == "cpu" ? "the CPU" : DisplayName(impl->provider));
    if (want == "auto") {
      spdlog::debug("{}: {}", file, message);
    } else {
      WarnOnce(message);
    }
  }
  if (impl->provider != "cpu") {
    spdlog::info("{}: ONNX Runtime on {} (device {}: {})", file, DisplayName(impl->provider), options.device_id,
                 ProbeCuda().device_name);
  } else {
    spdlog::debug("{}: ONNX Runtime on the CPU", file);
  }
  return std::unique_ptr<OrtModel>(new OrtModel(std::move(impl)));
}

Status OrtModel::Run(const float* input, const std::vector<int64_t>& shape, std::vector<std::vector<float>>* outputs,
                     std::vector<std::vector<int64_t>>* shapes) const {
  size_t count = 1;
  for (int64_t d : shape) count *= static_cast<size_t>(d);
  try {
    // Host memory in and out: with the CUDA or TensorRT provider, ORT copies the input to the
    // device and the outputs back (plain Run(), no IoBinding), so callers never see device memory.
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
      if (out[i].GetTensorMemoryInfo().GetDeviceType() != OrtMemoryInfoDeviceType_CPU) {
        return Status::Internal("output " + impl_->outputs[i].name + " was left in device memory");
      }
      (*shapes)[i] = info.GetShape();
      const float* p = out[i].GetTensorData<float>();
      (*outputs)[i].assign(p, p + info.GetElementCount());
    }
  } catch (const Ort::Exception& e) {
    return Status::InvalidModel(std::string("inference failed: ") + Tidy(e.what()));
  }
  return Status::Ok();
}

}  // namespace deepscan::infer
