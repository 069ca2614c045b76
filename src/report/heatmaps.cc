#include "report/heatmaps.h"

#include <filesystem>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace deepscan::report {
namespace {

cv::Mat Decode(const std::string& bytes, int flags) {
  std::vector<uchar> buf(bytes.begin(), bytes.end());
  return buf.empty() ? cv::Mat() : cv::imdecode(buf, flags);
}

// The crop with red over it where the heatmap is high: out = crop * (1 - h) + red * h.
cv::Mat Overlay(const cv::Mat& crop, const cv::Mat& grey) {
  cv::Mat h;
  grey.convertTo(h, CV_32F, 1.0 / 255.0);
  cv::Mat out(crop.size(), CV_8UC3);
  for (int y = 0; y < crop.rows; ++y) {
    const cv::Vec3b* c = crop.ptr<cv::Vec3b>(y);
    const float* a = h.ptr<float>(y);
    cv::Vec3b* o = out.ptr<cv::Vec3b>(y);
    for (int x = 0; x < crop.cols; ++x) {
      const float k = a[x];
      o[x] = cv::Vec3b(cv::saturate_cast<uchar>(c[x][0] * (1 - k)), cv::saturate_cast<uchar>(c[x][1] * (1 - k)),
                       cv::saturate_cast<uchar>(c[x][2] * (1 - k) + 255 * k));
    }
  }
  return out;
}

}  // namespace

Result<int> WriteHeatmaps(const std::string& dir, const std::string& stem, VideoVerdict* v) {
  int written = 0;
  for (const FaceCrop& c : v->crops) {
    if (c.heatmap_png.empty()) continue;
    if (c.frame < 0 || static_cast<size_t>(c.frame) >= v->frames.size() || c.face < 0 ||
        static_cast<size_t>(c.face) >= v->frames[c.frame].faces.size()) {
      return Status::CorruptInput("heatmap of a face the verdict does not have (frame " + std::to_string(c.frame) +
                                  ", face " + std::to_string(c.face) + ")");
    }
    cv::Mat crop = Decode(c.jpeg, cv::IMREAD_COLOR);
    cv::Mat grey = Decode(c.heatmap_png, cv::IMREAD_GRAYSCALE);
    if (crop.empty() || grey.empty()) return Status::CorruptInput("a kept crop or its heatmap does not decode");
    if (grey.size() != crop.size()) cv::resize(grey, grey, crop.size(), 0, 0, cv::INTER_LINEAR);
    const std::string base = stem + ".t" + std::to_string(c.track_id) + ".f" + std::to_string(c.frame) + ".face" +
                             std::to_string(c.face);
    const std::string overlay = (std::filesystem::path(dir) / (base + ".png")).string();
    const std::string mask = (std::filesystem::path(dir) / (base + ".mask.png")).string();
    bool ok = false;
    try {
      ok = cv::imwrite(overlay, Overlay(crop, grey)) && cv::imwrite(mask, grey);
    } catch (const cv::Exception&) {
      ok = false;
    }
    if (!ok) return Status::IoError("cannot write " + overlay);
    v->frames[c.frame].faces[c.face].heatmap = overlay;
    ++written;
  }
  return written;
}

}  // namespace deepscan::report
