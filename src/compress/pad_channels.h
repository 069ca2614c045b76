// compress::PadChannels: widens a convolutional ONNX graph's feature maps to a multiple of N
// channels with channels that are exactly zero, so that ONNX Runtime's fast INT8 kernels apply.
//
// Why: on x86, ORT's symmetric INT8 convolution kernels (MLAS ConvSym: the depthwise ones need
// the channel count to be a multiple of 16, the others multiples of 4 with at least 16 outputs)
// are 4x faster than its generic INT8 depthwise path, which BlazeFace's 24-, 28-, 36-, 42-, ...
// channel blocks otherwise take: quantised as they are, they run slower than float.
// In:  a float ONNX model of Conv (any group; depthwise = group equal to its channels), Add, Relu,
//      Clip, MaxPool, AveragePool and channel-axis Concat with a ConstantOfShape of zeros (the
//      channel padding of BlazeFace's residual shortcuts) in NCHW, 4-D tensors.
// Out: the same function: every padded tensor gets ceil(C / N) * N channels, the real ones first
//      and the added ones 0 (zero weights and biases in the producing convolutions, zero input
//      weights in the consuming ones, more zeros in the shortcut Concats, depthwise groups grown).
//      Tensors that reach the graph's inputs or outputs, or an operator outside the list, keep
//      their width (the set to pad is narrowed until every operator's constraints hold), so the
//      model's interface never changes. A test checks outputs equal to float rounding.
#ifndef DEEPSCAN_COMPRESS_PAD_CHANNELS_H_
#define DEEPSCAN_COMPRESS_PAD_CHANNELS_H_

#include <string>

#include "deepscan/status.h"

namespace deepscan::compress {

struct PadReport {
  int tensors_padded = 0;  // feature maps widened
  int convs_changed = 0;   // convolutions whose weights grew
};

// Pads `in_path` into `out_path` (multiple >= 2). Errors: kInvalidModel (unreadable), kIoError,
// kInvalidArgument (multiple). A model with nothing to pad is written unchanged.
Result<PadReport> PadChannels(const std::string& in_path, const std::string& out_path, int multiple = 16);

}  // namespace deepscan::compress

#endif  // DEEPSCAN_COMPRESS_PAD_CHANNELS_H_
