// libFuzzer target: the NAL header reader behind non-reference frame skipping (video/nal.h).
// The first byte picks the codec and the length-prefix size; the rest is the packet.
#include <cstddef>
#include <cstdint>

#include "video/nal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using deepscan::video::NalCodec;
  if (size < 1) return 0;
  const NalCodec codec = (data[0] & 1) ? NalCodec::kHevc : NalCodec::kH264;
  const int length_size = (data[0] >> 1) % 6 - 1;  // -1..4, invalid sizes included
  bool nonref = deepscan::video::IsNonReferencePacket(codec, data + 1, size - 1, length_size);
  if (nonref && (length_size < 0 || length_size > 4)) __builtin_trap();  // invalid framing never skips
  deepscan::video::NalLengthSize(codec, data + 1, size - 1);
  return 0;
}
