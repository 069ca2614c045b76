#include "serve/stream_message.h"

#include <bit>
#include <cmath>
#include <cstdint>

#include <nlohmann/json.hpp>

namespace deepscan::serve {

Result<FrameMessage> ParseFrameMessage(std::string_view message) {
  if (message.size() <= kTimestampBytes) {
    return Status::InvalidArgument("a frame message is an 8-byte little-endian float64 timestamp and the image bytes");
  }
  uint64_t bits = 0;
  for (int i = 7; i >= 0; --i) bits = (bits << 8) | static_cast<unsigned char>(message[i]);
  FrameMessage f{std::bit_cast<double>(bits), message.substr(kTimestampBytes)};
  if (!std::isfinite(f.timestamp_s) || f.timestamp_s < 0) {
    return Status::InvalidArgument("the timestamp must be a finite number of seconds, not negative");
  }
  return f;
}

bool IsEndMessage(std::string_view message) {
  const nlohmann::json m = nlohmann::json::parse(message, nullptr, false);
  return m.is_object() && m.contains("type") && m["type"].is_string() && m["type"] == "end";
}

}  // namespace deepscan::serve
