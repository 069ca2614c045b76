// video::Sampler: decides which decoded frames are worth looking at.
//
// In:  every decoded FrameRef of one video, in decode order (Offer), then end of stream (Finish).
// Out: the kept frames, in order, each exactly once (appended to `keep`).
// How: uniform and keyframes see only timestamps and frame flags. motion, quality and content
// also look at pixels, but only through a small luma thumbnail of a few candidate frames (and,
// for content, a probe of a few thousand luma samples per decoded frame; video/frame_stats.h);
// no sampler colour-converts a frame. Every policy holds at most one frame between calls. See
// docs/architecture.md, "Frame selection".
// Threading: one sampler per video, used by one thread.
#ifndef DEEPSCAN_VIDEO_SAMPLER_H_
#define DEEPSCAN_VIDEO_SAMPLER_H_

#include <memory>
#include <string>
#include <vector>

#include "deepscan/options.h"
#include "video/source.h"

namespace deepscan::video {

class Sampler {
 public:
  virtual ~Sampler() = default;
  // True when the decoder may skip every non-key frame for this policy.
  virtual bool KeyframesOnly() const { return false; }
  // Offers the next decoded frame; kept frames (possibly an earlier held one) go to `keep`.
  virtual void Offer(FrameRef frame, std::vector<FrameRef>* keep) = 0;
  // End of stream: flushes any frame still held.
  virtual void Finish(std::vector<FrameRef>* keep) = 0;
  // True once no later frame can be kept: the caller may stop decoding.
  virtual bool Done() const = 0;
  // Called before decoding with the presentation time of a frame the decoder could skip (a
  // non-reference frame): false means this policy can never keep a frame at that time, so it
  // need not be decoded. Must stay true for every frame the policy would pick if all frames
  // were decoded. Calls come in decode order; the default keeps everything.
  virtual bool MayKeep(double /*timestamp_s*/) const { return true; }
};

// Picks the frame nearest to each of `count` timestamps spread evenly from the first to the last
// frame (the 32-frame DFDC/DeepfakeBench protocol: np.linspace(0, n-1, count) on frame indices
// for constant-rate video, by time for variable-rate video). Duplicates collapse, so a clip
// shorter than `count` frames yields each frame once. When the duration is unknown (live
// streams), keeps one frame every `fallback_interval_s`. MayKeep is true within one frame interval
// (1/fps; twice the largest gap seen when the rate is unknown) of a target not yet passed.
std::unique_ptr<Sampler> MakeUniformSampler(const StreamInfo& info, int count, double fallback_interval_s);

// The uniform policy over keyframes only (the decoder skips the rest): fast triage.
std::unique_ptr<Sampler> MakeKeyframeSampler(const StreamInfo& info, int count);

// motion | quality | content (`policy`): cuts the duration into `count` equal slices (slices of
// `fallback_interval_s` when the duration is unknown), weighs the decoded frames nearest to
// `candidates` evenly spaced times inside each slice, and keeps one frame per slice: the one that
// changed most since the previous candidate (motion), the sharpest well-exposed one (quality), or
// the most informative one at least two frames away from any scene cut (content). A slice whose
// candidate times find no frame of their own (clips shorter than `count` x `candidates` frames)
// keeps nothing. MayKeep is true within one frame interval of a candidate time not yet passed.
std::unique_ptr<Sampler> MakeSliceSampler(SamplingPolicy policy, const StreamInfo& info, int count, int candidates,
                                          double fallback_interval_s);

// The sampler for `options.policy`. Errors: kInvalidArgument (frames or candidates not positive).
Result<std::unique_ptr<Sampler>> MakeSampler(const StreamInfo& info, const SamplingOptions& options);

// The loop every reader of sampled frames needs, once: decodes `source` frame by frame, offers
// each to `sampler` (then Finish at the end), and hands out the kept frames one at a time, in
// order; stops decoding as soon as the sampler is Done. Installs the sampler's MayKeep as the
// source's frame filter, so non-reference frames no policy could keep are never decoded.
//
//   video::SampledFrames frames(source.get(), sampler.get());
//   video::FrameRef k;
//   while (true) {
//     ASSIGN_OR_RETURN(bool more, frames.Next(&k));
//     if (!more) break;
//     ... source->ToBgr(k, &bgr) ...
//   }
//
// Threading: as the source and sampler (one thread). Both must outlive this object.
class SampledFrames {
 public:
  SampledFrames(Source* source, Sampler* sampler);
  // The next kept frame; false when there is none left. Errors: those of Source::Next.
  Result<bool> Next(FrameRef* frame);
  // Seconds spent in Source::Next (decoding) so far.
  double decode_s() const { return decode_s_; }

 private:
  Source* source_;
  Sampler* sampler_;
  std::vector<FrameRef> kept_;  // kept by the last Offer/Finish, not yet handed out
  size_t next_ = 0;             // the next of kept_ to hand out
  bool finished_ = false;       // the stream ended or the sampler is done: decode no more
  double decode_s_ = 0;
};

}  // namespace deepscan::video

#endif  // DEEPSCAN_VIDEO_SAMPLER_H_
