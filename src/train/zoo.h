// train::zoo: the classifier backbones of deepscan, defined once in torch::nn for training and
// walked block by block by the ONNX exporter (train/onnx_export.h).
//
// Architectures (ModelSpec::arch), each mirroring the torchvision reference layer for layer so
// that parameter counts match the published ones at width 1.0 (with a 1-logit head):
//   "mobilenetv3_small"  Howard et al. 2019, Table 2: inverted residuals, SE gated by a hard
//                        sigmoid, ReLU / hard-swish; head 576 -> 1024 -> 1.        1,518,881 params
//   "mobilenetv3_large"  Table 1; head 960 -> 1280 -> 1.                            4,203,313 params
//   "efficientnet_b0"    Tan & Le 2019 (full B0, not Lite): MBConv with SE (sigmoid gate) and SiLU;
//                        head 1280 -> 1.                                            4,008,829 params
//   "mobilenetv1"        Howard et al. 2017 as Keras' MobileNet builds it (the layout of the
//                        pretrained face MobileNet "faceres", train/tfjs_init.h): conv 3x3/2 then
//                        13 depthwise-separable blocks (dw 3x3 -> BN -> ReLU6 -> pw 1x1 -> BN ->
//                        ReLU6), TF "SAME" padding (asymmetric on stride 2: the extra row and
//                        column at the bottom/right); no head conv: pool 1024 -> 1.  3,208,001 params
//   "mobilenetv1_s16"    the same, stopped after the 11th block (512 channels, stride 16), so that
//                        it fits the shipped-model budget (<= 10 MB); pool 512 -> 1. 1,613,633 params
//   "mobilenetv3_nas"    the architecture-search space (NasSpec below, docs/search.md): MobileNetV3-
//                        Small's five stages (stem 16, stage outputs 16/24/40/48/96 at strides
//                        2/2/2/1/2, head 576 -> 1024 -> 1) with each stage's depth, kernel, expansion,
//                        SE and activation chosen; NasSpec{}'s values are Small's but for the
//                        expansion ratios.                                           1,530,385 params
// The width multiplier scales every channel count (rounded to multiples of 8 as the references
// do); the input size only fixes the declared input of the exported model and the mask size
// (the networks are fully convolutional up to a global average pool).
//
// Outputs: one fake-vs-real logit per image and, with `mask_head`, a 1-channel blend-mask logit
// map from a small conv head on the last stride-`mask_stride` feature map (Face X-ray / LAA-Net
// style dense supervision). Only the logit is exported for inference.
//
// Input: RGB NCHW float, normalised as the model's metadata says (infer::PackNchw).
//
// Pretrained start: the MobileNet v1 archs can start from the face-description MobileNet that
// @vladmandic/human ships as a TF.js graph model (`deepscan train --init faceres.json`,
// train/tfjs_init.h, docs/training.md "Pretrained initialisation"); the others start random.
#ifndef DEEPSCAN_TRAIN_ZOO_H_
#define DEEPSCAN_TRAIN_ZOO_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include "deepscan/status.h"
#include "infer/model_metadata.h"

namespace deepscan::train {

// The searched choices of arch "mobilenetv3_nas", one entry per stage (kNasStages of them). Each
// stage's blocks are inverted residuals; its first block has the stage's stride, the others
// stride 1 with a residual. Defaults: MobileNetV3-Small's stage layout (Howard et al. 2019, Table 2)
// with one expansion ratio per stage instead of Small's per-block ones.
inline constexpr int kNasStages = 5;
struct NasSpec {
  std::vector<int> depth = {1, 2, 3, 2, 3};                // blocks per stage, [1, 6]
  std::vector<int> kernel = {3, 3, 5, 5, 5};               // depthwise kernel: 3, 5 or 7
  std::vector<float> expand = {1, 4, 6, 3, 6};             // expanded channels / a block's input channels, [1, 8]
  std::vector<bool> se = {true, false, true, true, true};  // squeeze-and-excitation (hard-sigmoid gate)
  std::vector<std::string> act = {"relu", "relu", "hswish", "hswish", "hswish"};  // "relu" | "hswish"
};

struct ModelSpec {
  std::string arch = "mobilenetv3_small";  // see KnownArchs()
  float width = 1.0f;                      // channel multiplier, (0.1, 4]
  int input_size = 224;                    // square input side in pixels, [32, 1024]
  bool mask_head = false;                  // add the auxiliary blend-mask head
  float dropout = 0.2f;                    // before the final linear layer (training only)
  // Stochastic depth on residual blocks, rising linearly with depth to this value (training
  // only). The EfficientNet reference trains with 0.2; MobileNetV3 with 0.
  float drop_path = 0.0f;
  int mask_stride = 16;  // feature stride the mask head reads: 8 or 16
  // Per-layer changes left by compression; both empty for the zoo's own models.
  // Channel counts (structured pruning, compress/prune.h), by key: "stem"; "blocks.<i>.expanded"
  // (blocks with an expansion conv), "blocks.<i>.out" (blocks without a residual: a residual
  // block's output keeps its input's channels), "blocks.<i>.squeeze" (SE); "head" (head conv),
  // "hidden" (pre_logits), "mask" (mask head).
  std::map<std::string, int64_t> channels = {};
  // Factorised layers (low rank, compress/lowrank.h), by module path: a ConvBnAct ("stem",
  // "blocks.<i>.expand" / ".project", "head_conv", "mask_conv") -> {r} for a 1x1 conv (in -> r
  // -> out, a truncated SVD) or {r_in, r_out} for a k x k conv (Tucker-2: 1x1 in -> r_in, k x k
  // r_in -> r_out, 1x1 r_out -> out); "pre_logits" -> {r} (Linear in -> r -> hidden).
  std::map<std::string, std::vector<int64_t>> ranks = {};
  NasSpec nas = {};  // read by arch "mobilenetv3_nas" only (a JSON "nas" entry of another arch is refused)
};

// "mobilenetv3_small", "mobilenetv3_large", "efficientnet_b0", "mobilenetv1", "mobilenetv1_s16",
// "mobilenetv3_nas".
std::vector<std::string> KnownArchs();

// Checks `spec` (for "mobilenetv3_nas" also its NasSpec: kNasStages entries per field, each in
// range). Errors: kInvalidArgument naming the bad field, e.g. "nas.depth[2] = 9 is outside [1, 6]".
Status ValidateModelSpec(const ModelSpec& spec);

enum class Act { kNone, kRelu, kHardSwish, kSilu, kRelu6 };

// TF's "SAME" padding of one spatial axis: {before, after} for an input of `size`, so that the
// output has ceil(size / stride) entries; the odd pixel goes after (ONNX's SAME_UPPER).
std::pair<int64_t, int64_t> TfSamePadding(int64_t size, int64_t kernel, int64_t stride);

// Per-channel sums of a BatchNorm's input (float64), gathered while ConvBnActImpl::record points
// here (RecalibrateBatchNorm, train/tfjs_init.h).
struct BnInputStats {
  torch::Tensor sum, sum_sq;  // [C]; undefined before the first batch
  int64_t count = 0;          // values summed per channel
};

// Quantisation-aware training (compress/qat.h) points ConvBnActImpl::fake_quant here: forward then
// fake-quantises the conv weights as the INT8 export stores them (int8 symmetric, one scale per
// output channel: with the BatchNorm folded in, the same grid scaled per channel) and the block's
// output as the uint8 QDQ pair after it (range: a running min / max in training, frozen in eval),
// gradients passing straight through (STE).
struct FakeQuant {
  bool weights = true, activations = true;
  double momentum = 0.01;  // of the running range
  torch::Tensor lo, hi;    // running output range (0-d float); undefined before the first training batch
};

// Conv2d (no bias) -> BatchNorm2d -> activation. Padding: symmetric (k-1)/2, or with `tf_same`
// TF's "SAME" (TfSamePadding, computed from each input's size; conv->options then pads 0).
// Factorised (`rank`, ModelSpec::ranks; groups 1 only): reduce (1x1, in -> rank[0]) -> conv
// (k x k, rank[0] -> rank[1] or out) -> [restore (1x1, rank[1] -> out)] -> BatchNorm -> act.
class ConvBnActImpl : public torch::nn::Module {
 public:
  ConvBnActImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups, Act act, double bn_eps,
                double bn_momentum, bool tf_same = false, const std::vector<int64_t>& rank = {});
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Conv2d reduce{nullptr};   // factorised only
  torch::nn::Conv2d conv{nullptr};     // the spatial conv (the core when factorised)
  torch::nn::Conv2d restore{nullptr};  // Tucker-2 only
  torch::nn::BatchNorm2d bn{nullptr};
  Act act;
  bool tf_same = false;
  BnInputStats* record = nullptr;  // when set, forward adds its BatchNorm input's statistics here
  FakeQuant* fake_quant = nullptr;  // when set, forward fake-quantises (above)
};
TORCH_MODULE(ConvBnAct);

// Squeeze-and-excitation: x * gate(fc2(inner(fc1(mean_hw(x))))), fc1/fc2 1x1 convs with bias.
// gate = hard sigmoid (relu6(v + 3) / 6) when `hard_gate`, else sigmoid.
class SqueezeExciteImpl : public torch::nn::Module {
 public:
  SqueezeExciteImpl(int64_t channels, int64_t squeeze, Act inner, bool hard_gate);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Conv2d fc1{nullptr};
  torch::nn::Conv2d fc2{nullptr};
  Act inner;
  bool hard_gate;
};
TORCH_MODULE(SqueezeExcite);

// Inverted residual (MobileNetV3 bneck / EfficientNet MBConv):
// [expand 1x1] -> depthwise kxk/stride -> [SE] -> project 1x1 (linear) [+ input].
// With expanded == in, no SE, project_act ReLU6 and no residual: MobileNet v1's depthwise-
// separable block (depthwise -> pointwise).
struct BlockConfig {
  int64_t in = 0, expanded = 0, out = 0, kernel = 3, stride = 1;
  // The block's shape, fixed by the architecture before any channel is pruned: an expansion conv
  // when the table's expanded != in; a residual when allowed, stride 1 and the table's in == out.
  bool has_expand = false, residual = false;
  std::vector<int64_t> expand_rank, project_rank;  // ModelSpec::ranks of the two 1x1 convs
  int64_t squeeze = 0;  // SE bottleneck channels; 0 = no SE
  Act act = Act::kRelu;
  Act se_inner = Act::kRelu;
  Act project_act = Act::kNone;  // linear bottleneck; ReLU6 in MobileNet v1's pointwise conv
  bool allow_residual = true;    // false: never add the input (MobileNet v1)
  bool tf_same = false;          // TF "SAME" padding on the strided depthwise conv (MobileNet v1)
  bool hard_gate = true;
  double drop_path = 0.0;
  double bn_eps = 1e-5, bn_momentum = 0.1;
};

class InvertedResidualImpl : public torch::nn::Module {
 public:
  explicit InvertedResidualImpl(const BlockConfig& c);
  torch::Tensor forward(const torch::Tensor& x);

  ConvBnAct expand{nullptr};  // null when expanded == in
  ConvBnAct depthwise{nullptr};
  SqueezeExcite se{nullptr};  // null without SE
  ConvBnAct project{nullptr};
  bool residual = false;  // stride 1 and in == out
  double drop_path = 0.0;
  int64_t stride = 1;
};
TORCH_MODULE(InvertedResidual);

struct ModelOutput {
  torch::Tensor logit;       // [N, 1]
  torch::Tensor mask_logit;  // [N, 1, ceil(S / mask_stride), ...]; undefined without the mask head
};

// Per crop, the face logit of the "mask_max" face score from the mask head's logits [N, ...]:
// infer::MaskMaxLogit of their sigmoid, i.e. of the heatmap the ONNX export outputs, so that LibTorch
// and ONNX Runtime score alike. Errors: kInvalidModel (undefined or empty mask logits).
Result<std::vector<float>> MaskMaxLogits(const torch::Tensor& mask_logit);

// The whole network. Submodules are public so that the exporter can walk them:
// stem -> blocks... -> [head_conv] -> global average pool -> [pre_logits -> hard-swish]
// -> dropout -> fc -> logit; mask_conv -> mask_out read the output of blocks[mask_tap].
class ZooNetImpl : public torch::nn::Module {
 public:
  // Precondition: ValidateModelSpec(spec).ok() (MakeModel checks it).
  explicit ZooNetImpl(const ModelSpec& spec);
  ModelOutput forward(const torch::Tensor& x);
  // The pooled features the logit is computed from ([N, C], eval or train as the model is).
  torch::Tensor Features(const torch::Tensor& x);
  const ModelSpec& spec() const { return spec_; }

  ConvBnAct stem{nullptr};
  std::vector<InvertedResidual> blocks;  // also registered as the ModuleList "blocks"
  ConvBnAct head_conv{nullptr};          // null for MobileNet v1 (the pool reads the last block)
  torch::nn::Linear pre_logits_reduce{nullptr};  // low rank only: in -> r, no bias, before pre_logits
  torch::nn::Linear pre_logits{nullptr};  // MobileNetV3 only (followed by hard-swish); null for EfficientNet
  torch::nn::Dropout dropout{nullptr};
  torch::nn::Linear fc{nullptr};        // -> 1 logit
  ConvBnAct mask_conv{nullptr};         // 3x3 conv-BN-ReLU; null without the mask head
  torch::nn::Conv2d mask_out{nullptr};  // 1x1 -> 1 channel, with bias
  int mask_tap = -1;                    // index into blocks

 private:
  // stem -> blocks -> [head_conv] -> pool; `tap` (when given) gets blocks[mask_tap]'s output.
  torch::Tensor Trunk(const torch::Tensor& input, torch::Tensor* tap);

  ModelSpec spec_;
  torch::nn::ModuleList block_list_{nullptr};
};
TORCH_MODULE(ZooNet);

using Model = ZooNet;

// Builds a freshly initialised model (the references' initialisation). Errors: kInvalidArgument
// (also channel or rank overrides that do not fit the architecture).
Result<Model> MakeModel(const ModelSpec& spec);

// `from`'s parameters and buffers copied into `to` by name (same architecture; no gradients recorded).
void CopyWeights(Model& from, Model& to);

// Number of trainable parameters (all of them, mask head included when present).
int64_t CountParameters(const torch::nn::Module& module);

// Saves the weights and buffers of `model` in torch::save's format, with its ModelSpec under the
// extra key "deepscan_spec" (a JSON string). Errors: kIoError.
Status SaveCheckpoint(const Model& model, const std::string& path);

// Rebuilds a model and loads its weights from `path` (SaveCheckpoint's output, or plain
// torch::save(model, path)). The spec is `spec` when given (it may drop the mask head of the
// saved model; extra entries in the file are ignored), else the one stored in the file.
// Errors: kNotFound, kInvalidModel (no spec, or weights that do not fit the spec).
Result<Model> LoadCheckpoint(const std::string& path, const ModelSpec* spec = nullptr);

// The spec as a JSON object string ({"arch", "width", "input_size", "mask_head", "dropout",
// "drop_path", "mask_stride"}, "channels" / "ranks" when not empty, and for "mobilenetv3_nas"
// "nas": {"depth", "kernel", "expand", "se", "act"}, each an array of kNasStages) and back; a
// "nas" entry may give only some fields (the others keep NasSpec's defaults). Errors: kInvalidModel
// (malformed), kInvalidArgument (a value out of range, an unknown "nas" field, "nas" on another arch).
std::string ModelSpecToJson(const ModelSpec& spec);
Result<ModelSpec> ModelSpecFromJson(const std::string& json);

// Writes the metadata file of a zoo model: infer::ModelMetadataToJson(meta) plus an
// "architecture" entry holding ModelSpecToJson(spec) (ignored by infer::LoadModelMetadata, read
// by the LibTorch backend). Errors: kInvalidArgument (meta.input_size != spec.input_size), kIoError.
Status WriteModelMetadata(const std::string& json_path, const infer::ModelMetadata& meta, const ModelSpec& spec);

// Reads the "architecture" entry of a metadata file. Errors: kInvalidModel (absent or malformed).
Result<ModelSpec> ReadModelSpec(const std::string& json_path);

}  // namespace deepscan::train

#endif  // DEEPSCAN_TRAIN_ZOO_H_
