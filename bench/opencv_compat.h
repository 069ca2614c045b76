// bench/opencv_compat.h: a copy of a classifier that OpenCV 4.6's ONNX importer can read, for the
// Python/OpenCV peer pipeline.
//
// OpenCV 4.6 (Debian 12) maps a Gemm without a `transB` attribute as if B were [out, in]
// (transB = 1), while ONNX defaults transB to 0 ([in, out]): it then refuses the bias
// ("numOutput == blobs[1].total()"). The copy stores every such constant B transposed with
// transB = 1, which computes the same function, so the peer runs the same classifier weights.
// Its Clip accepts only the opset-6 attribute form; a Clip with constant bounds (ReLU6) becomes
// Relu(x - lo) + lo - Relu(x - hi), the same function in any opset.
#ifndef DEEPSCAN_BENCH_OPENCV_COMPAT_H_
#define DEEPSCAN_BENCH_OPENCV_COMPAT_H_

#include <string>

#include "deepscan/status.h"

namespace deepscan::bench {

// Writes to `out` the model `in` with every Gemm whose B is a 2-D float initializer and whose
// transB is 0, and every Clip with constant bounds, rewritten as described above; other nodes are
// copied untouched. Returns how many nodes were rewritten (0: `out` is an identical copy). Errors: kInvalidModel (unreadable
// model or unsupported initializer storage), kIoError.
Result<int> WriteOpenCvCompatibleCopy(const std::string& in, const std::string& out);

}  // namespace deepscan::bench

#endif  // DEEPSCAN_BENCH_OPENCV_COMPAT_H_
