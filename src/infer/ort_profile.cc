#include "infer/ort_profile.h"

#include <fstream>

#include <nlohmann/json.hpp>

namespace deepscan::infer {

Result<std::map<std::string, KernelTime>> ReadKernelProfile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::IoError("cannot read profile " + path);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return Status::CorruptInput(path + ": not an ONNX Runtime profile (a JSON array of events)");
  std::map<std::string, KernelTime> out;
  for (const auto& e : j) {
    if (!e.is_object() || e.value("cat", "") != "Node" || !e.contains("args") || !e["args"].is_object()) continue;
    const std::string name = e.value("name", "");
    if (name.size() < 12 || name.compare(name.size() - 12, 12, "_kernel_time") != 0) continue;
    const std::string op = e["args"].value("op_name", "");
    if (op.empty() || !e.contains("dur") || !e["dur"].is_number()) continue;
    KernelTime& k = out[op];
    k.us += e["dur"].get<int64_t>();
    ++k.runs;
  }
  return out;
}

}  // namespace deepscan::infer
