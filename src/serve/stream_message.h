// serve/stream_message: the client's messages on WS /v1/stream (serve/stream.h), parsed without
// the rest of the server, so the fuzzer (fuzz/serve_request_fuzz.cc) can reach them.
//
// In:  one WebSocket message's payload. Out: the frame's timestamp and image bytes, or whether a
//      text message is {"type":"end"}. Threading: pure functions.
#ifndef DEEPSCAN_SERVE_STREAM_MESSAGE_H_
#define DEEPSCAN_SERVE_STREAM_MESSAGE_H_

#include <cstddef>
#include <string_view>

#include "deepscan/status.h"

namespace deepscan::serve {

// The frame message's timestamp: 8 bytes, little-endian IEEE-754 float64, before the image.
inline constexpr size_t kTimestampBytes = 8;

// A binary message of a stream, split: the frame's timestamp and its image bytes (a view into
// `message`). Errors: kInvalidArgument with the reason (shorter than a timestamp and one byte, a
// timestamp that is not finite or negative). The image itself is not looked at.
struct FrameMessage {
  double timestamp_s = 0;
  std::string_view image;
};
Result<FrameMessage> ParseFrameMessage(std::string_view message);
// True when a text message of a stream is the control message {"type":"end"}.
bool IsEndMessage(std::string_view message);

}  // namespace deepscan::serve

#endif  // DEEPSCAN_SERVE_STREAM_MESSAGE_H_
