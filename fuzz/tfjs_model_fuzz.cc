// libFuzzer target: the TF.js graph-model reader (train::ParseTfjsModel). The input is model.json
// text, then a NUL byte, then the bytes every weight shard reads as. Build and run: scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <string>

#include "train/tfjs_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string json = input.substr(0, nul);
  const std::string shard = nul == std::string::npos ? std::string() : input.substr(nul + 1);
  size_t bytes_read = 0;
  auto m = deepscan::train::ParseTfjsModel(
      json,
      [&](const std::string&) -> deepscan::Result<std::string> {
        bytes_read += shard.size();
        return shard;
      },
      "fuzz.json");
  if (m.ok()) {
    // Accepted weights hold exactly the values their shapes say, and no more bytes than were given.
    size_t stored = 0;
    for (const auto& [name, t] : m->tensors) {
      size_t count = 1;
      for (int64_t d : t.shape) count *= static_cast<size_t>(d);
      if (t.values.size() != count || name != t.name) __builtin_trap();
      stored += count;
    }
    if (stored > bytes_read) __builtin_trap();  // every value takes at least one byte of the shards
  } else if (m.status().code() != deepscan::Code::kInvalidModel) {
    __builtin_trap();
  }
  return 0;
}
