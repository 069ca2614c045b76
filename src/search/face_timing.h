// search::MeasureMsPerFace: what one face costs a classifier model on this machine, the second
// objective of a multi-objective `deepscan tune` study (accuracy vs speed, docs/search.md).
//
// In:  a classifier ONNX file with its metadata (<model>.json), a thread count.
// Out: the median wall time of one face (batch 1) through ONNX Runtime on the CPU, in ms, over
//      `runs` calls after `warmup` calls. The crop is noise of the model's input size: a CNN's
//      time does not depend on the pixels. Measured, never estimated from the parameter count.
// Blocking; the caller's thread. Errors: as infer::CreateClassifier (kInvalidModel, ...).
#ifndef DEEPSCAN_SEARCH_FACE_TIMING_H_
#define DEEPSCAN_SEARCH_FACE_TIMING_H_

#include <string>

#include "deepscan/status.h"

namespace deepscan::search {

struct FaceTiming {
  double ms_per_face = 0;  // median
  double p90_ms = 0;
  int runs = 0;
  int threads = 1;
};

Result<FaceTiming> MeasureMsPerFace(const std::string& onnx_path, int threads = 1, int warmup = 10, int runs = 100);

}  // namespace deepscan::search

#endif  // DEEPSCAN_SEARCH_FACE_TIMING_H_
