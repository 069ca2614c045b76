// compress::ConvertToFp16: an FP16 copy of a float ONNX model, for GPUs (CUDA / TensorRT run
// half-precision convolutions on tensor cores; on the CPU, ONNX Runtime casts back to float for
// the operators it has no half kernels for, so there it only halves the file).
//
// In:  a float ONNX model.
// Out: the same graph with every float initializer, Constant and ConstantOfShape value, and Cast
//      to float turned half; the graph's inputs and outputs stay float (a Cast after each input and
//      before each output), so it is a drop-in --model / --detector. Values beyond half's range
//      (+-65504) are clamped; a test checks outputs against float. Written to a temporary file,
//      checked by ONNX's checker, renamed.
// Refuses (kNotSupported) operators whose inputs must stay float whatever the model's precision
// (Resize's scales and roi), rather than write a model ORT cannot load.
#ifndef DEEPSCAN_COMPRESS_FP16_H_
#define DEEPSCAN_COMPRESS_FP16_H_

#include <string>

#include "deepscan/status.h"

namespace deepscan::compress {

struct Fp16Report {
  int initializers = 0;  // float initializers stored as half
  int clamped = 0;       // values beyond half's range, clamped
  int64_t bytes_in = 0, bytes_out = 0;
};

// Errors: kInvalidModel (unreadable, not float), kNotSupported (above), kIoError.
Result<Fp16Report> ConvertToFp16(const std::string& in_path, const std::string& out_path);

}  // namespace deepscan::compress

#endif  // DEEPSCAN_COMPRESS_FP16_H_
