// video/ffmpeg_handles.h: what every FFmpeg call site in src/video shares (internal to src/video).
//   - InitFfmpegLogging: FFmpeg's own log lines repeat what our statuses say, so they are off
//     unless DEEPSCAN_FFMPEG_LOG=1. Every entry point into FFmpeg calls it first (cheap, once).
//   - RAII deleters for the handles we own.
//   - SwsBgrTarget: a BGR image that swscale may safely write into.
#ifndef DEEPSCAN_VIDEO_FFMPEG_HANDLES_H_
#define DEEPSCAN_VIDEO_FFMPEG_HANDLES_H_

#include <cstdlib>
#include <memory>
#include <mutex>

#include <opencv2/core.hpp>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/frame.h>
#include <libavutil/log.h>
#include <libswscale/swscale.h>
}

namespace deepscan::video {

inline void InitFfmpegLogging() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = std::getenv("DEEPSCAN_FFMPEG_LOG");
    av_log_set_level(env && *env == '1' ? AV_LOG_WARNING : AV_LOG_QUIET);
  });
}

struct FormatCloser {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
struct CodecFreer {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct PacketFreer {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct FrameFreer {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct SwsFreer {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};

// A `width` x `height` CV_8UC3 image to pass to sws_scale as the destination. swscale's SIMD
// paths may write up to a vector past the end of a row or of the image, so the image is a view
// into storage with an aligned, padded row stride and one spare row (the view keeps it alive).
inline cv::Mat SwsBgrTarget(int width, int height) {
  const size_t stride = (static_cast<size_t>(width) * 3 + 63) / 64 * 64 + 64;
  cv::Mat storage(height + 1, static_cast<int>(stride), CV_8UC1);
  return storage(cv::Rect(0, 0, width * 3, height)).reshape(3, 0);
}

}  // namespace deepscan::video

#endif  // DEEPSCAN_VIDEO_FFMPEG_HANDLES_H_
