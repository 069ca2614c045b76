// video::Source: the one place that demuxes and decodes video (FFmpeg libavformat/libavcodec).
//
// In:  a file path or any URL FFmpeg can open.
// Out: decoded frames in decode order, each with its presentation timestamp in seconds, as
//      cheap reference-counted FrameRefs; colour conversion (to upright BGR) happens only when a
//      caller asks for it, so frames nobody keeps cost no conversion.
// Hardware decoding: with SourceOptions::hwaccel "cuda" or "auto", NVDEC decodes when it can
// (video/hwaccel.h) and frames stay in GPU memory until ToBgr or Download copies them out; a
// FrameRef that is on_gpu() must not be read through its AVFrame's data pointers.
// Threading: a Source is used by one thread at a time. FFmpeg's own decoder threads are set by
// SourceOptions::threads (one thread with NVDEC).
#ifndef DEEPSCAN_VIDEO_SOURCE_H_
#define DEEPSCAN_VIDEO_SOURCE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "deepscan/status.h"

struct AVFrame;

namespace deepscan::video {

struct SourceOptions {
  int threads = 0;                     // decoder threads; 0 = FFmpeg's choice (all cores)
  double timeout_s = 0;                // wall-clock budget for open + decode; 0 = none
  int64_t max_pixels = 7680LL * 4320;  // larger frames are refused with kTooLarge (8K UHD)
  bool keyframes_only = false;         // ask the decoder to skip every non-key frame
  bool skip_nonref = false;            // drop non-reference H.264/HEVC frames the frame filter rejects
  std::string hwaccel = "none";        // "none" | "cuda" (NVDEC; software with a warning when it
                                       // cannot) | "auto" (NVDEC when usable, silently software)
};

// Asked, before decoding, about a frame that could be skipped (a non-reference picture), with
// its presentation time: false = nobody needs it, do not decode it. See Sampler::MayKeep.
using FrameFilter = std::function<bool(double timestamp_s)>;

// What the container says about the video stream (before any decoding).
struct StreamInfo {
  int width = 0;            // upright (after rotation) width in pixels
  int height = 0;           // upright height
  int rotation = 0;         // clockwise degrees applied to decoded frames: 0, 90, 180 or 270
  double fps = 0;           // average frame rate; 0 when unknown
  double start_s = 0;       // timestamp of the first frame
  double duration_s = 0;    // <= 0 when unknown (live streams)
  int64_t frame_count = 0;  // from the container; 0 when unknown
  std::string codec;        // e.g. "h264"
  std::string container;    // e.g. "mov,mp4,m4a,3gp,3g2,mj2"
};

// A decoded frame, not yet colour-converted. Move-only; owns one AVFrame reference.
class FrameRef {
 public:
  FrameRef() = default;
  explicit FrameRef(AVFrame* frame, int64_t index, double timestamp_s, bool keyframe);
  FrameRef(FrameRef&& other) noexcept;
  FrameRef& operator=(FrameRef&& other) noexcept;
  FrameRef(const FrameRef&) = delete;
  FrameRef& operator=(const FrameRef&) = delete;
  ~FrameRef();

  bool valid() const { return frame_ != nullptr; }
  // 0-based frame number: the position in output order when every frame is decoded; estimated
  // from timestamp x frame rate when the decoder skips non-key frames (keyframes_only).
  int64_t index() const { return index_; }
  double timestamp_s() const { return timestamp_s_; }
  bool keyframe() const { return keyframe_; }
  // The decoded frame. Its data pointers are device memory when on_gpu(): Source::Download first.
  const AVFrame* av() const { return frame_; }
  // True when the frame lives in GPU memory (decoded by NVDEC, not yet downloaded).
  bool on_gpu() const;

 private:
  friend class Source;
  AVFrame* frame_ = nullptr;
  int64_t index_ = -1;
  double timestamp_s_ = 0;
  bool keyframe_ = false;
};

class Source {
 public:
  // Opens `url` and its best video stream. Errors: kNotFound (no such local file), kCorruptInput
  // (empty, unknown or broken container), kNotAVideo (no video stream, or a still image),
  // kTooLarge (frame beyond max_pixels), kTimeout.
  static Result<std::unique_ptr<Source>> Open(const std::string& url, const SourceOptions& options);
  ~Source();

  const StreamInfo& info() const;

  // Decodes the next frame into *frame. Returns true with a valid frame, or false at the end of
  // the stream (or at an unrecoverable read error, which is then listed in warnings()).
  // Errors: kTimeout, kCorruptInput (the stream yielded no decodable frame at all).
  Result<bool> Next(FrameRef* frame);

  // With SourceOptions::skip_nonref, non-reference frames for which `filter` says false are
  // dropped before decoding. Frame indices stay exact: skipped frames are counted in.
  void SetFrameFilter(FrameFilter filter);

  // Converts `frame` to an upright 8-bit BGR image (rotation applied). Reuses its scaler. A frame
  // on the GPU is copied to system memory first (into a reused buffer; `frame` stays as it is).
  Status ToBgr(const FrameRef& frame, cv::Mat* bgr);

  // Replaces a frame that is on_gpu() by its system-memory copy (same index, time, key flag), so
  // that its pixels can be read through av()->data; does nothing to other frames. Callers that
  // read pixels of frames they keep (samplers) call this first. Errors: kInternal (copy failed).
  Status Download(FrameRef* frame);

  // Where this Source decodes: "cuda" while NVDEC delivers the frames, "cpu" otherwise (no
  // hwaccel asked for, NVDEC unusable, or a frame has come out in a software format).
  const char* decoder_device() const;

  // Problems that did not stop decoding (corrupt packets, truncation), in plain words.
  const std::vector<std::string>& warnings() const;
  int64_t frames_decoded() const;
  int64_t frames_skipped() const;  // non-reference frames dropped before decoding

 private:
  struct Impl;
  explicit Source(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace deepscan::video

#endif  // DEEPSCAN_VIDEO_SOURCE_H_
