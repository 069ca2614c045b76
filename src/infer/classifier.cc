#include "infer/classifier.h"

namespace deepscan::infer {

Status PackNchw(const std::vector<cv::Mat>& crops, size_t begin, size_t end, const ModelMetadata& m, float* dst) {
  const int side = m.input_size;
  const size_t plane = static_cast<size_t>(side) * side;
  float scale[3], shift[3];  // value = pixel * scale + shift  ==  (pixel / 255 - mean) / std
  for (int c = 0; c < 3; ++c) {
    scale[c] = 1.0f / (255.0f * m.std[c]);
    shift[c] = -m.mean[c] / m.std[c];
  }
  for (size_t i = begin; i < end; ++i) {
    const cv::Mat& crop = crops[i];
    if (crop.rows != side || crop.cols != side || crop.type() != CV_8UC3) {
      return Status::InvalidArgument("crop must be " + std::to_string(side) + "x" + std::to_string(side) + " BGR");
    }
    float* r = dst + (i - begin) * 3 * plane;
    float* g = r + plane;
    float* b = g + plane;
    for (int y = 0; y < side; ++y) {
      const uint8_t* px = crop.ptr<uint8_t>(y);
      for (int x = 0; x < side; ++x, px += 3) {
        const size_t o = static_cast<size_t>(y) * side + x;
        b[o] = px[0] * scale[2] + shift[2];
        g[o] = px[1] * scale[1] + shift[1];
        r[o] = px[2] * scale[0] + shift[0];
      }
    }
  }
  return Status::Ok();
}

}  // namespace deepscan::infer
