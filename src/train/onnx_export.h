// train::ExportOnnx: writes a zoo model (train/zoo.h) as the ONNX classifier that the inference
// backends load (infer/ort_classifier.h), with its metadata JSON beside it.
//
// The exporter walks the zoo's own module structure block by block (no tracing): BatchNorm is
// folded into the preceding convolution (in double precision), and the graph uses only Conv,
// Relu, Clip (ReLU6), HardSwish, HardSigmoid, Sigmoid, Mul, Add, GlobalAveragePool, Flatten and
// Gemm (opset 17). TF-"SAME" convolutions (MobileNet v1) get their asymmetric pads written out for
// the model's input size.
#ifndef DEEPSCAN_TRAIN_ONNX_EXPORT_H_
#define DEEPSCAN_TRAIN_ONNX_EXPORT_H_

#include <string>

#include "deepscan/status.h"
#include "infer/model_metadata.h"
#include "train/zoo.h"

namespace deepscan::train {

// Exports what `model` computes in eval mode (dropout and stochastic depth off, BatchNorm with its
// running statistics; the model's own train/eval flag is left untouched) to `onnx_path`:
//   input  "input" float [N, 3, S, S], S = model->spec().input_size, N dynamic ("N");
//   output "logit" float [N, 1] (always the first output);
//   with the mask head, a second output "mask" float [N, 1, M, M], M = ceil(S / mask_stride):
//   the sigmoid of the head's blend-mask logits, a heatmap of where the model sees blending.
// The model is checked by onnx::checker before it is written. Then writes the metadata to
// infer::MetadataPathFor(onnx_path) with WriteModelMetadata: `meta` as given (name, version,
// mean/std the model was trained with, calibration, threshold...) except input_size = S and
// output = "logit", which are properties of the model.
// Errors: kInvalidModel (checker), kIoError.
Status ExportOnnx(const Model& model, const infer::ModelMetadata& meta, const std::string& onnx_path);

}  // namespace deepscan::train

#endif  // DEEPSCAN_TRAIN_ONNX_EXPORT_H_
