// Test support: decoded frames made in memory, as video::Source would hand them out.
#ifndef DEEPSCAN_TESTS_SUPPORT_SYNTHETIC_FRAMES_H_
#define DEEPSCAN_TESTS_SUPPORT_SYNTHETIC_FRAMES_H_

#include <cstdint>

#include <opencv2/core.hpp>

#include "video/source.h"

namespace deepscan::testing {

// A FrameRef whose luma is `luma` (CV_8UC1, even width and height) and whose chroma is neutral,
// in `pix_fmt` (an AVPixelFormat: YUV420P, NV12, YUV420P10LE, GRAY8, RGB24, BGRA, GBRP or
// YUYV422), marked
// full range (`full_range`) or limited range. Its pixel buffer counts in LiveSyntheticFrames()
// until the last reference to it is freed.
video::FrameRef LumaFrame(const cv::Mat& luma, int64_t index, double timestamp_s, int pix_fmt, bool full_range = true);
video::FrameRef LumaFrame(const cv::Mat& luma, int64_t index, double timestamp_s);  // YUV420P, full range

// Synthetic frames whose pixel buffers are still referenced.
int LiveSyntheticFrames();

}  // namespace deepscan::testing

#endif  // DEEPSCAN_TESTS_SUPPORT_SYNTHETIC_FRAMES_H_
