// video/nal.h: is this H.264/HEVC packet a picture no other picture refers to?
//
// In:  one compressed video packet (what av_read_frame returns) and how its NAL units are framed:
//      length-prefixed (MP4/MKV "avcC"/"hvcC", prefix of 1-4 bytes) or Annex B start codes (MPEG-TS,
//      raw streams).
// Out: true when every coded slice in the packet is a non-reference picture: H.264 nal_ref_idc == 0,
//      HEVC sub-layer non-reference types (TRAIL_N, TSA_N, STSA_N, RADL_N, RASL_N, RSV_VCL_N10/12/14).
//      This is the rule FFmpeg's own AVDISCARD_NONREF applies inside its decoders; deciding it on the
//      packet lets video::Source drop exactly the non-reference frames that no sample needs, while
//      still decoding those near a sample time (FFmpeg can only discard all of them or none).
// How: reads only NAL headers; never reads past `size`; malformed input gives false (decode it).
//      Fuzzed by fuzz/nal_fuzz.cc.
// Why our own: libavcodec's parsers do not expose nal_ref_idc per packet, and the MP4 "sdtp"
//      dependency flags (AV_PKT_FLAG_DISPOSABLE) are absent from most files.
#ifndef DEEPSCAN_VIDEO_NAL_H_
#define DEEPSCAN_VIDEO_NAL_H_

#include <cstddef>
#include <cstdint>

namespace deepscan::video {

enum class NalCodec { kH264, kHevc };

// `length_size`: 1..4 for length-prefixed packets, 0 for Annex B start codes.
bool IsNonReferencePacket(NalCodec codec, const uint8_t* data, size_t size, int length_size);

// The NAL length prefix size from codec extradata: avcC/hvcC give 1..4; Annex B (or no
// extradata) gives 0. Malformed extradata gives -1 (do not skip anything).
int NalLengthSize(NalCodec codec, const uint8_t* extradata, size_t size);

}  // namespace deepscan::video

#endif  // DEEPSCAN_VIDEO_NAL_H_
