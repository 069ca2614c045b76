// core/cuda_probe.h: is there a usable NVIDIA GPU, asked of the driver itself.
//
// In:  nothing; the NVIDIA driver library (libcuda.so.1), when one is installed.
// Out: the number of CUDA devices, or in plain words why there are none.
// How: dlopen()s libcuda.so.1 and calls cuInit / cuDeviceGetCount / cuDeviceGetName through the
//      driver API, so nothing in the build links CUDA: a machine without a driver gets a reason,
//      not a missing-library error at start. The answer is computed once per process.
// Threading: thread-safe (the probe runs once, under a static initialiser's lock).
#ifndef DEEPSCAN_CORE_CUDA_PROBE_H_
#define DEEPSCAN_CORE_CUDA_PROBE_H_

#include <string>

namespace deepscan {

struct CudaProbe {
  int devices = 0;          // CUDA devices the driver sees; 0 when none or no driver
  int driver_version = 0;   // e.g. 13000 for CUDA 13.0; 0 without a driver
  std::string device_name;  // name of device 0, e.g. "NVIDIA H200"; empty when none
  std::string problem;      // why devices == 0, in plain words; empty when devices > 0
};

// The process-wide answer (probed on first call, then cached).
const CudaProbe& ProbeCuda();

}  // namespace deepscan

#endif  // DEEPSCAN_CORE_CUDA_PROBE_H_
