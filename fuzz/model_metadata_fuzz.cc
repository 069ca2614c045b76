// libFuzzer target: model metadata JSON (infer::ParseModelMetadata). Build and run: scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <string>

#include "infer/model_metadata.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto m = deepscan::infer::ParseModelMetadata(text, "fuzz.json");
  if (m.ok()) {
    // Accepted metadata satisfies the documented ranges and round-trips.
    if (m->input_size < 16 || m->input_size > 1024 || !(m->threshold > 0 && m->threshold < 1)) __builtin_trap();
    auto again = deepscan::infer::ParseModelMetadata(deepscan::infer::ModelMetadataToJson(*m), "again.json");
    if (!again.ok() || again->input_size != m->input_size) __builtin_trap();
  } else if (m.status().code() != deepscan::Code::kInvalidModel) {
    __builtin_trap();
  }
  return 0;
}
