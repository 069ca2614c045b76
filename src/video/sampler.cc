#include "video/sampler.h"

#include <cmath>

namespace deepscan::video {
namespace {

// Nearest-frame selection against a sorted list of target timestamps, holding at most one
// decoded frame (the previous one) at a time.
class NearestToTargets : public Sampler {
 public:
  NearestToTargets(std::vector<double> targets, bool keyframes_only)
      : targets_(std::move(targets)), keyframes_only_(keyframes_only) {}

  bool KeyframesOnly() const override { return keyframes_only_; }

  void Offer(FrameRef frame, std::vector<FrameRef>* keep) override {
    if (keyframes_only_ && !frame.keyframe()) return;  // a decoder may still emit a few
    bool take_current = false;
    const double t = frame.timestamp_s();
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
    } else {
      held_ = std::move(frame);
    }
  }

  void Finish(std::vector<FrameRef>* keep) override {
    if (next_ < targets_.size() && has_held_ && !held_kept_) keep->push_back(std::move(held_));
    next_ = targets_.size();
  }

  bool Done() const override { return next_ >= targets_.size(); }

 private:
  std::vector<double> targets_;
  bool keyframes_only_;
  size_t next_ = 0;
  FrameRef held_;           // the previous frame while it may still be kept
  bool has_held_ = false;   // a previous frame exists
  double held_ts_ = 0;      // its timestamp
  bool held_kept_ = false;  // it was already kept (held_ is then empty)
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
  return std::make_unique<NearestToTargets>(UniformTargets(info, count, fallback_interval_s), false);
}

std::unique_ptr<Sampler> MakeKeyframeSampler(const StreamInfo& info, int count) {
  return std::make_unique<NearestToTargets>(UniformTargets(info, count, 1.0), true);
}

Result<std::unique_ptr<Sampler>> MakeSampler(const StreamInfo& info, const SamplingOptions& options) {
  if (options.frames <= 0) return Status::InvalidArgument("--frames must be positive");
  switch (options.policy) {
    case SamplingPolicy::kUniform: return MakeUniformSampler(info, options.frames, options.fallback_interval_s);
    case SamplingPolicy::kKeyframes: return MakeKeyframeSampler(info, options.frames);
  }
  return Status::InvalidArgument("unknown sampling policy");
}

}  // namespace deepscan::video
