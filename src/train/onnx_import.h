// train::ImportOnnx: the inverse of train::ExportOnnx: rebuilds a trainable zoo model from the
// ONNX classifier that ExportOnnx wrote (and its metadata JSON with the "architecture" entry), so
// that a shipped model whose checkpoint is gone (models/default.onnx) can be fine-tuned, pruned,
// factorised or distilled from.
//
// The export folded each BatchNorm into its convolution; the import puts the folded weights in the
// convolution and makes the BatchNorm an identity around them (weight 1, bias = the folded bias,
// running mean 0, running variance 1 - eps), so that the imported model computes in eval mode what
// the ONNX model computes. Its training-mode statistics are not those of the original run: call
// RecalibrateBatchNorm (train/tfjs_init.h) on a few training batches before training (the trainer
// does, TrainConfig::start).
//
// Values are matched by name (the exporter names each initializer after the zoo module that owns
// it: "stem.weight", "blocks.3.se.fc1.bias", "mask_conv.reduce.weight"...), shapes checked; an
// exported model without the "mask" output imports without the mask head.
#ifndef DEEPSCAN_TRAIN_ONNX_IMPORT_H_
#define DEEPSCAN_TRAIN_ONNX_IMPORT_H_

#include <string>

#include "deepscan/status.h"
#include "infer/model_metadata.h"
#include "train/zoo.h"

namespace deepscan::train {

struct ImportedModel {
  Model model{nullptr};
  infer::ModelMetadata meta;  // the model's metadata (normalisation, calibration, threshold, name)
};

// Errors: kNotFound (no file), kInvalidModel (not a zoo export: no architecture entry, a missing
// or misshapen weight, an unreadable ONNX file).
Result<ImportedModel> ImportOnnx(const std::string& onnx_path);

// A model to start from: a checkpoint (SaveCheckpoint's .pt) or a zoo ONNX export (ImportOnnx),
// told apart by the ".onnx" extension. `meta` gets the ONNX model's metadata (left as is for a
// checkpoint). Errors: as LoadCheckpoint / ImportOnnx.
Result<Model> LoadAnyModel(const std::string& path, infer::ModelMetadata* meta = nullptr);

}  // namespace deepscan::train

#endif  // DEEPSCAN_TRAIN_ONNX_IMPORT_H_
