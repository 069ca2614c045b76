// face::Crop: the one way a face becomes a classifier input (scan, extract and training share it).
//
// In:  an upright BGR frame and a face box.
// Out: a square BGR crop of side (1 + margin) * max(box w, box h) centred on the box, resized to
//      `size` x `size`; parts outside the frame are black.
#ifndef DEEPSCAN_FACE_CROP_H_
#define DEEPSCAN_FACE_CROP_H_

#include <opencv2/core.hpp>

#include "deepscan/verdict.h"

namespace deepscan::face {

// The square crop region for `box` in frame pixels (it may extend past the frame).
cv::Rect2d CropSquare(const Box& box, float margin);

// Writes the crop of `box` from `frame` into `out` (size x size, CV_8UC3), reusing its buffer.
void CropFace(const cv::Mat& frame, const Box& box, float margin, int size, cv::Mat* out);

// Maps a point in frame pixels into the pixels of the crop made by CropFace.
Point ToCrop(const Point& p, const Box& box, float margin, int size);

}  // namespace deepscan::face

#endif  // DEEPSCAN_FACE_CROP_H_
