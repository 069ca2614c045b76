#include "video/nal.h"

namespace deepscan::video {
namespace {

// Classifies one NAL unit header: +1 a reference slice, 0 a non-reference slice, -1 not a slice.
int SliceKind(NalCodec codec, const uint8_t* nal, size_t size) {
  if (size < 1) return -1;
  if (codec == NalCodec::kH264) {
    if (nal[0] & 0x80) return 1;  // forbidden_zero_bit set: malformed, treat as reference
    int type = nal[0] & 0x1f;
    int ref_idc = (nal[0] >> 5) & 3;
    if (type < 1 || type > 5) return -1;  // 1-5: coded slice (partitions included)
    return ref_idc != 0 ? 1 : 0;
  }
  if (size < 2) return 1;
  int type = (nal[0] >> 1) & 0x3f;
  if (type > 31) return -1;  // 0-31: VCL (coded slice) units
  // Sub-layer non-reference pictures: even types below 16 (TRAIL_N, TSA_N, STSA_N, RADL_N,
  // RASL_N, RSV_VCL_N10/12/14); IRAP and the _R types are references.
  return (type < 16 && type % 2 == 0) ? 0 : 1;
}

}  // namespace

bool IsNonReferencePacket(NalCodec codec, const uint8_t* data, size_t size, int length_size) {
  if (data == nullptr || size == 0 || length_size < 0 || length_size > 4) return false;
  int slices = 0;
  auto visit = [&](const uint8_t* nal, size_t n) {  // false: a reference slice, stop
    int kind = SliceKind(codec, nal, n);
    if (kind == 1) return false;
    if (kind == 0) ++slices;
    return true;
  };
  if (length_size > 0) {
    size_t pos = 0;
    while (pos < size) {
      if (size - pos < static_cast<size_t>(length_size)) return false;
      size_t len = 0;
      for (int i = 0; i < length_size; ++i) len = (len << 8) | data[pos + i];
      pos += length_size;
      if (len == 0 || len > size - pos) return false;
      if (!visit(data + pos, len)) return false;
      pos += len;
    }
    return slices > 0;
  }
  // Annex B: units start after 00 00 01 (a 4-byte 00 00 00 01 contains it).
  size_t i = 0;
  auto next_start = [&](size_t from) {
    for (size_t k = from; k + 2 < size; ++k) {
      if (data[k] == 0 && data[k + 1] == 0 && data[k + 2] == 1) return k;
    }
    return size;
  };
  i = next_start(0);
  if (i == size) return false;
  while (i < size) {
    size_t begin = i + 3;
    size_t end = next_start(begin);
    size_t stop = end;
    while (stop > begin && data[stop - 1] == 0) --stop;  // trailing zeros belong to the next start code
    if (stop > begin && !visit(data + begin, stop - begin)) return false;
    i = end;
  }
  return slices > 0;
}

int NalLengthSize(NalCodec codec, const uint8_t* extradata, size_t size) {
  if (extradata == nullptr || size == 0) return 0;
  // Annex B extradata starts with a start code.
  if (size >= 3 && extradata[0] == 0 && extradata[1] == 0 &&
      (extradata[2] == 1 || (size >= 4 && extradata[2] == 0 && extradata[3] == 1)))
    return 0;
  if (codec == NalCodec::kH264) {
    // avcC: configurationVersion(1) ... lengthSizeMinusOne in the low 2 bits of byte 4.
    if (size < 7 || extradata[0] != 1) return -1;
    return (extradata[4] & 3) + 1;
  }
  // hvcC: 22 bytes of header; lengthSizeMinusOne in the low 2 bits of byte 21.
  if (size < 23 || extradata[0] != 1) return -1;
  return (extradata[21] & 3) + 1;
}

}  // namespace deepscan::video
