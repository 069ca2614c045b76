#include "video/sampler.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <set>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

#include "synthetic_frames.h"
#include "test_env.h"
#include "video/frame_stats.h"

namespace deepscan::video {
namespace {

using deepscan::testing::LiveSyntheticFrames;
using deepscan::testing::LumaFrame;

constexpr SamplingPolicy kSlicePolicies[] = {SamplingPolicy::kMotion, SamplingPolicy::kQuality,
                                             SamplingPolicy::kContent};

const char* Name(SamplingPolicy p) {
  switch (p) {
    case SamplingPolicy::kMotion: return "motion";
    case SamplingPolicy::kQuality: return "quality";
    case SamplingPolicy::kContent: return "content";
    case SamplingPolicy::kUniform: return "uniform";
    case SamplingPolicy::kKeyframes: return "keyframes";
  }
  return "?";
}

StreamInfo Info(double fps, double duration_s, double start_s = 0) {
  StreamInfo info;
  info.width = 160;
  info.height = 90;
  info.fps = fps;
  info.duration_s = duration_s;
  info.start_s = start_s;
  return info;
}

std::vector<double> ConstantRate(int frames, double fps, double start_s = 0) {
  std::vector<double> t(frames);
  for (int i = 0; i < frames; ++i) t[i] = start_s + i / fps;
  return t;
}

// Noise of `levels` grey levels spread over [lo, hi), fresh for every seed.
cv::Mat Noise(int lo, int hi, int levels, uint64_t seed, int width = 160, int height = 90) {
  cv::Mat img(height, width, CV_8UC1);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> level(0, levels - 1);
  for (int r = 0; r < height; ++r) {
    for (int c = 0; c < width; ++c) img.at<uint8_t>(r, c) = static_cast<uint8_t>(lo + level(rng) * (hi - lo) / levels);
  }
  return img;
}

// A textured picture with structure: what a sharp, well-exposed frame looks like.
cv::Mat Picture(int width = 160, int height = 90) {
  cv::Mat img = Noise(60, 200, 140, 99, width, height);
  cv::GaussianBlur(img, img, cv::Size(0, 0), 0.7);
  cv::rectangle(img, cv::Rect(width / 6, height / 5, width / 5, height / 3), cv::Scalar(210), 2);
  cv::circle(img, {width * 2 / 3, height / 2}, height / 4, cv::Scalar(50), 2);
  return img;
}

struct Kept {
  int64_t index;
  double t;
};

struct Fed {
  std::vector<Kept> kept;
  std::vector<bool> offered;  // per frame: decoded and offered (not skipped through MayKeep)
  int max_live = 0;           // most synthetic frames alive after an Offer, kept ones released
};

using Pixels = std::function<cv::Mat(int64_t index, double t)>;

// Offers the frames at `times` in order. A frame marked in `skippable` is offered only when
// MayKeep says it may be kept (as the decoder does for non-reference frames).
Fed Feed(Sampler* sampler, const std::vector<double>& times, const Pixels& pixels,
         const std::vector<bool>& skippable = {}) {
  Fed run;
  run.offered.assign(times.size(), false);
  const int live_before = LiveSyntheticFrames();
  std::vector<FrameRef> keep;
  auto collect = [&] {
    for (const FrameRef& k : keep) run.kept.push_back({k.index(), k.timestamp_s()});
    keep.clear();
    run.max_live = std::max(run.max_live, LiveSyntheticFrames() - live_before);
  };
  for (size_t i = 0; i < times.size() && !sampler->Done(); ++i) {
    if (!skippable.empty() && skippable[i] && !sampler->MayKeep(times[i])) continue;
    run.offered[i] = true;
    sampler->Offer(LumaFrame(pixels(static_cast<int64_t>(i), times[i]), static_cast<int64_t>(i), times[i]), &keep);
    collect();
  }
  sampler->Finish(&keep);
  collect();
  EXPECT_EQ(LiveSyntheticFrames(), live_before);
  return run;
}

std::unique_ptr<Sampler> Make(SamplingPolicy policy, const StreamInfo& info, int frames, int candidates = 4,
                              double fallback_interval_s = 1.0) {
  SamplingOptions o;
  o.policy = policy;
  o.frames = frames;
  o.candidates = candidates;
  o.fallback_interval_s = fallback_interval_s;
  auto s = MakeSampler(info, o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

// A picture drifting right by a pixel a frame: every frame differs a little.
cv::Mat Drifting(int64_t index, double /*t*/) {
  static const cv::Mat base = Picture(320, 90);
  const int x = static_cast<int>(index % 160);
  return base(cv::Rect(x, 0, 160, 90)).clone();
}

TEST(SliceSamplerTest, KeepsOneFramePerSliceInTimeOrder) {
  for (SamplingPolicy policy : kSlicePolicies) {
    for (int candidates : {1, 4, 7}) {
      SCOPED_TRACE(std::string(Name(policy)) + " K=" + std::to_string(candidates));
      const double start = 0.5;
      auto sampler = Make(policy, Info(30, 10, start), 8, candidates);
      const Fed run = Feed(sampler.get(), ConstantRate(300, 30, start), Drifting);
      ASSERT_EQ(run.kept.size(), 8u);
      for (int k = 0; k < 8; ++k) {
        EXPECT_GE(run.kept[k].t, start + k * 1.25 - 1e-9) << "sample " << k;
        EXPECT_LT(run.kept[k].t, start + (k + 1) * 1.25) << "sample " << k;
      }
      EXPECT_TRUE(sampler->Done());
      // Bounded holding: the slice's best, nothing more, between calls.
      EXPECT_LE(run.max_live, 1);
    }
  }
}

TEST(SliceSamplerTest, StopsOnceTheLastSliceIsDecided) {
  for (SamplingPolicy policy : kSlicePolicies) {
    SCOPED_TRACE(Name(policy));
    auto sampler = Make(policy, Info(30, 10), 4);
    const Fed run = Feed(sampler.get(), ConstantRate(300, 30), Drifting);
    ASSERT_EQ(run.kept.size(), 4u);
    // The last candidate time is 10 - 2.5 / 8 s; a few frames after it the sampler is done.
    const int offered = static_cast<int>(std::count(run.offered.begin(), run.offered.end(), true));
    EXPECT_LT(offered, 300);
    EXPECT_GE(offered, 290);
  }
}

TEST(SliceSamplerTest, LiveStreamsGetASliceEveryFallbackInterval) {
  for (SamplingPolicy policy : kSlicePolicies) {
    SCOPED_TRACE(Name(policy));
    auto sampler = Make(policy, Info(25, 0), 32, 4, /*fallback_interval_s=*/2.0);
    const Fed run = Feed(sampler.get(), ConstantRate(250, 25), Drifting);  // 10 s
    ASSERT_EQ(run.kept.size(), 5u);
    for (int k = 0; k < 5; ++k) {
      EXPECT_GE(run.kept[k].t, 2.0 * k);
      EXPECT_LT(run.kept[k].t, 2.0 * (k + 1));
    }
    EXPECT_EQ(std::count(run.offered.begin(), run.offered.end(), true), 250);  // a live stream goes on
    EXPECT_LE(run.max_live, 1);
  }
}

TEST(SliceSamplerTest, ShortClipKeepsFramesAtMostOnce) {
  for (SamplingPolicy policy : kSlicePolicies) {
    SCOPED_TRACE(Name(policy));
    auto sampler = Make(policy, Info(25, 0.4), 32);
    const Fed run = Feed(sampler.get(), ConstantRate(10, 25), Drifting);
    ASSERT_GE(run.kept.size(), 8u);  // 32 slices of a third of a frame: nearly every frame serves one
    ASSERT_LE(run.kept.size(), 10u);
    for (size_t k = 1; k < run.kept.size(); ++k) EXPECT_GT(run.kept[k].index, run.kept[k - 1].index);
  }
}

// One slice (3 s at 30 fps), three candidates at 0.5, 1.5 and 2.5 s; each second shows another
// version of the same picture.
int64_t QualityPick(const cv::Mat& first, const cv::Mat& second, const cv::Mat& third) {
  auto sampler = Make(SamplingPolicy::kQuality, Info(30, 3), 1, 3);
  const Fed run = Feed(sampler.get(), ConstantRate(90, 30), [&](int64_t, double t) {
    return (t < 1 ? first : t < 2 ? second : third).clone();
  });
  EXPECT_EQ(run.kept.size(), 1u);
  return run.kept.empty() ? -1 : run.kept[0].index;
}

TEST(SliceSamplerTest, QualityKeepsTheSharpWellExposedCandidate) {
  const cv::Mat sharp = Picture();
  cv::Mat blurred, dark, blown;
  cv::GaussianBlur(sharp, blurred, cv::Size(0, 0), 2.5);
  sharp.convertTo(dark, CV_8U, 0.08);
  sharp.convertTo(blown, CV_8U, 1.0, 150);
  ASSERT_GT(Sharpness(dark), Sharpness(blurred));  // darkness, not blur, must rule the dark one out
  // The candidate nearest the slice centre (1.5 s) is never the good one here.
  EXPECT_EQ(QualityPick(dark, blurred, sharp), 75);   // 2.5 s
  EXPECT_EQ(QualityPick(sharp, blown, blurred), 15);  // 0.5 s
  EXPECT_EQ(QualityPick(blurred, dark, sharp), 75);
  // All well exposed and equally sharp: the tie goes to the slice centre.
  EXPECT_EQ(QualityPick(sharp, sharp, sharp), 45);
}

TEST(SliceSamplerTest, MotionKeepsTheCandidateThatChanged) {
  // One slice of 4 s at 25 fps; the candidates are the frames at 0.48, 1.48, 2.48 and 3.48 s.
  // A central patch (a face opening its mouth) changes from 1 s; at 2 s it changes a little more.
  const cv::Mat still = Picture();
  const cv::Rect patch(64, 36, 32, 18);
  cv::Mat open = still.clone(), wider = still.clone();
  open(patch).setTo(250);
  wider(patch).setTo(235);
  auto sampler = Make(SamplingPolicy::kMotion, Info(25, 4), 1, 4);
  Fed run = Feed(sampler.get(), ConstantRate(100, 25), [&](int64_t, double t) {
    return (t < 1 ? still : t < 2 ? open : wider).clone();
  });
  ASSERT_EQ(run.kept.size(), 1u);
  EXPECT_NEAR(run.kept[0].t, 1.48, 1e-9);

  // Nothing moves: the tie goes to the candidate nearest the slice centre (2 s).
  sampler = Make(SamplingPolicy::kMotion, Info(25, 4), 1, 4);
  run = Feed(sampler.get(), ConstantRate(100, 25), [&](int64_t, double) { return still.clone(); });
  ASSERT_EQ(run.kept.size(), 1u);
  EXPECT_NEAR(run.kept[0].t, 2.48, 1e-9);

  // A scene cut is not motion: the candidate after a cut to another shot scores nothing, and the
  // patch change in the new shot wins.
  const cv::Mat other = Noise(150, 255, 105, 5);
  cv::Mat other_open = other.clone();
  other_open(patch).setTo(20);
  sampler = Make(SamplingPolicy::kMotion, Info(25, 4), 1, 4);
  run = Feed(sampler.get(), ConstantRate(100, 25), [&](int64_t, double t) {
    return (t < 1 ? still : t < 3 ? other : other_open).clone();
  });
  ASSERT_EQ(run.kept.size(), 1u);
  EXPECT_NEAR(run.kept[0].t, 3.48, 1e-9);
}

// Two shots: A (dark noise) up to frame `last_a`, B (bright noise) after; every frame has fresh
// noise of 13 grey levels (3.7 bits).
cv::Mat Shot(int64_t index, int64_t last_a) {
  return index <= last_a ? Noise(0, 104, 13, index) : Noise(152, 256, 13, index);
}

TEST(SliceSamplerTest, ContentNeverKeepsATransitionFrameAndCoversBothShots) {
  // 4 s at 30 fps, 4 slices of 4 candidates. Frame 79 (the candidate nearest 2.625 s) is torn
  // between the shots, so it has by far the most information (entropy); the frames around it
  // are what a cut blends.
  const cv::Mat torn = [] {
    cv::Mat m = Shot(79, 200);
    Shot(79, 0)(cv::Rect(80, 0, 80, 90)).copyTo(m(cv::Rect(80, 0, 80, 90)));
    return m;
  }();
  ASSERT_GT(Entropy(torn), Entropy(Shot(10, 200)) + 0.5);
  auto sampler = Make(SamplingPolicy::kContent, Info(30, 4), 4, 4);
  const Fed run = Feed(sampler.get(), ConstantRate(120, 30),
                       [&](int64_t i, double) { return i == 79 ? torn.clone() : Shot(i, 78); });
  ASSERT_EQ(run.kept.size(), 4u);
  bool shot_a = false, shot_b = false;
  for (const Kept& k : run.kept) {
    EXPECT_FALSE(k.index >= 77 && k.index <= 81) << "kept frame " << k.index << " is next to the cut";
    shot_a |= k.index < 79;
    shot_b |= k.index > 79;
  }
  EXPECT_TRUE(shot_a);
  EXPECT_TRUE(shot_b);
  EXPECT_LE(run.max_live, 1);
}

TEST(SliceSamplerTest, ContentDropsAPickThatALaterCutSpoils) {
  // Slice 2 of 4 (2..3 s) has candidates at frames 64, 71, 79 and 86. Frame 71 holds the most
  // information of its shot (full noise, not a cut), but the shot ends after frame 72.
  auto pixels = [](int64_t i, double) { return i == 71 ? Noise(0, 104, 104, 71) : Shot(i, 72); };
  ASSERT_GT(Entropy(pixels(71, 0)), Entropy(pixels(64, 0)) + 2);
  auto sampler = Make(SamplingPolicy::kContent, Info(30, 4), 4, 4);
  const Fed run = Feed(sampler.get(), ConstantRate(120, 30), pixels);
  ASSERT_EQ(run.kept.size(), 4u);
  EXPECT_GE(run.kept[2].index, 60);
  EXPECT_LT(run.kept[2].index, 90);
  EXPECT_EQ(run.kept[2].index, 79);  // the next candidate, clear of the cut, nearest the centre

  // Without the cut, frame 71 is the pick: the cut is what ruled it out.
  sampler = Make(SamplingPolicy::kContent, Info(30, 4), 4, 4);
  const Fed uncut = Feed(sampler.get(), ConstantRate(120, 30),
                         [&](int64_t i, double t) { return i == 71 ? pixels(i, t) : Shot(i, 1000); });
  ASSERT_EQ(uncut.kept.size(), 4u);
  EXPECT_EQ(uncut.kept[2].index, 71);
}

TEST(SliceSamplerTest, ContentReplacesASpoiltOnlyCandidate) {
  // One candidate per slice: slice 2's (frame 75, 2.5 s) sits just before a cut between frames
  // 76 and 77; a later frame of the slice, clear of the cut, stands in for it.
  auto sampler = Make(SamplingPolicy::kContent, Info(30, 4), 4, 1);
  const Fed run = Feed(sampler.get(), ConstantRate(120, 30), [](int64_t i, double) { return Shot(i, 76); });
  ASSERT_EQ(run.kept.size(), 4u);
  EXPECT_EQ(run.kept[0].index, 15);
  EXPECT_EQ(run.kept[1].index, 45);
  EXPECT_EQ(run.kept[2].index, 79);  // the first frame more than two frames after the cut
  EXPECT_EQ(run.kept[3].index, 105);
  EXPECT_LE(run.max_live, 1);
}

// Random constant- and variable-rate streams, some with an unknown frame rate; two of three
// frames skippable (non-reference). Skipping through MayKeep must never lose a frame the
// sampler keeps when it sees every frame, so both runs keep the same frames.
void ExpectSkippingKeepsThePicks(SamplingPolicy policy, int trials, bool allow_unknown_fps) {
  std::mt19937 rng(20240611);
  std::uniform_real_distribution<double> fps_dist(5, 60), unit(-1, 1);
  std::uniform_int_distribution<int> frames_dist(2, 400), count_dist(1, 40);
  int skipped = 0, skippable_total = 0;
  const cv::Mat tiny = Picture(16, 10);
  for (int trial = 0; trial < trials; ++trial) {
    const double fps = fps_dist(rng);
    const int frames = frames_dist(rng);
    const int count = count_dist(rng);
    const double jitter = trial % 2 ? 0.25 : 0.0;
    const bool fps_known = !allow_unknown_fps || trial % 3 != 0;
    std::vector<double> times(frames);
    std::vector<bool> skippable(frames);
    for (int i = 0; i < frames; ++i) {
      times[i] = (i + (i > 0 ? jitter * unit(rng) : 0)) / fps;
      skippable[i] = i > 0 && (rng() % 3 != 0);
    }
    const StreamInfo info = Info(fps_known ? fps : 0, frames / fps);
    SCOPED_TRACE("trial " + std::to_string(trial) + ": fps " + std::to_string(fps) + (fps_known ? "" : " (unknown)") +
                 ", frames " + std::to_string(frames) + ", count " + std::to_string(count));
    // Pixels that differ from frame to frame, so that quality and motion have something to weigh.
    const Pixels pixels = [&](int64_t i, double) {
      cv::Mat m = tiny.clone();
      m(cv::Rect(static_cast<int>(i % 8), 2, 6, 6)).setTo(static_cast<int>(i * 37 % 256));
      return m;
    };
    auto all = Make(policy, info, count);
    auto some = Make(policy, info, count);
    const Fed full = Feed(all.get(), times, pixels);
    const Fed skipping = Feed(some.get(), times, pixels, skippable);
    ASSERT_EQ(full.kept.size(), skipping.kept.size());
    for (size_t k = 0; k < full.kept.size(); ++k) {
      EXPECT_TRUE(skipping.offered[full.kept[k].index]) << "frame " << full.kept[k].index << " was skipped";
      EXPECT_EQ(full.kept[k].index, skipping.kept[k].index) << "sample " << k;
    }
    for (int i = 0; i < frames; ++i) {
      skippable_total += skippable[i];
      skipped += skippable[i] && !skipping.offered[i];
    }
  }
  EXPECT_GT(skipped, 0);
  EXPECT_LE(skipped, skippable_total);
}

TEST(SamplerMayKeepTest, UniformNeverSkipsAFrameItWouldPick) {
  ExpectSkippingKeepsThePicks(SamplingPolicy::kUniform, 600, /*allow_unknown_fps=*/true);
}

TEST(SamplerMayKeepTest, SlicePoliciesKeepTheSamePicksWhenSkipping) {
  // Their candidates are the frames nearest fixed times, found the same way with or without the
  // frames in between; motion and quality weigh only candidates, so their picks must not change.
  ExpectSkippingKeepsThePicks(SamplingPolicy::kQuality, 60, /*allow_unknown_fps=*/false);
  ExpectSkippingKeepsThePicks(SamplingPolicy::kMotion, 60, /*allow_unknown_fps=*/false);
}

TEST(SamplerMayKeepTest, SkipsFarFromTargetsOnly) {
  // 30 fps, 10 s, 4 targets at 0, 3.322, 6.644 and 9.967 s.
  auto uniform = Make(SamplingPolicy::kUniform, Info(30, 10), 4);
  EXPECT_TRUE(uniform->MayKeep(0.02));
  EXPECT_TRUE(uniform->MayKeep(3.30));
  EXPECT_FALSE(uniform->MayKeep(1.5));
  EXPECT_FALSE(uniform->MayKeep(3.40));
  // Slice policies: 2 slices of 5 s, 2 candidates each: 1.25, 3.75, 6.25, 8.75 s.
  auto quality = Make(SamplingPolicy::kQuality, Info(30, 10), 2, 2);
  EXPECT_TRUE(quality->MayKeep(1.25));
  EXPECT_TRUE(quality->MayKeep(3.72));
  EXPECT_FALSE(quality->MayKeep(2.5));
  EXPECT_FALSE(quality->MayKeep(5.0));
  // Keyframe triage keeps the default: the decoder already skips every non-key frame.
  auto keyframes = Make(SamplingPolicy::kKeyframes, Info(30, 10), 4);
  EXPECT_TRUE(keyframes->MayKeep(1.5));
}

TEST(SamplerMayKeepTest, SkipsMostOfALongClip) {
  // 60 s at 30 fps, every frame but one in 30 skippable: 32 uniform targets, or 32 x 4
  // candidate times, each need about two frames around them.
  std::vector<bool> skippable(1800);
  for (int i = 0; i < 1800; ++i) skippable[i] = i % 30 != 0;
  const cv::Mat tiny = Picture(16, 10);
  for (SamplingPolicy policy :
       {SamplingPolicy::kUniform, SamplingPolicy::kMotion, SamplingPolicy::kQuality, SamplingPolicy::kContent}) {
    SCOPED_TRACE(Name(policy));
    auto sampler = Make(policy, Info(30, 60), 32);
    const Fed run = Feed(
        sampler.get(), ConstantRate(1800, 30), [&](int64_t, double) { return tiny.clone(); }, skippable);
    EXPECT_EQ(run.kept.size(), 32u);
    const int offered = static_cast<int>(std::count(run.offered.begin(), run.offered.end(), true));
    EXPECT_LT(offered, policy == SamplingPolicy::kUniform ? 130 : 260) << offered << " of 1800 decoded";
  }
}

TEST(SamplerFactoryTest, DispatchesAndValidates) {
  for (SamplingPolicy policy : kSlicePolicies) {
    SamplingOptions o;
    o.policy = policy;
    EXPECT_TRUE(MakeSampler(Info(30, 10), o).ok());
    o.candidates = 0;
    EXPECT_EQ(MakeSampler(Info(30, 10), o).status().code(), Code::kInvalidArgument);
    o.candidates = 4;
    o.frames = 0;
    EXPECT_EQ(MakeSampler(Info(30, 10), o).status().code(), Code::kInvalidArgument);
  }
}

// Real decoded frames (libx264, YUV 4:2:0, B-frames) through Source.
TEST(SliceSamplerTest, WorksOnADecodedClip) {
  const std::string path = deepscan::testing::TempDir() + "/slices.mp4";
  ASSERT_TRUE(deepscan::testing::WriteNumberedClip(
      path, 90, 30, 320, 240,
      {"-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p", "-bf", "2"}));
  for (SamplingPolicy policy : kSlicePolicies) {
    SCOPED_TRACE(Name(policy));
    auto src = Source::Open(path, {});
    ASSERT_TRUE(src.ok()) << src.status().ToString();
    auto sampler = Make(policy, (*src)->info(), 6);
    std::vector<FrameRef> keep;
    std::vector<int> numbers;
    while (true) {
      FrameRef f;
      auto got = (*src)->Next(&f);
      ASSERT_TRUE(got.ok());
      if (*got) {
        sampler->Offer(std::move(f), &keep);
      } else {
        sampler->Finish(&keep);
      }
      for (const FrameRef& k : keep) {
        cv::Mat bgr;
        ASSERT_TRUE((*src)->ToBgr(k, &bgr).ok());
        numbers.push_back(deepscan::testing::ReadFrameNumber(bgr));
      }
      keep.clear();
      if (!*got || sampler->Done()) break;
    }
    ASSERT_EQ(numbers.size(), 6u);
    for (int k = 0; k < 6; ++k) {
      EXPECT_GE(numbers[k], 15 * k) << "sample " << k;
      EXPECT_LT(numbers[k], 15 * (k + 1)) << "sample " << k;
    }
  }
}

// SampledFrames (the loop every reader uses) hands out exactly the frames the hand-written loop
// above keeps, in order, and stops decoding once the sampler is done.
TEST(SampledFramesTest, KeepsWhatTheSamplerKeepsInOrder) {
  const std::string path = deepscan::testing::TempDir() + "/sampled.mp4";
  ASSERT_TRUE(deepscan::testing::WriteNumberedClip(
      path, 90, 30, 320, 240,
      {"-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p", "-bf", "2"}));
  for (SamplingPolicy policy :
       {SamplingPolicy::kUniform, SamplingPolicy::kMotion, SamplingPolicy::kQuality, SamplingPolicy::kContent}) {
    SCOPED_TRACE(Name(policy));
    auto manual = [&] {
      auto src = Source::Open(path, {});
      auto sampler = Make(policy, (*src)->info(), 6);
      std::vector<FrameRef> keep;
      std::vector<int64_t> indices;
      while (true) {
        FrameRef f;
        auto got = (*src)->Next(&f);
        if (!got.ok()) break;
        if (*got) {
          sampler->Offer(std::move(f), &keep);
        } else {
          sampler->Finish(&keep);
        }
        for (const FrameRef& k : keep) indices.push_back(k.index());
        keep.clear();
        if (!*got || sampler->Done()) break;
      }
      return indices;
    }();
    auto src = Source::Open(path, {});
    ASSERT_TRUE(src.ok());
    auto sampler = Make(policy, (*src)->info(), 6);
    SampledFrames frames(src->get(), sampler.get());
    std::vector<int64_t> indices;
    std::vector<int> numbers;
    FrameRef k;
    while (true) {
      auto more = frames.Next(&k);
      ASSERT_TRUE(more.ok()) << more.status().ToString();
      if (!*more) break;
      indices.push_back(k.index());
      cv::Mat bgr;
      ASSERT_TRUE((*src)->ToBgr(k, &bgr).ok());
      numbers.push_back(deepscan::testing::ReadFrameNumber(bgr));
    }
    EXPECT_EQ(indices, manual);
    ASSERT_EQ(numbers.size(), 6u);
    for (size_t i = 0; i < numbers.size(); ++i) EXPECT_EQ(numbers[i], indices[i]) << "the pixels of frame " << i;
    EXPECT_FALSE(*frames.Next(&k)) << "and nothing after the end";
    EXPECT_GT(frames.decode_s(), 0.0);
  }
}

}  // namespace
}  // namespace deepscan::video
