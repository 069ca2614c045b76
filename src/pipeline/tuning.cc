#include "pipeline/tuning.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

namespace deepscan::pipeline {

namespace fs = std::filesystem;

std::string DefaultTunedPath() {
  if (const char* p = std::getenv("DEEPSCAN_TUNED"); p && *p) return p;
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) return std::string(x) + "/deepscan/tuned.json";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.config/deepscan/tuned.json";
}

std::string CpuModel() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  const std::string key = "model name";
  while (std::getline(f, line)) {
    if (line.rfind(key, 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown";
}

int HardwareThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

Result<TunedSettings> LoadTuned(const std::string& path) {
  std::ifstream f(path);
  if (!f) return Status::NotFound("no tuned settings at " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("version", 0) != 1) {
    return Status::InvalidArgument(path + ": not a deepscan tuned-settings file (version 1)");
  }
  TunedSettings t;
  try {
    t.cpu = j.at("cpu").get<std::string>();
    t.hardware_threads = j.at("hardware_threads").get<int>();
    t.threads = j.at("threads").get<int>();
    t.max_batch = j.at("max_batch").get<int>();
    t.videos_in_flight = j.at("videos_in_flight").get<int>();
    t.decode_threads = j.at("decode_threads").get<int>();
    t.infer_threads = j.at("infer_threads").get<int>();
    if (j.contains("measured")) t.measured_json = j["measured"].dump();
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(path + ": " + e.what());
  }
  auto bad = [](int v, int lo, int hi) { return v < lo || v > hi; };
  if (bad(t.max_batch, 1, 1024) || bad(t.videos_in_flight, 0, 256) || bad(t.decode_threads, 0, 256) ||
      bad(t.infer_threads, 0, 256) || bad(t.threads, 1, 4096)) {
    return Status::InvalidArgument(path + ": a setting is out of range");
  }
  return t;
}

Status SaveTuned(const std::string& path, const TunedSettings& t) {
  nlohmann::json j{{"version", 1},
                   {"cpu", t.cpu},
                   {"hardware_threads", t.hardware_threads},
                   {"threads", t.threads},
                   {"max_batch", t.max_batch},
                   {"videos_in_flight", t.videos_in_flight},
                   {"decode_threads", t.decode_threads},
                   {"infer_threads", t.infer_threads}};
  if (!t.measured_json.empty()) {
    j["measured"] = nlohmann::json::parse(t.measured_json, nullptr, false);
  }
  std::error_code ec;
  fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!(out << j.dump(2) << "\n")) return Status::IoError("cannot write " + tmp);
  }
  fs::rename(tmp, p, ec);
  if (ec) return Status::IoError("cannot move " + tmp + " to " + path + ": " + ec.message());
  return Status::Ok();
}

bool TunedAppliesHere(const TunedSettings& t, int threads) {
  const int budget = threads > 0 ? threads : HardwareThreads();
  return t.cpu == CpuModel() && t.hardware_threads == HardwareThreads() && t.threads == budget;
}

}  // namespace deepscan::pipeline
