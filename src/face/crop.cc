#include "face/crop.h"

#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

namespace deepscan::face {

cv::Rect2d CropSquare(const Box& box, float margin) {
  double side = (1.0 + margin) * std::max(box.w, box.h);
  double cx = box.x + box.w / 2.0, cy = box.y + box.h / 2.0;
  return {cx - side / 2, cy - side / 2, side, side};
}

void CropFace(const cv::Mat& frame, const Box& box, float margin, int size, cv::Mat* out) {
  out->create(size, size, CV_8UC3);
  out->setTo(cv::Scalar::all(0));
  cv::Rect2d sq = CropSquare(box, margin);
  if (sq.width <= 0) return;
  const double scale = size / sq.width;
  // Source pixels inside both the square and the frame.
  int x0 = std::max(0, static_cast<int>(std::floor(sq.x))), y0 = std::max(0, static_cast<int>(std::floor(sq.y)));
  int x1 = std::min(frame.cols, static_cast<int>(std::ceil(sq.x + sq.width)));
  int y1 = std::min(frame.rows, static_cast<int>(std::ceil(sq.y + sq.height)));
  if (x1 <= x0 || y1 <= y0) return;
  // Their place in the output.
  int dx0 = std::clamp(static_cast<int>(std::lround((x0 - sq.x) * scale)), 0, size - 1);
  int dy0 = std::clamp(static_cast<int>(std::lround((y0 - sq.y) * scale)), 0, size - 1);
  int dx1 = std::clamp(static_cast<int>(std::lround((x1 - sq.x) * scale)), dx0 + 1, size);
  int dy1 = std::clamp(static_cast<int>(std::lround((y1 - sq.y) * scale)), dy0 + 1, size);
  cv::Mat dst = (*out)(cv::Rect(dx0, dy0, dx1 - dx0, dy1 - dy0));
  cv::resize(frame(cv::Rect(x0, y0, x1 - x0, y1 - y0)), dst, dst.size(), 0, 0,
             scale < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
}

Point ToCrop(const Point& p, const Box& box, float margin, int size) {
  cv::Rect2d sq = CropSquare(box, margin);
  double scale = size / sq.width;
  return {static_cast<float>((p.x - sq.x) * scale), static_cast<float>((p.y - sq.y) * scale)};
}

}  // namespace deepscan::face
