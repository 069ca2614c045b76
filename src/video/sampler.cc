#include "video/sampler.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "video/frame_stats.h"

namespace deepscan::video {
namespace {

// Nearest-frame selection against a sorted list of target timestamps, holding at most one
// decoded frame (the previous one) at a time.
class NearestToTargets : public Sampler {
 public:
  NearestToTargets(std::vector<double> targets, bool keyframes_only, double fps)
      : targets_(std::move(targets)), keyframes_only_(keyframes_only), frame_interval_(fps > 0 ? 1.0 / fps : 0) {}

  bool KeyframesOnly() const override { return keyframes_only_; }

  // True within one frame interval (1 / fps; when the rate is unknown, twice the largest gap
  // seen so far) of a target not yet passed. The frame uniform picks for a target is the nearest
  // one, within half the gap around the target, so this never excludes it while that gap is at
  // most two intervals (constant-rate video, moderate jitter). Targets are passed only by frames
  // with later timestamps, which output order delivers after this one.
  bool MayKeep(double t) const override {
    if (keyframes_only_) return true;
    const double w = frame_interval_ > 0 ? frame_interval_ : 2 * max_gap_;
    if (w <= 0) return next_ < targets_.size();
    for (size_t i = next_; i < targets_.size() && targets_[i] - w <= t; ++i) {
      if (t <= targets_[i] + w) return true;
    }
    return false;
  }

  void Offer(FrameRef frame, std::vector<FrameRef>* keep) override {
    if (keyframes_only_ && !frame.keyframe()) return;  // a decoder may still emit a few
    bool take_current = false;
    const double t = frame.timestamp_s();
    if (has_held_ && t > held_ts_) max_gap_ = std::max(max_gap_, t - held_ts_);
    while (next_ < targets_.size() && t >= targets_[next_]) {
      const double target = targets_[next_++];
      bool held_nearer = has_held_ && (target - held_ts_) <= (t - target);
      if (!held_nearer) {
        take_current = true;
      } else if (!held_kept_) {  // an already-kept nearest frame is not kept twice
        keep->push_back(std::move(held_));
        held_kept_ = true;
      }
    }
    has_held_ = true;
    held_ts_ = t;
    held_kept_ = take_current;
    if (take_current) {
      keep->push_back(std::move(frame));
      held_ = FrameRef();
    } else if (next_ < targets_.size()) {
      held_ = std::move(frame);
    } else {
      held_ = FrameRef();  // no target left: nothing to hold
    }
  }

  void Finish(std::vector<FrameRef>* keep) override {
    if (next_ < targets_.size() && has_held_ && !held_kept_) keep->push_back(std::move(held_));
    held_ = FrameRef();
    next_ = targets_.size();
  }

  bool Done() const override { return next_ >= targets_.size(); }

 private:
  std::vector<double> targets_;
  bool keyframes_only_;
  double frame_interval_;  // 1 / fps; 0 when unknown
  double max_gap_ = 0;     // largest gap seen between offered frames (MayKeep, when fps is unknown)
  size_t next_ = 0;
  FrameRef held_;           // the previous frame while it may still be kept
  bool has_held_ = false;   // a previous frame exists
  double held_ts_ = 0;      // its timestamp
  bool held_kept_ = false;  // it was already kept (held_ is then empty)
};

// Tuning of the slice policies (see docs/architecture.md, "Frame selection").
constexpr double kEps = 1e-6;    // seconds: timestamps this close are equal
constexpr double kMinMean = 40;  // quality: well exposed = mean luma in [kMinMean, kMaxMean] ...
constexpr double kMaxMean = 215;
constexpr double kMaxClipped = 0.25;     // ... and at most this fraction crushed or blown
constexpr double kClippedBand = 0.10;    // quality: this much more clipped loses even when well exposed
constexpr double kBadnessBand = 0.05;    // quality: two badly exposed frames this close count as equal
constexpr double kSharpnessBand = 0.05;  // quality: sharpness within 5% is a tie
constexpr double kMotionBand = 0.5;      // motion: differences within half a grey level are a tie
constexpr double kEntropyBand = 0.02;    // content: entropy within 0.02 bits is a tie
constexpr double kCutGuard = 1.5;        // content: frames within this many intervals of a cut are transition frames

bool WellExposed(const Exposure& e) {
  return e.dark_fraction + e.bright_fraction <= kMaxClipped && e.mean >= kMinMean && e.mean <= kMaxMean;
}

double Badness(const Exposure& e) {
  return e.dark_fraction + e.bright_fraction + std::max(0.0, kMinMean - e.mean) / 255 +
         std::max(0.0, e.mean - kMaxMean) / 255;
}

// motion | quality | content: the timeline is cut into equal slices, `candidates` evenly spaced
// times inside each; the decoded frame nearest each time is a candidate, measured on a luma
// thumbnail, and the best candidate of a slice is kept when the slice is over. Holds at most
// one frame (the slice's best so far) between calls.
class SliceSampler : public Sampler {
 public:
  SliceSampler(SamplingPolicy policy, const StreamInfo& info, int slices, int candidates, double fallback_interval_s)
      : policy_(policy),
        candidates_(std::max(1, candidates)),
        start_(info.start_s),
        frame_interval_(info.fps > 0 ? 1.0 / info.fps : 0) {
    if (info.duration_s > 0) {
      slice_s_ = info.duration_s / slices;
    } else {  // unknown duration: one slice per interval for up to 24 hours
      slice_s_ = fallback_interval_s > 0 ? fallback_interval_s : 1.0;
      slices = static_cast<int>(std::min(86400.0, std::ceil(86400.0 / slice_s_)));
    }
    total_ = static_cast<int64_t>(slices) * candidates_;
  }

  // True within one frame interval of a candidate time not yet passed (and, for content, while a
  // stand-in is sought for a pick spoilt by a cut).
  bool MayKeep(double t) const override {
    if (Done()) return false;
    if (SeekingStandIn()) return true;
    const double w = frame_interval_ > 0 ? frame_interval_ : 2 * max_gap_;
    if (w <= 0) return true;
    for (int64_t i = next_; i < total_ && CandidateTime(i) - w <= t; ++i) {
      if (t <= CandidateTime(i) + w) return true;
    }
    return false;
  }

  void Offer(FrameRef frame, std::vector<FrameRef>* keep) override {
    const double t = frame.timestamp_s();
    const bool had_last = have_last_;
    const double last_t = last_t_;
    if (have_last_ && t > last_t_) {
      last_gap_ = t - last_t_;
      max_gap_ = std::max(max_gap_, last_gap_);
    }
    have_last_ = true;
    last_t_ = t;
    if (Done()) return;
    const double dt = frame_interval_ > 0 ? frame_interval_ : last_gap_;
    bool loaded = false;
    if (policy_ == SamplingPolicy::kContent) loaded = DetectCut(frame, had_last, last_t, dt);

    // The candidate times this frame is the nearest decoded frame to: those at most half an
    // interval after it (the next frame, an interval later, would be farther).
    int64_t first_slice = -1, last_slice = -1;
    while (next_ < total_ && t >= CandidateTime(next_) - dt / 2 - kEps) {
      if (first_slice < 0) first_slice = next_ / candidates_;
      last_slice = next_ / candidates_;
      ++next_;
    }
    if (first_slice >= 0) {
      // It serves the earliest of those slices that has no candidate yet (a frame that passes
      // several slices' times at once, in a gap or a clip shorter than the slices, serves one).
      int64_t slice = first_slice;
      if (slice == slice_ && best_.frame.valid()) slice = std::min(first_slice + 1, last_slice);
      if (slice != slice_) {
        Emit(keep);
        slice_ = slice;
      }
      Consider(std::move(frame), loaded, dt, /*candidate=*/true);
    } else if (SeekingStandIn() && t < SliceStart(slice_ + 1) && !NearCut(t, dt)) {
      Consider(std::move(frame), loaded, dt, /*candidate=*/false);
    }
    // The slice is over once its candidate times passed and, for content, no cut can still
    // appear within the guard after its pick (or the slice's time is up).
    if (best_.frame.valid() && TimesPassed()) {
      const bool settled = policy_ != SamplingPolicy::kContent ||
                           (!best_.near_cut && t >= best_.t + (kCutGuard + 0.5) * dt - kEps) ||
                           t >= SliceStart(slice_ + 1) - kEps;
      if (settled) Emit(keep);
    }
  }

  void Finish(std::vector<FrameRef>* keep) override {
    Emit(keep);
    next_ = total_;
  }

  bool Done() const override { return next_ >= total_ && !best_.frame.valid(); }

 private:
  struct Candidate {
    FrameRef frame;         // empty when there is none
    double t = 0;           // its timestamp
    bool measured = false;  // its statistics could be read
    FrameStats stats;
    double motion = 0;      // change from the previous candidate (motion)
    bool near_cut = false;  // within the guard of a scene cut (content)
  };

  // All candidate times of the open slice passed.
  bool TimesPassed() const { return next_ >= total_ || next_ / candidates_ > slice_; }
  // Content: every candidate of the open slice was weighed and the best sits next to a cut, so
  // the first later frame of the slice clear of the cut stands in for it.
  bool SeekingStandIn() const {
    return policy_ == SamplingPolicy::kContent && best_.frame.valid() && best_.near_cut && TimesPassed();
  }
  double CandidateTime(int64_t i) const { return start_ + (static_cast<double>(i) + 0.5) * slice_s_ / candidates_; }
  double SliceStart(int64_t slice) const { return start_ + static_cast<double>(slice) * slice_s_; }

  void Emit(std::vector<FrameRef>* keep) {
    if (best_.frame.valid()) keep->push_back(std::move(best_.frame));
    best_ = Candidate();
  }

  // Content: compares a cheap probe of every decoded frame with the previous one. Returns
  // whether `frame` is now loaded in reader_.
  bool DetectCut(const FrameRef& frame, bool had_last, double last_t, double dt) {
    cv::Mat probe;
    if (!reader_.Load(frame.av()).ok() || !reader_.Probe(kProbeCols, kProbeRows, &probe).ok()) {
      probe_.release();
      return false;
    }
    if (had_last && !probe_.empty() && LooksLikeCut(probe, probe_)) {
      has_cut_ = true;
      cut_before_ = last_t;
      cut_after_ = frame.timestamp_s();
      if (best_.frame.valid() && NearCut(best_.t, dt)) best_.near_cut = true;
    }
    probe_ = probe;
    return true;
  }

  // Within the guard of the last cut, which lies between cut_before_ and cut_after_.
  bool NearCut(double t, double dt) const {
    return has_cut_ && t >= cut_before_ - kCutGuard * dt - kEps && t <= cut_after_ + kCutGuard * dt + kEps;
  }

  void Consider(FrameRef frame, bool loaded, double dt, bool candidate) {
    Candidate c;
    c.t = frame.timestamp_s();
    cv::Mat thumb;
    c.measured = (loaded || reader_.Load(frame.av()).ok()) && MeasureFrame(&reader_, &c.stats, &thumb).ok();
    if (policy_ == SamplingPolicy::kMotion && c.measured) {
      // A cut is not motion: a jump that large scores nothing.
      if (!thumb_.empty() && !LooksLikeCut(thumb, thumb_)) c.motion = std::max(0.0, CentreWeightedDiff(thumb, thumb_));
      if (candidate) thumb_ = thumb;
    }
    if (policy_ == SamplingPolicy::kContent) c.near_cut = NearCut(c.t, dt);
    c.frame = std::move(frame);
    if (!best_.frame.valid() || Better(c, best_)) best_ = std::move(c);
  }

  // Whether `c` should replace the slice's best `b`.
  bool Better(const Candidate& c, const Candidate& b) const {
    if (c.measured != b.measured) return c.measured;
    if (c.measured) {
      switch (policy_) {
        case SamplingPolicy::kQuality: {
          const Exposure& ce = c.stats.exposure;
          const Exposure& be = b.stats.exposure;
          if (WellExposed(ce) != WellExposed(be)) return WellExposed(ce);
          const double c_clipped = ce.dark_fraction + ce.bright_fraction;
          const double b_clipped = be.dark_fraction + be.bright_fraction;
          if (std::abs(c_clipped - b_clipped) > kClippedBand) return c_clipped < b_clipped;
          if (!WellExposed(ce) && std::abs(Badness(ce) - Badness(be)) > kBadnessBand) return Badness(ce) < Badness(be);
          const double hi = std::max(c.stats.sharpness, b.stats.sharpness);
          const double lo = std::min(c.stats.sharpness, b.stats.sharpness);
          if (hi > lo * (1 + kSharpnessBand)) return c.stats.sharpness > b.stats.sharpness;
          break;
        }
        case SamplingPolicy::kMotion:
          if (std::abs(c.motion - b.motion) > kMotionBand) return c.motion > b.motion;
          break;
        case SamplingPolicy::kContent:
          if (c.near_cut != b.near_cut) return !c.near_cut;
          if (std::abs(c.stats.entropy - b.stats.entropy) > kEntropyBand) return c.stats.entropy > b.stats.entropy;
          break;
        default: break;
      }
    }
    // A tie: the one nearer the slice's centre.
    const double centre = SliceStart(slice_) + slice_s_ / 2;
    return std::abs(c.t - centre) < std::abs(b.t - centre);
  }

  const SamplingPolicy policy_;
  const int candidates_;         // K: candidate times per slice
  const double start_;           // the first slice starts here
  const double frame_interval_;  // 1 / fps; 0 when unknown
  double slice_s_ = 1;           // slice length in seconds
  int64_t total_ = 0;            // slices x K candidate times
  int64_t next_ = 0;             // the next candidate time not yet passed
  int64_t slice_ = 0;            // the open slice
  Candidate best_;               // its best candidate so far
  LumaReader reader_;
  cv::Mat thumb_;         // motion: the previous candidate's thumbnail
  cv::Mat probe_;         // content: the previous decoded frame's probe
  bool has_cut_ = false;  // content: the last cut seen lies between these two frame times
  double cut_before_ = 0;
  double cut_after_ = 0;
  bool have_last_ = false;  // a frame was offered: last_t_ is its time
  double last_t_ = 0;
  double last_gap_ = 0;  // gap between the last two offered frames
  double max_gap_ = 0;   // the largest such gap (MayKeep's interval when fps is unknown)
};

// Even spacing of `count` timestamps over [first, last].
std::vector<double> Spread(double first, double last, int count) {
  std::vector<double> t;
  if (count <= 0) return t;
  if (count == 1 || last <= first) {
    t.push_back(count == 1 ? (first + last) / 2 : first);
    return t;
  }
  t.reserve(count);
  for (int k = 0; k < count; ++k) t.push_back(first + (last - first) * k / (count - 1));
  return t;
}

std::vector<double> UniformTargets(const StreamInfo& info, int count, double fallback_interval_s) {
  if (info.duration_s > 0) {
    double frame = info.fps > 0 ? 1.0 / info.fps : 0.0;
    double first = info.start_s;
    double last = info.start_s + std::max(0.0, info.duration_s - frame);
    return Spread(first, last, count);
  }
  // Unknown duration: one target per interval for up to 24 hours.
  std::vector<double> t;
  double step = fallback_interval_s > 0 ? fallback_interval_s : 1.0;
  for (double x = info.start_s; x < info.start_s + 86400 && static_cast<int>(t.size()) < 86400; x += step)
    t.push_back(x);
  return t;
}

}  // namespace

std::unique_ptr<Sampler> MakeUniformSampler(const StreamInfo& info, int count, double fallback_interval_s) {
  return std::make_unique<NearestToTargets>(UniformTargets(info, count, fallback_interval_s), false, info.fps);
}

std::unique_ptr<Sampler> MakeKeyframeSampler(const StreamInfo& info, int count) {
  return std::make_unique<NearestToTargets>(UniformTargets(info, count, 1.0), true, info.fps);
}

std::unique_ptr<Sampler> MakeSliceSampler(SamplingPolicy policy, const StreamInfo& info, int count, int candidates,
                                          double fallback_interval_s) {
  return std::make_unique<SliceSampler>(policy, info, count, candidates, fallback_interval_s);
}

Result<std::unique_ptr<Sampler>> MakeSampler(const StreamInfo& info, const SamplingOptions& options) {
  if (options.frames <= 0) return Status::InvalidArgument("--frames must be positive");
  switch (options.policy) {
    case SamplingPolicy::kUniform: return MakeUniformSampler(info, options.frames, options.fallback_interval_s);
    case SamplingPolicy::kKeyframes: return MakeKeyframeSampler(info, options.frames);
    case SamplingPolicy::kMotion:
    case SamplingPolicy::kQuality:
    case SamplingPolicy::kContent:
      if (options.candidates <= 0) return Status::InvalidArgument("--candidates must be positive");
      return MakeSliceSampler(options.policy, info, options.frames, options.candidates, options.fallback_interval_s);
  }
  return Status::InvalidArgument("unknown sampling policy");
}

SampledFrames::SampledFrames(Source* source, Sampler* sampler) : source_(source), sampler_(sampler) {
  source_->SetFrameFilter([sampler](double ts) { return sampler->MayKeep(ts); });
}

Result<bool> SampledFrames::Next(FrameRef* frame) {
  while (next_ >= kept_.size()) {
    if (finished_) return false;
    kept_.clear();
    next_ = 0;
    FrameRef ref;
    const auto t = std::chrono::steady_clock::now();
    Result<bool> got = source_->Next(&ref);
    decode_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    if (!got.ok()) return got.status();
    if (*got) {
      sampler_->Offer(std::move(ref), &kept_);
    } else {
      sampler_->Finish(&kept_);
    }
    if (!*got || sampler_->Done()) finished_ = true;
  }
  *frame = std::move(kept_[next_++]);
  return true;
}

}  // namespace deepscan::video
