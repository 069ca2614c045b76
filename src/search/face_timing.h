// search::MeasureMsPerFace: what one face costs a classifier model on this machine, the second
// objective of a multi-objective `deepscan tune` study (accuracy vs speed, docs/search.md).
//
// In:  a classifier ONNX file with its metadata (<model>.json), FaceTimingOptions.
// Out: the median wall time of one face (batch 1) through ONNX Runtime on `device`, in ms, over
//      `runs` calls after `warmup` calls, and the execution provider it really ran on (an
//      unusable GPU falls back to the CPU, infer/ort_model.h). The crop is noise of the model's
//      input size: a CNN's time does not depend on the pixels. Measured, never estimated from
//      the parameter count.
// Blocking; the caller's thread. Errors: as infer::CreateClassifier (kInvalidModel, ...).
#ifndef DEEPSCAN_SEARCH_FACE_TIMING_H_
#define DEEPSCAN_SEARCH_FACE_TIMING_H_

#include <string>

#include "deepscan/status.h"

namespace deepscan::search {

struct FaceTimingOptions {
  int threads = 1;             // ONNX Runtime intra-op threads
  std::string device = "cpu";  // cpu | cuda | tensorrt | auto (CUDA when usable, else the CPU)
  int warmup = 10;             // untimed calls first
  int runs = 100;              // timed calls
};

struct FaceTiming {
  double ms_per_face = 0;  // median
  double p90_ms = 0;
  int runs = 0;
  int threads = 1;
  std::string device = "cpu";  // the execution provider in effect: "cpu", "cuda" or "tensorrt"
};

Result<FaceTiming> MeasureMsPerFace(const std::string& onnx_path, const FaceTimingOptions& options = {});

}  // namespace deepscan::search

#endif  // DEEPSCAN_SEARCH_FACE_TIMING_H_
