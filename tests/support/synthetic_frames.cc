#include "synthetic_frames.h"

#include <atomic>
#include <cstring>
#include <stdexcept>

extern "C" {
#include <libavutil/buffer.h>
#include <libavutil/frame.h>
#include <libavutil/imgutils.h>
#include <libavutil/mem.h>
}

namespace deepscan::testing {
namespace {

std::atomic<int> live{0};

void FreeCounted(void* /*opaque*/, uint8_t* data) {
  av_free(data);
  --live;
}

}  // namespace

video::FrameRef LumaFrame(const cv::Mat& luma, int64_t index, double timestamp_s, int pix_fmt, bool full_range) {
  CV_Assert(luma.type() == CV_8UC1 && luma.cols % 2 == 0 && luma.rows % 2 == 0);
  const auto fmt = static_cast<AVPixelFormat>(pix_fmt);
  const int w = luma.cols, h = luma.rows;
  AVFrame* f = av_frame_alloc();
  f->format = fmt;
  f->width = w;
  f->height = h;
  f->color_range = full_range ? AVCOL_RANGE_JPEG : AVCOL_RANGE_MPEG;
  const int size = av_image_get_buffer_size(fmt, w, h, 32);
  auto* mem = static_cast<uint8_t*>(av_malloc(size));
  std::memset(mem, 0, size);
  f->buf[0] = av_buffer_create(mem, size, FreeCounted, nullptr, 0);
  ++live;
  av_image_fill_arrays(f->data, f->linesize, mem, fmt, w, h, 32);
  for (int r = 0; r < h; ++r) {
    const uint8_t* y = luma.ptr<uint8_t>(r);
    uint8_t* row = f->data[0] + static_cast<ptrdiff_t>(r) * f->linesize[0];
    switch (fmt) {
      case AV_PIX_FMT_YUV420P:
      case AV_PIX_FMT_NV12:
      case AV_PIX_FMT_GRAY8: std::memcpy(row, y, w); break;
      case AV_PIX_FMT_YUV420P10LE:
        for (int c = 0; c < w; ++c) reinterpret_cast<uint16_t*>(row)[c] = static_cast<uint16_t>(y[c] << 2);
        break;
      case AV_PIX_FMT_RGB24:
        for (int c = 0; c < w; ++c) row[3 * c] = row[3 * c + 1] = row[3 * c + 2] = y[c];
        break;
      case AV_PIX_FMT_BGRA:
        for (int c = 0; c < w; ++c) {
          row[4 * c] = row[4 * c + 1] = row[4 * c + 2] = y[c];
          row[4 * c + 3] = 255;
        }
        break;
      case AV_PIX_FMT_GBRP:  // planar G, B, R: the same values in each plane
        for (int p = 0; p < 3; ++p) std::memcpy(f->data[p] + static_cast<ptrdiff_t>(r) * f->linesize[p], y, w);
        break;
      case AV_PIX_FMT_YUYV422:
        for (int c = 0; c < w; ++c) {
          row[2 * c] = y[c];
          row[2 * c + 1] = 128;
        }
        break;
      default: throw std::invalid_argument("LumaFrame: unsupported pixel format");
    }
  }
  // Neutral chroma.
  if (fmt == AV_PIX_FMT_YUV420P) {
    for (int p = 1; p <= 2; ++p) std::memset(f->data[p], 128, static_cast<size_t>(f->linesize[p]) * h / 2);
  } else if (fmt == AV_PIX_FMT_NV12) {
    std::memset(f->data[1], 128, static_cast<size_t>(f->linesize[1]) * h / 2);
  } else if (fmt == AV_PIX_FMT_YUV420P10LE) {
    for (int p = 1; p <= 2; ++p) {
      for (int r = 0; r < h / 2; ++r) {
        auto* row = reinterpret_cast<uint16_t*>(f->data[p] + static_cast<ptrdiff_t>(r) * f->linesize[p]);
        for (int c = 0; c < w / 2; ++c) row[c] = 512;
      }
    }
  }
  return video::FrameRef(f, index, timestamp_s, index == 0);
}

video::FrameRef LumaFrame(const cv::Mat& luma, int64_t index, double timestamp_s) {
  return LumaFrame(luma, index, timestamp_s, AV_PIX_FMT_YUV420P, true);
}

int LiveSyntheticFrames() { return live.load(); }

}  // namespace deepscan::testing
