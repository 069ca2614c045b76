// video::InitFfmpegLogging: FFmpeg's own log lines repeat what our statuses say, so they are off
// unless DEEPSCAN_FFMPEG_LOG=1. Every entry point into FFmpeg calls this first (cheap, once).
#ifndef DEEPSCAN_VIDEO_FFMPEG_LOG_H_
#define DEEPSCAN_VIDEO_FFMPEG_LOG_H_

#include <cstdlib>
#include <mutex>

extern "C" {
#include <libavutil/log.h>
}

namespace deepscan::video {

inline void InitFfmpegLogging() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = std::getenv("DEEPSCAN_FFMPEG_LOG");
    av_log_set_level(env && *env == '1' ? AV_LOG_WARNING : AV_LOG_QUIET);
  });
}

}  // namespace deepscan::video

#endif  // DEEPSCAN_VIDEO_FFMPEG_LOG_H_
