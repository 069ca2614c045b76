// Non-reference frame skipping: the NAL header reader (video/nal.h) and video::Source dropping
// exactly the frames its filter rejects while keeping frame numbers exact.
#include "video/nal.h"

#include <gtest/gtest.h>

#include "test_env.h"
#include "video/source.h"

namespace deepscan::video {
namespace {

using deepscan::testing::ReadFrameNumber;
using deepscan::testing::TempDir;
using deepscan::testing::WriteNumberedClip;

std::vector<uint8_t> Avcc(std::initializer_list<std::vector<uint8_t>> nals, int length_size = 4) {
  std::vector<uint8_t> out;
  for (const auto& n : nals) {
    for (int i = length_size - 1; i >= 0; --i) out.push_back(static_cast<uint8_t>(n.size() >> (8 * i)));
    out.insert(out.end(), n.begin(), n.end());
  }
  return out;
}

TEST(NalTest, H264SliceReferenceFlag) {
  // nal_unit_type 1 (non-IDR slice); nal_ref_idc in bits 5-6.
  auto nonref = Avcc({{0x01, 0x9a, 0x00}});
  auto ref = Avcc({{0x41, 0x9a, 0x00}});
  auto idr = Avcc({{0x65, 0x88, 0x00}});
  EXPECT_TRUE(IsNonReferencePacket(NalCodec::kH264, nonref.data(), nonref.size(), 4));
  EXPECT_FALSE(IsNonReferencePacket(NalCodec::kH264, ref.data(), ref.size(), 4));
  EXPECT_FALSE(IsNonReferencePacket(NalCodec::kH264, idr.data(), idr.size(), 4));
}

TEST(NalTest, H264NonSliceUnitsDoNotDecide) {
  auto sei_then_nonref = Avcc({{0x06, 0x05, 0x01}, {0x01, 0x9a}});
  auto sei_only = Avcc({{0x06, 0x05, 0x01}});
  auto nonref_then_ref = Avcc({{0x01, 0x9a}, {0x21, 0x9a}});
  EXPECT_TRUE(IsNonReferencePacket(NalCodec::kH264, sei_then_nonref.data(), sei_then_nonref.size(), 4));
  EXPECT_FALSE(IsNonReferencePacket(NalCodec::kH264, sei_only.data(), sei_only.size(), 4));
  EXPECT_FALSE(IsNonReferencePacket(NalCodec::kH264, nonref_then_ref.data(), nonref_then_ref.size(), 4));
}

TEST(NalTest, LengthPrefixSizesAndMalformedInput) {
  auto two = Avcc({{0x01, 0x9a}}, 2);
  EXPECT_TRUE(IsNonReferencePacket(NalCodec::kH264, two.data(), two.size(), 2));
  auto bad = Avcc({{0x01, 0x9a}});
  bad[3] = 200;  // length past the end
  EXPECT_FALSE(IsNonReferencePacket(NalCodec::kH264, bad.data(), bad.size(), 4));
  std::vector<uint8_t> zero_len = {0, 0, 0, 0};
  EXPECT_FALSE(IsNonReferencePacket(NalCodec::kH264, zero_len.data(), zero_len.size(), 4));
  EXPECT_FALSE(IsNonReferencePacket(NalCodec::kH264, nullptr, 0, 4));
  EXPECT_FALSE(IsNonReferencePacket(NalCodec::kH264, two.data(), two.size(), 7));
}

TEST(NalTest, AnnexBStartCodes) {
  std::vector<uint8_t> nonref = {0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x01, 0x9a, 0x00, 0x00};
  std::vector<uint8_t> ref = {0, 0, 1, 0x01, 0x9a, 0, 0, 0, 1, 0x41, 0x9a};
  EXPECT_TRUE(IsNonReferencePacket(NalCodec::kH264, nonref.data(), nonref.size(), 0));
  EXPECT_FALSE(IsNonReferencePacket(NalCodec::kH264, ref.data(), ref.size(), 0));
  std::vector<uint8_t> no_start = {1, 2, 3, 4};
  EXPECT_FALSE(IsNonReferencePacket(NalCodec::kH264, no_start.data(), no_start.size(), 0));
}

TEST(NalTest, HevcSubLayerNonReferenceTypes) {
  auto nal = [](int type) { return Avcc({{static_cast<uint8_t>(type << 1), 0x01, 0xaf}}); };
  for (int type : {0, 2, 4, 6, 8}) {  // TRAIL_N, TSA_N, STSA_N, RADL_N, RASL_N
    auto p = nal(type);
    EXPECT_TRUE(IsNonReferencePacket(NalCodec::kHevc, p.data(), p.size(), 4)) << type;
  }
  for (int type : {1, 3, 9, 19, 20, 21}) {  // TRAIL_R ... IDR, CRA
    auto p = nal(type);
    EXPECT_FALSE(IsNonReferencePacket(NalCodec::kHevc, p.data(), p.size(), 4)) << type;
  }
}

TEST(NalTest, LengthSizeFromExtradata) {
  std::vector<uint8_t> avcc = {1, 0x64, 0, 0x1f, 0xff, 0xe1, 0};
  EXPECT_EQ(NalLengthSize(NalCodec::kH264, avcc.data(), avcc.size()), 4);
  avcc[4] = 0xfd;
  EXPECT_EQ(NalLengthSize(NalCodec::kH264, avcc.data(), avcc.size()), 2);
  std::vector<uint8_t> annexb = {0, 0, 0, 1, 0x67};
  EXPECT_EQ(NalLengthSize(NalCodec::kH264, annexb.data(), annexb.size()), 0);
  EXPECT_EQ(NalLengthSize(NalCodec::kH264, nullptr, 0), 0);
  std::vector<uint8_t> junk = {7, 7, 7, 7, 7, 7, 7};
  EXPECT_EQ(NalLengthSize(NalCodec::kH264, junk.data(), junk.size()), -1);
}

// A clip with non-reference B-frames (no B-pyramid): 3 B-frames between references.
std::string ClipWithNonRefFrames(const std::string& name, const std::string& container_ext) {
  std::string path = TempDir() + "/" + name + container_ext;
  EXPECT_TRUE(WriteNumberedClip(path, 120, 25, 320, 240,
                                {"-c:v", "libx264", "-preset", "veryfast", "-crf", "10", "-pix_fmt", "yuv420p",
                                 "-x264-params", "bframes=3:b-pyramid=none:b-adapt=0:keyint=30"}));
  return path;
}

struct Decoded {
  std::vector<std::pair<int64_t, int>> frames;  // (index, number read from the pixels)
  int64_t decoded = 0, skipped = 0;
};

Decoded DecodeWith(const std::string& path, FrameFilter filter) {
  SourceOptions so;
  so.skip_nonref = true;
  auto src = Source::Open(path, so);
  EXPECT_TRUE(src.ok()) << src.status().ToString();
  Decoded out;
  if (!src.ok()) return out;
  // The filter sees times from the first frame (MPEG-TS streams start at 1.4 s).
  const double start = (*src)->info().start_s;
  (*src)->SetFrameFilter([filter, start](double t) { return filter(t - start); });
  while (true) {
    FrameRef f;
    auto got = (*src)->Next(&f);
    EXPECT_TRUE(got.ok());
    if (!got.ok() || !*got) break;
    cv::Mat bgr;
    EXPECT_TRUE((*src)->ToBgr(f, &bgr).ok());
    out.frames.emplace_back(f.index(), ReadFrameNumber(bgr));
  }
  out.decoded = (*src)->frames_decoded();
  out.skipped = (*src)->frames_skipped();
  return out;
}

void ExpectSkipping(const std::string& path) {
  // Reject everything: only reference frames are decoded, and they keep their true numbers.
  Decoded refs = DecodeWith(path, [](double) { return false; });
  EXPECT_EQ(refs.decoded + refs.skipped, 120);
  EXPECT_GE(refs.skipped, 60) << "three of every four frames are non-reference B-frames";
  for (auto [index, number] : refs.frames) EXPECT_EQ(index, number);

  // Keep frames near 1.0 s and 3.0 s: those non-reference frames are decoded too, exact.
  Decoded some = DecodeWith(path, [](double t) { return std::abs(t - 1.0) < 0.05 || std::abs(t - 3.0) < 0.05; });
  EXPECT_EQ(some.decoded + some.skipped, 120);
  bool has25 = false, has75 = false;
  for (auto [index, number] : some.frames) {
    EXPECT_EQ(index, number);
    has25 |= number == 25;
    has75 |= number == 75;
  }
  EXPECT_TRUE(has25 && has75);

  // Accept everything: nothing skipped.
  Decoded all = DecodeWith(path, [](double) { return true; });
  EXPECT_EQ(all.skipped, 0);
  ASSERT_EQ(all.frames.size(), 120u);
  for (int i = 0; i < 120; ++i) EXPECT_EQ(all.frames[i].second, i);
}

TEST(NonRefSkipTest, Mp4LengthPrefixed) { ExpectSkipping(ClipWithNonRefFrames("nonref", ".mp4")); }

TEST(NonRefSkipTest, MpegTsAnnexB) { ExpectSkipping(ClipWithNonRefFrames("nonref", ".ts")); }

TEST(NonRefSkipTest, NoFilterOrOptionOffDecodesEverything) {
  std::string path = ClipWithNonRefFrames("off", ".mp4");
  auto src = Source::Open(path, {});  // skip_nonref off
  ASSERT_TRUE(src.ok());
  (*src)->SetFrameFilter([](double) { return false; });
  FrameRef f;
  int n = 0;
  while (*(*src)->Next(&f)) ++n;
  EXPECT_EQ(n, 120);
  EXPECT_EQ((*src)->frames_skipped(), 0);
}

}  // namespace
}  // namespace deepscan::video
