#include "infer/ort_classifier.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "infer/ort_model.h"

namespace deepscan::infer {
namespace {

std::string ShapeString(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

class OrtClassifier : public Classifier {
 public:
  // `heatmap_output`: the index of the model's "mask" output, or -1.
  OrtClassifier(std::unique_ptr<OrtModel> model, ModelMetadata meta, int max_batch, int heatmap_output)
      : model_(std::move(model)), meta_(std::move(meta)), max_batch_(max_batch), heatmap_output_(heatmap_output) {
    input_.resize(static_cast<size_t>(max_batch_) * 3 * meta_.input_size * meta_.input_size);
  }
  const ModelMetadata& metadata() const override { return meta_; }
  std::string backend() const override { return "onnxruntime-" + model_->provider(); }
  std::string device() const override { return model_->provider(); }

  bool has_heatmaps() const override { return heatmap_output_ >= 0; }
  Status Classify(const std::vector<cv::Mat>& crops, std::vector<float>* scores) override {
    return Run(crops, scores, nullptr);
  }
  Status ClassifyWithHeatmaps(const std::vector<cv::Mat>& crops, std::vector<float>* scores,
                              std::vector<cv::Mat>* heatmaps) override {
    heatmaps->assign(crops.size(), cv::Mat());
    return Run(crops, scores, heatmap_output_ >= 0 ? heatmaps : nullptr);
  }

 private:
  Status Run(const std::vector<cv::Mat>& crops, std::vector<float>* scores, std::vector<cv::Mat>* heatmaps) {
    scores->resize(crops.size());
    const int64_t side = meta_.input_size;
    for (size_t begin = 0; begin < crops.size(); begin += max_batch_) {
      size_t end = std::min(crops.size(), begin + static_cast<size_t>(max_batch_));
      RETURN_IF_ERROR(PackNchw(crops, begin, end, meta_, input_.data()));
      const int64_t n = static_cast<int64_t>(end - begin);
      RETURN_IF_ERROR(model_->Run(input_.data(), {n, 3, side, side}, &outputs_, &shapes_));
      const std::vector<float>& out = outputs_[0];
      const size_t per = meta_.output == OutputKind::kSoftmax2 ? 2 : 1;
      if (out.size() != static_cast<size_t>(n) * per) {
        return Status::InvalidModel("model returned " + std::to_string(out.size()) + " values for " +
                                    std::to_string(n) + " crops");
      }
      const bool mask_max = meta_.face_score == FaceScore::kMaskMax;
      if (mask_max) RETURN_IF_ERROR(CheckHeatmapShape(n));
      const size_t cells =
          mask_max ? static_cast<size_t>(shapes_[heatmap_output_][2] * shapes_[heatmap_output_][3]) : 0;
      for (int64_t i = 0; i < n; ++i) {
        float z = 0;
        if (mask_max) {
          (*scores)[begin + i] = Calibrate(meta_, MaskMaxLogit(outputs_[heatmap_output_].data() + i * cells, cells));
          continue;
        }
        switch (meta_.output) {
          case OutputKind::kLogit: z = out[i]; break;
          case OutputKind::kProbability: z = ProbabilityToLogit(out[i]); break;
          case OutputKind::kSoftmax2: z = out[2 * i + meta_.fake_index] - out[2 * i + 1 - meta_.fake_index]; break;
        }
        (*scores)[begin + i] = Calibrate(meta_, z);
      }
      if (heatmaps != nullptr) RETURN_IF_ERROR(CopyHeatmaps(n, begin, heatmaps));
    }
    return Status::Ok();
  }

  // Whether the "mask" output of the last run is [n, 1, M, M].
  Status CheckHeatmapShape(int64_t n) const {
    const std::vector<int64_t>& s = shapes_[heatmap_output_];
    if (s.size() != 4 || s[0] != n || s[1] != 1 || s[2] <= 0 || s[3] <= 0 ||
        outputs_[heatmap_output_].size() != static_cast<size_t>(n * s[2] * s[3])) {
      return Status::InvalidModel("heatmap output has shape " + ShapeString(s) + " for " + std::to_string(n) +
                                  " crops");
    }
    return Status::Ok();
  }

  // Copies the "mask" output of the last run, [n, 1, M, M], into heatmaps[begin, begin + n).
  Status CopyHeatmaps(int64_t n, size_t begin, std::vector<cv::Mat>* heatmaps) const {
    RETURN_IF_ERROR(CheckHeatmapShape(n));
    const std::vector<int64_t>& s = shapes_[heatmap_output_];
    const std::vector<float>& maps = outputs_[heatmap_output_];
    const int rows = static_cast<int>(s[2]), cols = static_cast<int>(s[3]);
    for (int64_t i = 0; i < n; ++i) {
      cv::Mat m(rows, cols, CV_32F);
      std::copy_n(maps.data() + i * rows * cols, rows * cols, m.ptr<float>());
      (*heatmaps)[begin + i] = m;
    }
    return Status::Ok();
  }

  std::unique_ptr<OrtModel> model_;
  ModelMetadata meta_;
  int max_batch_;
  int heatmap_output_;
  std::vector<float> input_;
  std::vector<std::vector<float>> outputs_;
  std::vector<std::vector<int64_t>> shapes_;
};

}  // namespace

Result<std::unique_ptr<Classifier>> CreateOrtClassifier(const ClassifierConfig& config) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(config.model_path, ec)) {
    return Status::InvalidModel("model file not found: " + config.model_path);
  }
  ASSIGN_OR_RETURN(ModelMetadata meta, LoadModelMetadata(config.model_path));
  RETURN_IF_ERROR(ApplyConfigOverrides(config, &meta));
  OrtModelOptions ort;
  ort.threads = config.threads;
  ort.provider = config.device;
  ort.max_batch = std::max(1, config.max_batch);
  ASSIGN_OR_RETURN(std::unique_ptr<OrtModel> model, OrtModel::Load(config.model_path, ort));
  const auto& in = model->inputs()[0].shape;
  const int64_t side = meta.input_size;
  auto dim_ok = [](int64_t d, int64_t want) { return d == want || d < 0; };
  if (in.size() != 4 || !dim_ok(in[1], 3) || !dim_ok(in[2], side) || !dim_ok(in[3], side)) {
    return Status::InvalidModel(config.model_path + ": input shape " + ShapeString(in) + " does not match [N,3," +
                                std::to_string(side) + "," + std::to_string(side) + "] from its metadata");
  }
  int max_batch = std::max(1, config.max_batch);
  if (in[0] > 0) max_batch = static_cast<int>(in[0]);  // a fixed batch dimension wins
  if (in[0] > 1) {
    return Status::InvalidModel(config.model_path + ": fixed batch size " + std::to_string(in[0]) +
                                " is not supported (use 1 or dynamic)");
  }
  if (model->outputs().empty()) return Status::InvalidModel(config.model_path + ": no output");
  const auto& out = model->outputs()[0].shape;
  const int64_t per = meta.output == OutputKind::kSoftmax2 ? 2 : 1;
  bool out_ok = (out.size() == 1 && per == 1) || (out.size() == 2 && (out[1] == per || out[1] < 0));
  if (!out_ok) {
    return Status::InvalidModel(config.model_path + ": output shape " + ShapeString(out) +
                                " does not fit output kind in its metadata");
  }
  int heatmap_output = -1;  // the optional blend heatmap: "mask", [N, 1, M, M]
  for (size_t i = 1; i < model->outputs().size(); ++i) {
    const TensorSpec& o = model->outputs()[i];
    if (o.name == kHeatmapOutput && o.shape.size() == 4 && (o.shape[1] == 1 || o.shape[1] < 0))
      heatmap_output = static_cast<int>(i);
  }
  if (meta.face_score == FaceScore::kMaskMax && heatmap_output < 0) {
    return Status::InvalidModel(config.model_path +
                                ": face_score mask_max needs the blend-heatmap output \"mask\", which it lacks");
  }
  return std::unique_ptr<Classifier>(
      new OrtClassifier(std::move(model), std::move(meta), max_batch, heatmap_output));
}

}  // namespace deepscan::infer
