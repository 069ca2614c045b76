// infer::ReadKernelProfile: what ONNX Runtime's profiler says each kernel cost.
//
// In:  the JSON file an OrtModel writes with OrtModelOptions::profile_prefix (Chrome trace
//      format: one "Node" event per kernel run, args.op_name naming its operator).
// Out: per operator ("QLinearConv", "Conv", ...): total microseconds and kernel runs, over every
//      run of the session. The compression bench and tests read it to see which kernels ran
//      (integer or float) and where the time goes.
#ifndef DEEPSCAN_INFER_ORT_PROFILE_H_
#define DEEPSCAN_INFER_ORT_PROFILE_H_

#include <cstdint>
#include <map>
#include <string>

#include "deepscan/status.h"

namespace deepscan::infer {

struct KernelTime {
  int64_t us = 0;    // summed durations
  int64_t runs = 0;  // kernel invocations
};

// Errors: kIoError (unreadable), kCorruptInput (not such a profile).
Result<std::map<std::string, KernelTime>> ReadKernelProfile(const std::string& path);

}  // namespace deepscan::infer

#endif  // DEEPSCAN_INFER_ORT_PROFILE_H_
