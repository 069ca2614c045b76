#include "infer/classifier.h"

#include <algorithm>

#include <opencv2/core.hpp>

namespace deepscan::infer {
namespace {

class FlipTtaClassifier final : public Classifier {
 public:
  explicit FlipTtaClassifier(std::unique_ptr<Classifier> inner) : inner_(std::move(inner)) {}
  const ModelMetadata& metadata() const override { return inner_->metadata(); }
  std::string backend() const override { return inner_->backend(); }
  std::string device() const override { return inner_->device(); }
  bool has_heatmaps() const override { return inner_->has_heatmaps(); }
  Status Classify(const std::vector<cv::Mat>& crops, std::vector<float>* scores) override {
    return Run(crops, scores, nullptr);
  }
  Status ClassifyWithHeatmaps(const std::vector<cv::Mat>& crops, std::vector<float>* scores,
                              std::vector<cv::Mat>* heatmaps) override {
    return Run(crops, scores, heatmaps);
  }

 private:
  Status Run(const std::vector<cv::Mat>& crops, std::vector<float>* scores, std::vector<cv::Mat>* heatmaps) {
    both_.resize(2 * crops.size());
    for (size_t i = 0; i < crops.size(); ++i) {
      both_[2 * i] = crops[i];
      if (crops[i].empty()) return Status::InvalidArgument("empty crop");
      cv::flip(crops[i], both_[2 * i + 1], 1);
    }
    if (heatmaps != nullptr) {
      RETURN_IF_ERROR(inner_->ClassifyWithHeatmaps(both_, &pair_scores_, &pair_maps_));
    } else {
      RETURN_IF_ERROR(inner_->Classify(both_, &pair_scores_));
    }
    scores->resize(crops.size());
    for (size_t i = 0; i < crops.size(); ++i) (*scores)[i] = 0.5f * (pair_scores_[2 * i] + pair_scores_[2 * i + 1]);
    if (heatmaps != nullptr) {
      heatmaps->resize(crops.size());
      for (size_t i = 0; i < crops.size(); ++i) {
        const cv::Mat& a = pair_maps_[2 * i];
        const cv::Mat& b = pair_maps_[2 * i + 1];
        if (a.empty() || b.empty()) {
          (*heatmaps)[i] = cv::Mat();
          continue;
        }
        cv::Mat back;
        cv::flip(b, back, 1);  // the mirror's map, in the crop's orientation
        (*heatmaps)[i] = 0.5 * (a + back);
      }
    }
    return Status::Ok();
  }

  std::unique_ptr<Classifier> inner_;
  std::vector<cv::Mat> both_;  // reused between calls (a classifier serves one call at a time)
  std::vector<float> pair_scores_;
  std::vector<cv::Mat> pair_maps_;
};

}  // namespace

Status Classifier::ClassifyWithHeatmaps(const std::vector<cv::Mat>& crops, std::vector<float>* scores,
                                        std::vector<cv::Mat>* heatmaps) {
  RETURN_IF_ERROR(Classify(crops, scores));
  heatmaps->assign(crops.size(), cv::Mat());
  return Status::Ok();
}

std::unique_ptr<Classifier> WithFlipTta(std::unique_ptr<Classifier> inner) {
  return std::make_unique<FlipTtaClassifier>(std::move(inner));
}

float MaskMaxLogit(const float* heatmap, size_t cells) {
  float p = 0;
  for (size_t i = 0; i < cells; ++i) p = std::max(p, heatmap[i]);
  return ProbabilityToLogit(p);
}

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
