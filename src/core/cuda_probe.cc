#include "core/cuda_probe.h"

#include <dlfcn.h>

namespace deepscan {
namespace {

// The few driver-API entry points used, with their C signatures (CUresult is an int enum,
// CUdevice an int): cuda.h is not needed to build this file.
using CuInit = int (*)(unsigned int);
using CuDriverGetVersion = int (*)(int*);
using CuDeviceGetCount = int (*)(int*);
using CuDeviceGet = int (*)(int*, int);
using CuDeviceGetName = int (*)(char*, int, int);
using CuGetErrorString = int (*)(int, const char**);

std::string DriverError(CuGetErrorString describe, int code) {
  const char* text = nullptr;
  if (describe && describe(code, &text) == 0 && text) return std::string(text) + " (" + std::to_string(code) + ")";
  return "error " + std::to_string(code);
}

CudaProbe Probe() {
  CudaProbe p;
  // Never closed: ONNX Runtime's and FFmpeg's CUDA code load the same library anyway.
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* err = dlerror();
    p.problem = std::string("no NVIDIA driver: cannot load libcuda.so.1") + (err ? std::string(" (") + err + ")" : "");
    return p;
  }
  auto init = reinterpret_cast<CuInit>(dlsym(lib, "cuInit"));
  auto version = reinterpret_cast<CuDriverGetVersion>(dlsym(lib, "cuDriverGetVersion"));
  auto count = reinterpret_cast<CuDeviceGetCount>(dlsym(lib, "cuDeviceGetCount"));
  auto get = reinterpret_cast<CuDeviceGet>(dlsym(lib, "cuDeviceGet"));
  auto name = reinterpret_cast<CuDeviceGetName>(dlsym(lib, "cuDeviceGetName"));
  auto describe = reinterpret_cast<CuGetErrorString>(dlsym(lib, "cuGetErrorString"));
  if (!init || !version || !count || !get || !name) {
    p.problem = "libcuda.so.1 lacks the CUDA driver API (not an NVIDIA driver?)";
    return p;
  }
  if (int rc = init(0); rc != 0) {
    p.problem = "the NVIDIA driver did not start: " + DriverError(describe, rc);
    return p;
  }
  version(&p.driver_version);
  if (int rc = count(&p.devices); rc != 0) {
    p.devices = 0;
    p.problem = "cannot count CUDA devices: " + DriverError(describe, rc);
    return p;
  }
  if (p.devices == 0) {
    p.problem = "the NVIDIA driver sees no CUDA device";
    return p;
  }
  int device = 0;
  char buf[256] = {0};
  if (get(&device, 0) == 0 && name(buf, sizeof buf - 1, device) == 0) p.device_name = buf;
  return p;
}

}  // namespace

const CudaProbe& ProbeCuda() {
  static const CudaProbe probe = Probe();
  return probe;
}

}  // namespace deepscan
