#include "train/torch_classifier.h"

#include <algorithm>
#include <vector>

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

namespace deepscan::train {
namespace {

class TorchClassifier : public infer::Classifier {
 public:
  TorchClassifier(Model model, infer::ModelMetadata meta, int max_batch)
      : model_(std::move(model)), meta_(std::move(meta)), max_batch_(std::max(1, max_batch)) {
    input_.resize(static_cast<size_t>(max_batch_) * 3 * meta_.input_size * meta_.input_size);
  }
  const infer::ModelMetadata& metadata() const override { return meta_; }
  std::string backend() const override { return "libtorch"; }

  Status Classify(const std::vector<cv::Mat>& crops, std::vector<float>* scores) override {
    scores->resize(crops.size());
    const int64_t s = meta_.input_size;
    // Eval mode for the duration of the call; the caller's flag comes back on every exit path.
    struct ModeRestorer {
      Model& m;
      bool was_training;
      ~ModeRestorer() { m->train(was_training); }
    } restorer{model_, model_->is_training()};
    model_->eval();
    try {
      c10::InferenceMode guard;
      for (size_t begin = 0; begin < crops.size(); begin += max_batch_) {
        const size_t end = std::min(crops.size(), begin + static_cast<size_t>(max_batch_));
        RETURN_IF_ERROR(infer::PackNchw(crops, begin, end, meta_, input_.data()));
        const int64_t n = static_cast<int64_t>(end - begin);
        torch::Tensor in = torch::from_blob(input_.data(), {n, 3, s, s}, torch::kFloat);
        ModelOutput out = model_->forward(in);
        if (meta_.face_score == infer::FaceScore::kMaskMax) {
          ASSIGN_OR_RETURN(std::vector<float> z, MaskMaxLogits(out.mask_logit));
          if (static_cast<int64_t>(z.size()) != n) {
            return Status::InvalidModel("mask head output for " + std::to_string(n) + " crops has the wrong shape");
          }
          for (int64_t i = 0; i < n; ++i) (*scores)[begin + i] = infer::Calibrate(meta_, z[i]);
          continue;
        }
        torch::Tensor logit = out.logit.contiguous();
        if (logit.numel() != n) {
          return Status::InvalidModel("model returned " + std::to_string(logit.numel()) + " values for " +
                                      std::to_string(n) + " crops");
        }
        const float* z = logit.data_ptr<float>();
        for (int64_t i = 0; i < n; ++i) (*scores)[begin + i] = infer::Calibrate(meta_, z[i]);
      }
    } catch (const std::exception& e) {
      return Status::InvalidModel(std::string("LibTorch inference failed: ") + e.what());
    }
    return Status::Ok();
  }

 private:
  Model model_;
  infer::ModelMetadata meta_;
  int max_batch_;
  std::vector<float> input_;
};

}  // namespace

Result<std::unique_ptr<infer::Classifier>> CreateTorchClassifier(Model model, const infer::ModelMetadata& meta,
                                                                 int max_batch) {
  if (!model) return Status::InvalidArgument("no model");
  if (meta.input_size != model->spec().input_size) {
    return Status::InvalidArgument("metadata input_size " + std::to_string(meta.input_size) +
                                   " differs from the model's " + std::to_string(model->spec().input_size));
  }
  if (meta.output != infer::OutputKind::kLogit) {
    return Status::InvalidArgument("zoo models output a logit; the metadata says otherwise");
  }
  if (meta.face_score == infer::FaceScore::kMaskMax && !model->spec().mask_head) {
    return Status::InvalidArgument("face_score mask_max needs a model with the mask head");
  }
  return std::unique_ptr<infer::Classifier>(new TorchClassifier(std::move(model), meta, max_batch));
}

Result<std::unique_ptr<infer::Classifier>> CreateTorchClassifier(const infer::ClassifierConfig& config) {
  ASSIGN_OR_RETURN(infer::ModelMetadata meta, infer::LoadModelMetadata(config.model_path));
  RETURN_IF_ERROR(infer::ApplyConfigOverrides(config, &meta));
  if (meta.output != infer::OutputKind::kLogit) {
    return Status::InvalidModel(infer::MetadataPathFor(config.model_path) +
                                ": zoo models output a logit, the metadata says otherwise");
  }
  ASSIGN_OR_RETURN(ModelSpec spec, ReadModelSpec(infer::MetadataPathFor(config.model_path)));
  if (spec.input_size != meta.input_size) {
    return Status::InvalidModel(infer::MetadataPathFor(config.model_path) + ": input_size " +
                                std::to_string(meta.input_size) + " differs from its architecture's " +
                                std::to_string(spec.input_size));
  }
  if (meta.face_score == infer::FaceScore::kMaskMax && !spec.mask_head) {
    return Status::InvalidModel(config.model_path + ": face_score mask_max needs the mask head, which it lacks");
  }
  // Inference needs the mask head only to score by it.
  spec.mask_head = meta.face_score == infer::FaceScore::kMaskMax;
  ASSIGN_OR_RETURN(Model model, LoadCheckpoint(config.model_path, &spec));
  model->eval();
  at::set_num_threads(std::max(1, config.threads));
  return CreateTorchClassifier(std::move(model), meta, config.max_batch);
}

}  // namespace deepscan::train
