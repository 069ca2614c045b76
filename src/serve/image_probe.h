// serve/image_probe: the format and pixel size of an uploaded JPEG or PNG, read from its first
// bytes, so that POST /v1/frames refuses an oversized picture before decoding it (a 60-byte PNG
// can declare 100000 x 100000 pixels).
//
// In:  the upload's bytes (untrusted).
// Out: format, width and height, or nullopt when the bytes are neither a PNG (signature + IHDR)
//      nor a JPEG (SOI, then markers up to a start-of-frame) or the header is cut short.
// Threading: pure function. Fuzzed by fuzz/serve_request_fuzz.cc.
#ifndef DEEPSCAN_SERVE_IMAGE_PROBE_H_
#define DEEPSCAN_SERVE_IMAGE_PROBE_H_

#include <cstdint>
#include <optional>
#include <string_view>

namespace deepscan::serve {

enum class ImageFormat { kJpeg, kPng };

struct ImageHeader {
  ImageFormat format = ImageFormat::kJpeg;
  int64_t width = 0, height = 0;  // as declared; both > 0
};

std::optional<ImageHeader> ProbeImage(std::string_view bytes);

}  // namespace deepscan::serve

#endif  // DEEPSCAN_SERVE_IMAGE_PROBE_H_
