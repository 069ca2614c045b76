// libFuzzer target: the report writers with arbitrary bytes in paths, errors and warnings (paths
// need not be UTF-8). Build and run: scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "report/report.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  deepscan::report::ScanReport r;
  deepscan::VideoVerdict ok;
  ok.path = bytes;
  ok.status = deepscan::VideoStatus::kOk;
  ok.score = size % 2 ? 0.9f : 0.1f;
  ok.label = size % 2 ? "fake" : "real";
  ok.warnings.push_back(bytes);
  deepscan::FrameResult f;
  f.score = 0.5f;
  f.faces.emplace_back();
  ok.frames.push_back(f);
  ok.top_frames.push_back(0);
  deepscan::VideoVerdict bad;
  bad.path = bytes;
  bad.error = deepscan::Status::CorruptInput(bytes);
  r.videos = {ok, bad};
  for (auto format :
       {deepscan::report::Format::kJson, deepscan::report::Format::kCsv, deepscan::report::Format::kText}) {
    std::string out = deepscan::report::Render(r, format);
    if (out.empty()) __builtin_trap();
    if (format == deepscan::report::Format::kJson) {
      auto j = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || j["videos"].size() != 2) __builtin_trap();  // always valid JSON
    }
  }
  return 0;
}
