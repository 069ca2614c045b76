#include "serve/image_probe.h"

namespace deepscan::serve {
namespace {

uint32_t Be16(std::string_view b, size_t at) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(b[at])) << 8) | static_cast<unsigned char>(b[at + 1]);
}

uint32_t Be32(std::string_view b, size_t at) { return (Be16(b, at) << 16) | Be16(b, at + 2); }

std::optional<ImageHeader> ProbePng(std::string_view b) {
  // Signature (8), then the first chunk must be IHDR: length 13, "IHDR", width, height (big-endian).
  constexpr std::string_view kSignature("\x89PNG\r\n\x1a\n", 8);
  if (b.size() < 24 || b.substr(0, 8) != kSignature) return std::nullopt;
  if (Be32(b, 8) != 13 || b.substr(12, 4) != "IHDR") return std::nullopt;
  const uint32_t w = Be32(b, 16), h = Be32(b, 20);
  if (w == 0 || h == 0 || w > 0x7fffffffu || h > 0x7fffffffu) return std::nullopt;  // the PNG limit is 2^31-1
  return ImageHeader{ImageFormat::kPng, w, h};
}

bool IsStartOfFrame(unsigned char m) {
  // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC), which share the range.
  return m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc;
}

std::optional<ImageHeader> ProbeJpeg(std::string_view b) {
  if (b.size() < 4 || static_cast<unsigned char>(b[0]) != 0xff || static_cast<unsigned char>(b[1]) != 0xd8) {
    return std::nullopt;
  }
  size_t i = 2;
  while (i < b.size()) {
    if (static_cast<unsigned char>(b[i]) != 0xff) return std::nullopt;     // markers only between segments
    while (i < b.size() && static_cast<unsigned char>(b[i]) == 0xff) ++i;  // fill bytes
    if (i >= b.size()) return std::nullopt;
    const auto marker = static_cast<unsigned char>(b[i++]);
    if (marker == 0x01 || (marker >= 0xd0 && marker <= 0xd8)) continue;           // TEM, RSTn, SOI: no length
    if (marker == 0xd9 || marker == 0xda || marker == 0x00) return std::nullopt;  // EOI / SOS before a frame
    if (i + 2 > b.size()) return std::nullopt;
    const uint32_t length = Be16(b, i);  // includes its own two bytes
    if (length < 2) return std::nullopt;
    if (IsStartOfFrame(marker)) {
      // precision (1), height (2), width (2)
      if (length < 7 || i + 7 > b.size()) return std::nullopt;
      const uint32_t h = Be16(b, i + 3), w = Be16(b, i + 5);
      if (w == 0 || h == 0) return std::nullopt;  // height 0 (DNL) is not supported by OpenCV either
      return ImageHeader{ImageFormat::kJpeg, w, h};
    }
    i += length;
  }
  return std::nullopt;
}

}  // namespace

std::optional<ImageHeader> ProbeImage(std::string_view bytes) {
  if (auto png = ProbePng(bytes)) return png;
  return ProbeJpeg(bytes);
}

}  // namespace deepscan::serve
