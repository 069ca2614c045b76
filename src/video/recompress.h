// video::H264RoundTrip: what a video codec does to one image, for training augmentation.
//
// In:  a BGR image (any size; odd sides are padded by one pixel, then cropped back).
// Out: the image after encoding it as one H.264 intra frame (libx264, 4:2:0, constant rate factor
//      `crf`, 0 = lossless .. 51 = worst) and decoding it again: block artefacts, chroma
//      subsampling and ringing as in compressed web video.
// Threading: stateless; every call builds its own codec contexts (about a millisecond for a face
// crop), so concurrent calls are safe.
#ifndef DEEPSCAN_VIDEO_RECOMPRESS_H_
#define DEEPSCAN_VIDEO_RECOMPRESS_H_

#include <opencv2/core.hpp>

#include "deepscan/status.h"

namespace deepscan::video {

// Errors: kInvalidArgument (empty or not CV_8UC3, crf outside 0..51), kNotSupported (no H.264
// encoder in this FFmpeg), kInternal (the codec failed).
Result<cv::Mat> H264RoundTrip(const cv::Mat& bgr, int crf);

}  // namespace deepscan::video

#endif  // DEEPSCAN_VIDEO_RECOMPRESS_H_
