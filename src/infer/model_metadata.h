// infer::ModelMetadata: the small JSON file that travels with every classifier ONNX file.
//
// `<name>.onnx` is described by `<name>.json` beside it (docs/models.md):
//   {"name": "...", "version": "...", "input_size": 224, "mean": [r,g,b], "std": [r,g,b],
//    "output": "logit" | "probability" | "softmax2", "fake_index": 1,
//    "face_score": "logit" | "mask_max",
//    "calibration": {"method": "none" | "temperature" | "platt", "a": 1.0, "b": 0.0},
//    "threshold": 0.5, "trained": true}
// Inputs are RGB, NCHW, scaled to [0, 1], then (x - mean) / std. The calibrated probability of
// "fake" is sigmoid(a * z + b), where z is the model's fake-vs-real logit: by default its first
// output; with "face_score": "mask_max", the logit of the largest cell of its blend heatmap (the
// "mask" output, infer/classifier.h), i.e. the most blended spot on the face.
#ifndef DEEPSCAN_INFER_MODEL_METADATA_H_
#define DEEPSCAN_INFER_MODEL_METADATA_H_

#include <array>
#include <functional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "deepscan/status.h"

namespace deepscan::infer {

enum class OutputKind {
  kLogit,        // [N] or [N,1]: the fake-vs-real logit
  kProbability,  // [N] or [N,1]: P(fake) in [0, 1]
  kSoftmax2,     // [N,2]: two class logits; `fake_index` names the fake one
};

// Which output a face's logit z is read from.
enum class FaceScore {
  kLogit,    // the classifier output (`output` says its kind); the default
  kMaskMax,  // the blend-mask head: z = logit(max over the heatmap); needs the "mask" output
};
// "logit" | "mask_max".
const char* FaceScoreName(FaceScore s);
// Errors: kInvalidArgument (another name).
Result<FaceScore> ParseFaceScore(const std::string& name);

struct ModelMetadata {
  std::string name = "unnamed";
  std::string version = "0";
  int input_size = 224;
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};
  OutputKind output = OutputKind::kLogit;
  int fake_index = 1;
  FaceScore face_score = FaceScore::kLogit;
  std::string calibration_method = "none";
  float calib_a = 1.0f;  // temperature T is stored as a = 1/T, b = 0
  float calib_b = 0.0f;
  float threshold = 0.5f;
  bool trained = true;
};

// Path of the metadata file for `onnx_path`: same name, ".json" extension.
std::string MetadataPathFor(const std::string& onnx_path);

// Reads and validates the metadata of `onnx_path`. Errors: kInvalidModel.
Result<ModelMetadata> LoadModelMetadata(const std::string& onnx_path);

// Parses and validates metadata JSON text; `origin` names it in error messages. Errors: kInvalidModel.
Result<ModelMetadata> ParseModelMetadata(const std::string& json_text, const std::string& origin);

// Writes `to_onnx`'s metadata as `from_onnx`'s JSON with `edit` applied (from == to: edits it in place), through a
// temporary file renamed over it, so a reader never sees half a file. Keys the edit leaves alone, known to this
// reader or not, are kept. Nothing is written when the edit returns an error.
// Errors: kInvalidModel (the source missing or not a JSON object), kIoError, or the edit's.
Status EditMetadataJson(const std::string& from_onnx, const std::string& to_onnx,
                        const std::function<Status(nlohmann::json&)>& edit);

// Serialises `m` (used by tests and the exporter).
std::string ModelMetadataToJson(const ModelMetadata& m);

// Calibrated P(fake) from the model's raw logit z.
float Calibrate(const ModelMetadata& m, float z);
// The logit log(p / (1 - p)) of a probability, p clamped to [1e-7, 1 - 1e-7] (finite, |z| < 16.2).
float ProbabilityToLogit(float p);

}  // namespace deepscan::infer

#endif  // DEEPSCAN_INFER_MODEL_METADATA_H_
