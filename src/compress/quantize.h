// compress::QuantizeStatic: static INT8 post-training quantisation of a float ONNX model into the
// QDQ form that ONNX Runtime runs with integer kernels.
//
// In:  a float ONNX model (opset 13 or later; 11-12 when every operator in it kept its meaning at
//      13: the model is then stamped opset 13, which per-channel QuantizeLinear needs) and
//      calibration inputs for its first input, preprocessed exactly as at inference
//      (compress/calibration_data.h makes them for the classifiers and the BlazeFace detectors).
// Out: the QDQ model, a drop-in replacement: the graph's inputs and outputs stay float and keep
//      their names. Conv and Gemm weights are int8 (symmetric, per output channel unless
//      per_channel is off), biases int32 (scale = input scale x weight scale); activations are
//      fake-quantised as uint8 (asymmetric) by QuantizeLinear -> DequantizeLinear pairs on every
//      float tensor entering or leaving a quantised operator (Conv, Gemm, Add, Concat, average
//      pools). ORT's QDQ transformers then fuse each DQ -> op -> Q group into QLinearConv, QGemm,
//      QLinearAdd, ... (OptimizedOpCounts shows which it chose).
// How: activation ranges come from runs over the calibration inputs with every tensor to calibrate
//      added as a model output: min-max, a percentile of |x|, or the entropy (KL-divergence)
//      threshold of TensorRT's INT8 calibrator, on a 2048-bin histogram of |x| (a second pass).
//      A Relu or Clip right after a quantised operator is folded into that operator's output range
//      (ORT then drops it: its Relu/Clip-QuantizeLinear fusions); range-preserving operators
//      (MaxPool, Reshape, Transpose, Flatten, Squeeze, Unsqueeze) reuse their input's parameters,
//      so ORT runs them on uint8 as they are. Operators outside these lists stay float, and so do
//      output layers: an operator whose result reaches a model output through range-preserving
//      operators only (BlazeFace's score logits span 10^4, its box regressors 10^3 pixels: 256
//      levels cannot hold them; a classifier's final Gemm costs nothing).
// Why written here: ONNX Runtime's quantisation tool (onnxruntime.quantization) is Python from
//      PyPI, which this project cannot reach; this pass is written on the ONNX protobuf library the
//      project already links, and follows the same QDQ conventions (uint8 activations, int8
//      per-channel weights: ORT's default on x86).
// Output is written to a temporary file and renamed: a failed run leaves nothing at `out_path`.
#ifndef DEEPSCAN_COMPRESS_QUANTIZE_H_
#define DEEPSCAN_COMPRESS_QUANTIZE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "deepscan/status.h"

namespace deepscan::compress {

enum class CalibrationMethod { kMinMax, kPercentile, kEntropy };

// "minmax" | "percentile" | "entropy". Errors: kInvalidArgument.
Result<CalibrationMethod> ParseCalibrationMethod(const std::string& name);
const char* CalibrationMethodName(CalibrationMethod m);

// One calibration input: a float tensor for the model's first input.
struct CalibrationSample {
  std::vector<float> data;
  std::vector<int64_t> shape;
};

// How far a candidate model's outputs are from the float model's on the checked calibration
// samples: `ref` and `got` hold, per sample, every output (flat); `shapes` the float outputs'
// shapes. 0 = identical. Used to choose mixed precision and reported.
using OutputError = std::function<double(const std::vector<std::vector<std::vector<float>>>& ref,
                                         const std::vector<std::vector<std::vector<float>>>& got,
                                         const std::vector<std::vector<int64_t>>& shapes)>;

// The default OutputError: per output, sum |got - ref| over sum |ref - mean(ref)|, averaged over
// the outputs (0.01: errors 1% of the outputs' spread).
double MeanRelativeError(const std::vector<std::vector<std::vector<float>>>& ref,
                         const std::vector<std::vector<std::vector<float>>>& got,
                         const std::vector<std::vector<int64_t>>& shapes);

struct QuantizeOptions {
  CalibrationMethod method = CalibrationMethod::kMinMax;
  double percentile = 99.99;  // kPercentile: the range covers this percentage of |x|
  int bins = 2048;            // histogram bins (percentile, entropy)
  bool per_channel = true;    // per-output-channel weight scales (else one per tensor)
  int threads = 1;            // ONNX Runtime threads for the calibration runs
  // Mixed precision. Operators whose name or first output's name contains one of `keep_float`
  // stay float. With
  // max_float_layers > 0 and an all-INT8 error above target_error, each quantisable operator is
  // quantised alone to measure its error (one-at-a-time sensitivity), and the most sensitive 1, 2,
  // 4, ... (at most max_float_layers) stay float until the error reaches target_error, with the
  // up-to-2 INT8 operators between two float ones (in graph order) made float too: ORT quantises
  // a lone float operator between INT8 ones again by itself (QDQ weight quantisation), so float
  // operators must form runs to stay float.
  std::vector<std::string> keep_float;
  // With pad_channels > 1, the model is first widened to multiples of that many channels
  // (compress/pad_channels.h: zero channels, the same function) so that ORT's fast INT8 kernels
  // apply; 16 suits x86. 0: as it is.
  int pad_channels = 0;
  int max_float_layers = 0;
  double target_error = 0;
  OutputError error;  // empty: MeanRelativeError
};

struct QuantizeReport {
  int quantized_nodes = 0;    // Conv / Gemm / Add / Concat / pools given QDQ inputs and outputs
  int weight_tensors = 0;     // initializers stored as int8
  int activation_tensors = 0; // tensors given a QuantizeLinear -> DequantizeLinear pair
  int64_t samples = 0;        // calibration inputs run
  std::vector<std::string> float_nodes;  // operators left in float ("op name: why"), for the log
  double max_output_diff = 0; // largest |int8 - fp32| over every output element of the samples
  double mean_output_diff = 0;
  struct Output {             // the same per model output, beside the float output's range
    std::string name;
    double max_diff = 0, mean_diff = 0;
    float min = 0, max = 0;
  };
  std::vector<Output> outputs;
  double error = 0;           // OutputError of the written model (on up to 64 samples)
  double error_all_int8 = 0;  // the same with every quantisable operator INT8
  int float_layers = 0;       // operators kept float by the sensitivity search
  int tensors_padded = 0;     // feature maps widened by pad_channels
  struct Sensitivity {        // the most sensitive operators, most first (when searched)
    std::string node;
    double error = 0;
  };
  std::vector<Sensitivity> sensitivity;
  int64_t bytes_in = 0, bytes_out = 0;  // model file sizes
};

// Quantises `in_path` into `out_path` with ranges from `samples` (at least one). Errors:
// kInvalidArgument (no samples, a sample that does not fit the input, bad options), kInvalidModel
// (not a float ONNX model, nothing to quantise, ORT refuses a run), kNotSupported (an opset under
// 11, or an operator whose meaning changed at 13 in an opset-11/12 model), kIoError.
Result<QuantizeReport> QuantizeStatic(const std::string& in_path, const std::string& out_path,
                                      const std::vector<CalibrationSample>& samples, const QuantizeOptions& options);

// The operators of the graph ONNX Runtime actually runs for `path` on the CPU, after its
// optimisations (ORT writes it out; SessionOptions::SetOptimizedModelFilePath), counted by
// "domain:op" (the default domain is written ""): e.g. {"com.microsoft:QLinearConv": 25}.
// Errors: kInvalidModel, kIoError.
Result<std::map<std::string, int>> OptimizedOpCounts(const std::string& path, int threads = 1);

// Pure helpers of the pass, exposed for tests.
// uint8 asymmetric parameters covering [lo, hi] (widened to include 0): scale, zero point.
struct QParams {
  float scale = 1;
  uint8_t zero_point = 0;
};
QParams Uint8Params(float lo, float hi);
// The threshold T in (0, absmax] that the method picks from `hist`, a histogram of |x| with
// hist.size() equal bins over [0, absmax]; `levels` quantisation levels cover [0, T] (128 for a
// signed tensor, 256 for a non-negative one). kMinMax returns absmax.
double ThresholdFromHistogram(const std::vector<double>& hist, double absmax, CalibrationMethod method,
                              double percentile, int levels);

}  // namespace deepscan::compress

#endif  // DEEPSCAN_COMPRESS_QUANTIZE_H_
