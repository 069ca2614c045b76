// pipeline::FrameScreen: how a sampled frame relates to the ones sampled before it, so that the
// pipeline can skip work (near-duplicates) and not carry stale state across a cut.
//
// In:  the kept frames of one video, in time order (FrameRef, or a luma thumbnail in tests).
// Out: per frame, whether it
//      - nearly equals the last frame actually examined (`same_as_*`): its dHash is within
//        `dedupe_bits` AND its thumbnail differs by under kDuplicateMaxDiff grey levels on
//        average. Both, because the 9x8 dHash of a talking head barely moves while the mouth
//        does (measured on the shared clips: dHash 0-3 bits apart, mean difference 0.7-8), and
//        those frames must be scored; a still picture re-encoded differs by ~0 (0.0-0.3).
//      - follows a scene cut (`cut`, video::LooksLikeCut: pixels and histogram both jump),
//      - changed a lot (`changed`: a cut, or the dHash more than kBigChangeBits away from the
//        previous sample's: a jump or a fast pan; within a shot samples 0.3 s apart are mostly
//        0-8 bits apart, unrelated pictures ~32).
// Cost: one luma thumbnail per kept frame (~0.1 ms at 1080p).
// Threading: one per video.
#ifndef DEEPSCAN_PIPELINE_FRAME_SCREEN_H_
#define DEEPSCAN_PIPELINE_FRAME_SCREEN_H_

#include <cstdint>

#include <opencv2/core.hpp>

#include "deepscan/status.h"
#include "video/frame_stats.h"
#include "video/source.h"

namespace deepscan::pipeline {

inline constexpr double kDuplicateMaxDiff = 0.5;  // mean absolute thumbnail difference, grey levels
inline constexpr int kBigChangeBits = 16;

struct Screened {
  bool cut = false;
  bool changed = false;
  int64_t same_as_slot = -1;   // the earlier sample whose results this one reuses (-1: none)
  int64_t same_as_index = -1;  // its frame number
};

class FrameScreen {
 public:
  // `dedupe` off: never a duplicate (cuts and changes are still reported).
  FrameScreen(bool dedupe, int dedupe_bits) : dedupe_(dedupe), dedupe_bits_(dedupe_bits) {}

  // The next kept frame, its position among the samples (`slot`) and its frame number.
  // Errors: those of video::LumaReader (an unreadable pixel format).
  Result<Screened> Look(const video::FrameRef& frame, int64_t slot);
  // The same from the frame's luma thumbnail (video::LumaReader::Thumbnail).
  Screened LookAt(const cv::Mat& thumb, int64_t slot, int64_t index);

 private:
  bool dedupe_;
  int dedupe_bits_;
  video::LumaReader luma_;
  cv::Mat thumb_, prev_thumb_, ref_thumb_;  // this, the previous and the last examined sample's
  uint64_t prev_hash_ = 0, ref_hash_ = 0;
  int64_t ref_slot_ = -1, ref_index_ = -1;
};

}  // namespace deepscan::pipeline

#endif  // DEEPSCAN_PIPELINE_FRAME_SCREEN_H_
