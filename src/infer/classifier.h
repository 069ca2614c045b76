// infer::Classifier: the inference-backend interface for face-crop classifiers.
//
// In:  face crops, BGR uint8, input_size x input_size (face::CropFace makes them).
// Out: one calibrated P(fake) per crop and, from a model with a blend-mask output, one heatmap
//      per crop of where the model sees blending (ClassifyWithHeatmaps).
// Each backend implements this class; infer/registry.h lists them and builds one by name.
// A Classifier owns its buffers (allocated once for max_batch crops): one per thread.
#ifndef DEEPSCAN_INFER_CLASSIFIER_H_
#define DEEPSCAN_INFER_CLASSIFIER_H_

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "deepscan/status.h"
#include "infer/model_metadata.h"

namespace deepscan::infer {

class Classifier {
 public:
  virtual ~Classifier() = default;
  virtual const ModelMetadata& metadata() const = 0;
  // The backend that runs: a name CreateClassifier accepts that would run it the same way.
  virtual std::string backend() const = 0;
  // Where inference runs: "cpu", "cuda" or "tensorrt" (after any fall-back).
  virtual std::string device() const { return "cpu"; }
  // Scores `crops` (any count; batched internally) into `scores` (resized to crops.size()).
  // Errors: kInvalidArgument (a crop of the wrong size or type), kInvalidModel (inference failed).
  virtual Status Classify(const std::vector<cv::Mat>& crops, std::vector<float>* scores) = 0;

  // Whether ClassifyWithHeatmaps returns heatmaps: the model has the blend-mask output "mask"
  // (train/onnx_export.h: [N, 1, M, M], the sigmoid of the mask head's logits).
  virtual bool has_heatmaps() const { return false; }
  // Classify, plus one heatmap per crop into `heatmaps` (resized to crops.size()): CV_32F, M x M,
  // values in [0, 1] (1: blended), covering the same square as the crop. Without has_heatmaps()
  // every heatmap is empty. Same errors as Classify. The default runs Classify.
  virtual Status ClassifyWithHeatmaps(const std::vector<cv::Mat>& crops, std::vector<float>* scores,
                                      std::vector<cv::Mat>* heatmaps);
};

// The name of the optional heatmap output of a classifier model.
inline constexpr const char* kHeatmapOutput = "mask";

// The face logit of the "mask_max" face score (infer/model_metadata.h): log(p / (1 - p)) of the
// largest of the `cells` heatmap values p (sigmoids in [0, 1]): ProbabilityToLogit(max p).
// Every backend reads a heatmap's score through this one function.
float MaskMaxLogit(const float* heatmap, size_t cells);

// Test-time augmentation: a classifier that scores each crop as the mean of `inner`'s scores of
// the crop and of its mirror image (horizontal flip; a face is left-right symmetric, a blend
// boundary need not be). Twice the inference per face, in the same calls (batches of crops and
// their mirrors). metadata(), backend(), device() and has_heatmaps() are inner's; a heatmap is the
// mean of the crop's and of its mirror's mirrored back.
std::unique_ptr<Classifier> WithFlipTta(std::unique_ptr<Classifier> inner);

// Writes `crops[begin, end)` into `dst` as normalised RGB NCHW floats per `m`. Shared by backends.
Status PackNchw(const std::vector<cv::Mat>& crops, size_t begin, size_t end, const ModelMetadata& m, float* dst);

}  // namespace deepscan::infer

#endif  // DEEPSCAN_INFER_CLASSIFIER_H_
