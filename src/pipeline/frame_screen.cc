#include "pipeline/frame_screen.h"

namespace deepscan::pipeline {

Result<Screened> FrameScreen::Look(const video::FrameRef& frame, int64_t slot) {
  RETURN_IF_ERROR(luma_.Load(frame.av()));
  cv::Mat thumb;
  RETURN_IF_ERROR(luma_.Thumbnail(&thumb));
  return LookAt(thumb, slot, frame.index());
}

Screened FrameScreen::LookAt(const cv::Mat& thumb, int64_t slot, int64_t index) {
  Screened s;
  const uint64_t hash = video::DHash(thumb);
  if (!prev_thumb_.empty()) {
    s.cut = video::LooksLikeCut(thumb, prev_thumb_);
    s.changed = s.cut || video::HammingDistance(hash, prev_hash_) > kBigChangeBits;
  }
  bool duplicate = dedupe_ && ref_slot_ >= 0 && !s.cut && video::HammingDistance(hash, ref_hash_) <= dedupe_bits_;
  if (duplicate) {
    const double diff = video::MeanAbsDiff(thumb, ref_thumb_);  // -1 when the sizes differ
    duplicate = diff >= 0 && diff < kDuplicateMaxDiff;
  }
  if (duplicate) {
    s.same_as_slot = ref_slot_;
    s.same_as_index = ref_index_;
  } else {
    ref_thumb_ = thumb.clone();
    ref_hash_ = hash;
    ref_slot_ = slot;
    ref_index_ = index;
  }
  prev_thumb_ = thumb.clone();
  prev_hash_ = hash;
  return s;
}

}  // namespace deepscan::pipeline
