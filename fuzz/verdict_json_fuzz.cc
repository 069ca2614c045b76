// libFuzzer target: the verdict JSON reader (report::VideoFromJson), which reads result-cache
// entries back. Build and run: scripts/fuzz.sh. Seeds: fuzz/seeds/verdict_json_fuzz.
// Properties: never crashes; rejects with kCorruptInput only; whatever it accepts writes back to
// JSON that reads again and writes identically (write -> read -> write is a fixed point).
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "report/report.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using nlohmann::json;
  const json j = json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  auto v = deepscan::report::VideoFromJson(j);
  if (!v.ok()) {
    if (v.status().code() != deepscan::Code::kCorruptInput) __builtin_trap();
    return 0;
  }
  const json first = deepscan::report::VideoToJson(*v);
  const std::string text = first.dump(-1, ' ', false, json::error_handler_t::replace);
  auto again = deepscan::report::VideoFromJson(json::parse(text, nullptr, false));
  if (!again.ok()) __builtin_trap();
  if (deepscan::report::VideoToJson(*again).dump(-1, ' ', false, json::error_handler_t::replace) != text) {
    __builtin_trap();
  }
  return 0;
}
