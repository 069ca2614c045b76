#include "search/arch_latency.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/cuda_probe.h"
#include "train/onnx_export.h"

namespace deepscan::search {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Num(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        const size_t start = line.find_first_not_of(' ', colon + 1);
        return start == std::string::npos ? "unknown" : line.substr(start);
      }
    }
  }
  return "unknown";
}

std::string UtcNow() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// An exclusive flock on a file, released (and the file closed) on destruction.
class FileLock {
 public:
  explicit FileLock(const std::string& path) : fd_(open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644)) {
    if (fd_ >= 0 && flock(fd_, LOCK_EX) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~FileLock() {
    if (fd_ >= 0) close(fd_);  // closing releases the lock
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_;
};

Result<json> ReadCache(const std::string& path) {
  if (!fs::exists(path)) return json{{"version", 1}, {"entries", json::object()}};
  std::ifstream in(path);
  if (!in) return Status::IoError("cannot read the latency cache " + path);
  try {
    json j = json::parse(in);
    if (!j.is_object() || !j.contains("entries") || !j["entries"].is_object()) {
      return Status::IoError("latency cache " + path + " is not {\"version\", \"entries\": {...}}: delete it");
    }
    return j;
  } catch (const json::exception& e) {
    return Status::IoError("latency cache " + path + " does not parse (" + e.what() + "): delete it");
  }
}

Status WriteCache(const std::string& path, const json& j) {
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp);
    if (!(out << j.dump(2) << "\n")) return Status::IoError("cannot write the latency cache " + tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Status::IoError("cannot write the latency cache " + path + ": " + ec.message());
  return Status::Ok();
}

}  // namespace

std::string ArchitectureKey(const train::ModelSpec& spec) {
  json j = json::parse(train::ModelSpecToJson(spec));
  j.erase("dropout");
  j.erase("drop_path");
  return j.dump();
}

std::string ArchLabel(const train::ModelSpec& spec) {
  const bool nas = spec.arch == "mobilenetv3_nas";
  std::string s =
      (nas ? std::string("nas") : spec.arch) + " w" + Num(spec.width) + " " + std::to_string(spec.input_size) + "px";
  if (nas) {
    const train::NasSpec& n = spec.nas;
    std::string d, k, e, se, act;
    for (size_t i = 0; i < n.depth.size(); ++i) d += std::to_string(n.depth[i]);
    for (size_t i = 0; i < n.kernel.size(); ++i) k += std::to_string(n.kernel[i]);
    for (size_t i = 0; i < n.expand.size(); ++i) e += (i ? "-" : "") + Num(n.expand[i]);
    for (size_t i = 0; i < n.se.size(); ++i) se += n.se[i] ? "1" : "0";
    for (size_t i = 0; i < n.act.size(); ++i) act += n.act[i] == "hswish" ? "h" : "r";
    s += " d" + d + " k" + k + " e" + e + " se" + se + " act " + act;
  }
  if (spec.mask_head) s += " +mask";
  if (!spec.channels.empty()) s += " pruned(" + std::to_string(spec.channels.size()) + ")";
  if (!spec.ranks.empty()) s += " lowrank(" + std::to_string(spec.ranks.size()) + ")";
  return s;
}

Result<std::string> LatencyTargetKey(const std::string& device, int threads) {
  if (device != "cpu" && device != "cuda" && device != "auto") {
    return Status::InvalidArgument("latency device '" + device + "' is not cpu, cuda or auto");
  }
  if (threads < 1) return Status::InvalidArgument("latency threads must be >= 1");
  const CudaProbe& probe = ProbeCuda();
  const bool cuda = device == "cuda" || (device == "auto" && probe.devices > 0);
  std::string key = std::string(cuda ? "onnxruntime-cuda" : "onnxruntime-cpu") + "|threads=" + std::to_string(threads) +
                    "|cpu=" + CpuModel();
  if (cuda) key += "|gpu=" + (probe.device_name.empty() ? std::string("none") : probe.device_name);
  return key;
}

Result<ArchLatency> CachedLatency(const std::string& cache_path, const std::string& key, const std::string& label,
                                  const std::function<Result<FaceTiming>()>& measure) {
  ArchLatency out;
  out.key = key;
  out.label = label;
  auto fill = [&out](const FaceTiming& t) {
    out.ms_per_face = t.ms_per_face;
    out.p90_ms = t.p90_ms;
    out.device = t.device;
  };
  if (cache_path.empty()) {
    ASSIGN_OR_RETURN(FaceTiming t, measure());
    fill(t);
    return out;
  }
  std::error_code ec;
  const fs::path parent = fs::path(cache_path).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  FileLock lock(cache_path + ".lock");
  if (!lock.ok())
    return Status::IoError("cannot lock the latency cache " + cache_path + ".lock: " + std::strerror(errno));
  ASSIGN_OR_RETURN(json cache, ReadCache(cache_path));
  if (cache["entries"].contains(key)) {
    const json& e = cache["entries"][key];
    out.ms_per_face = e.value("ms_per_face", 0.0);
    out.p90_ms = e.value("p90_ms", 0.0);
    out.device = e.value("device", std::string());
    out.cached = true;
    if (out.ms_per_face > 0) return out;  // else a damaged entry: measured again below
    out.cached = false;
  }
  ASSIGN_OR_RETURN(FaceTiming t, measure());
  fill(t);
  cache["entries"][key] = {{"ms_per_face", t.ms_per_face}, {"p90_ms", t.p90_ms}, {"runs", t.runs},
                           {"threads", t.threads},         {"device", t.device}, {"label", label},
                           {"measured_at", UtcNow()}};
  RETURN_IF_ERROR(WriteCache(cache_path, cache));
  return out;
}

Result<ArchLatency> ArchitectureLatency(const train::ModelSpec& spec, const LatencyOptions& options) {
  RETURN_IF_ERROR(train::ValidateModelSpec(spec));
  ASSIGN_OR_RETURN(std::string target, LatencyTargetKey(options.device, options.threads));
  const std::string key = ArchitectureKey(spec) + "|" + target;
  auto measure = [&]() -> Result<FaceTiming> {
    ASSIGN_OR_RETURN(train::Model model, train::MakeModel(spec));
    model->eval();
    std::string dir = (fs::temp_directory_path() / "deepscan-latency-XXXXXX").string();
    if (mkdtemp(dir.data()) == nullptr) return Status::IoError("cannot create a temporary folder: " + dir);
    const std::string onnx = dir + "/arch.onnx";
    infer::ModelMetadata meta;
    meta.name = "latency-probe";
    Status exported = train::ExportOnnx(model, meta, onnx);
    Result<FaceTiming> t = exported.ok() ? MeasureMsPerFace(onnx, {.threads = options.threads,
                                                                   .device = options.device,
                                                                   .warmup = options.warmup,
                                                                   .runs = options.runs})
                                         : Result<FaceTiming>(exported);
    std::error_code ec;
    fs::remove_all(dir, ec);
    return t;
  };
  return CachedLatency(options.cache_path, key, ArchLabel(spec), measure);
}

}  // namespace deepscan::search
