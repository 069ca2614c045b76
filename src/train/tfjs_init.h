// train::InitFromTfjs: a pretrained start for the zoo's MobileNet v1 ("mobilenetv1",
// "mobilenetv1_s16"): the convolution weights of a MobileNet-v1-shaped TF.js graph model
// (train/tfjs_model.h), e.g. the face-description MobileNet "faceres" of @vladmandic/human, copied
// onto the zoo model layer for layer.
//
//   ASSIGN_OR_RETURN(TfjsModel g, LoadTfjsModel("third_party/pretrained/faceres/faceres.json"));
//   ASSIGN_OR_RETURN(PretrainedInput in, KnownPretrainedInput(g));   // faceres: caffe-style input
//   ASSIGN_OR_RETURN(TfjsInitReport r, InitFromTfjs(model, g, in));
//   RETURN_IF_ERROR(RecalibrateBatchNorm(model, {some training images}));  // before training
//   meta.mean = in.mean; meta.std = in.std;                                  // and train with them
//
// How the graph is read: from its one Placeholder, along the chain of single consumers, a layer
// is a Conv2D or DepthwiseConv2dNative (NHWC, padding SAME, dilation 1; or their fused forms with
// BiasAdd), then per-channel Mul / Add constants (BatchNorm folded by the converter), then ReLU6
// (Relu6, or Relu -> Minimum 6 [-> Maximum 0], as Keras' ReLU(6) converts). The zoo model's layers
// take the graph's in order: stem = layer 0, blocks[i].depthwise = layer 2i+1, blocks[i].project =
// layer 2i+2. Each must agree in kind, kernel shape, channels and stride, else kInvalidModel
// naming the layer. A graph with more layers than the arch (faceres has 13 blocks, the s16 arch
// uses 11) leaves the rest unused (reported); one with fewer fails.
//
// Placement (exact in eval mode): conv weight = the graph's filter (HWIO -> OIHW; depthwise
// H,W,C,1 -> C,1,H,W; the stem's input channels reversed when the graph reads BGR, so the zoo
// model keeps reading RGB); BatchNorm: running mean 0, variance 1, weight = scale * sqrt(1 + eps),
// bias = the folded bias. The classifier head (fc) and the mask head keep their fresh weights.
// The graph's own heads (faceres: age, gender) are not used.
#ifndef DEEPSCAN_TRAIN_TFJS_INIT_H_
#define DEEPSCAN_TRAIN_TFJS_INIT_H_

#include <array>
#include <string>
#include <vector>

#include "deepscan/status.h"
#include "train/tfjs_model.h"
#include "train/zoo.h"

namespace deepscan::train {

// What a pretrained graph expects of its input, in deepscan's terms (infer::ModelMetadata: RGB
// scaled to [0, 1], then (x - mean) / std).
struct PretrainedInput {
  std::string name;             // "faceres"
  bool bgr = false;             // the graph's first convolution reads B, G, R
  std::array<float, 3> mean{};  // RGB order, [0, 1] units
  std::array<float, 3> std{};   // RGB order
  int native_size = 0;          // the input side it was trained at
  std::string description;      // one line for logs and metadata
};

// The input normalisation of the graphs deepscan knows, recognised by their metadata and input:
// faceres (generatedBy .../HSE_FaceRec_tf, a Placeholder "input_1") was trained (HSE_FaceRec_tf,
// age_gender_train.py: keras imagenet_utils.preprocess_input, "caffe" mode) on BGR pixels in
// 0..255 minus the ImageNet BGR means (103.939, 116.779, 123.68), no scaling: here bgr = true,
// mean = (123.68, 116.779, 103.939) / 255, std = 1 / 255.
// Errors: kNotSupported (a graph whose preprocessing is unknown; its generatedBy is named).
Result<PretrainedInput> KnownPretrainedInput(const TfjsModel& graph);

struct TfjsInitReport {
  int layers_loaded = 0;      // convolution layers copied onto the model
  int layers_unused = 0;      // further convolution layers of the graph, beyond the arch
  std::string last_node;      // the graph node whose output the model's last block reproduces
  std::string features_node;  // the graph's pooling node the model's Features() reproduce
                              // (e.g. "global_pooling/Mean"); empty when layers were left unused
};

// Copies `graph`'s weights onto `model` (arch "mobilenetv1" or "mobilenetv1_s16", width 1) as
// described above. On error the model may be partly written. Errors: kInvalidArgument (another
// arch), kInvalidModel (the graph does not have this architecture's shape; the message names the
// graph node and what differs).
Result<TfjsInitReport> InitFromTfjs(Model& model, const TfjsModel& graph, const PretrainedInput& input);

// Re-expresses every BatchNorm of `model` around the statistics of its input over `images`
// (each [N, 3, S, S], normalised), without changing what the model computes in eval mode: for a
// BatchNorm computing a * z + b, running mean := mean(z), running var := var(z), weight := a *
// sqrt(var + eps), bias := b + a * mean. In train mode BatchNorm normalises with the batch's own
// statistics; after this they match the running ones, so the first training steps compute what
// the pretrained network computes instead of a re-normalised one. The model's train/eval flag is
// kept. Errors: kInvalidArgument (no images).
Status RecalibrateBatchNorm(Model& model, const std::vector<torch::Tensor>& images);

}  // namespace deepscan::train

#endif  // DEEPSCAN_TRAIN_TFJS_INIT_H_
