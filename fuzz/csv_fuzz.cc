// libFuzzer target: the manifest CSV parser (train::ParseCsv). Build and run: scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <string>

#include "train/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto rows = deepscan::train::ParseCsv(text);
  // Invariant: no field can hold more bytes than the input.
  size_t total = 0;
  for (const auto& row : rows) {
    for (const auto& field : row) total += field.size();
  }
  if (total > size) __builtin_trap();
  return 0;
}
