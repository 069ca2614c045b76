// compress: reading, writing and inspecting ONNX protobuf models, for the graph passes of this
// folder (quantize, pad_channels). Internal to src/compress/.
#ifndef DEEPSCAN_COMPRESS_ONNX_IO_H_
#define DEEPSCAN_COMPRESS_ONNX_IO_H_

#include <cstdint>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "deepscan/status.h"

namespace deepscan::compress {

// Errors: kInvalidModel (missing, unparsable, or no graph).
Result<onnx::ModelProto> ReadModel(const std::string& path);
// Errors: kIoError.
Status WriteModel(const onnx::ModelProto& model, const std::string& path);
// Runs onnx::checker on `model`. Errors: kInternal (a pass produced an invalid graph).
Status CheckModel(const onnx::ModelProto& model, const std::string& what);

// The graph inputs fed at run time: those that are not also initializers (older exporters list
// every initializer among the inputs), in order.
std::vector<const onnx::ValueInfoProto*> RuntimeInputs(const onnx::GraphProto& g);

// The values of a FLOAT initializer (raw_data or float_data).
std::vector<float> FloatsOf(const onnx::TensorProto& t);
// The values of an INT64 initializer.
std::vector<int64_t> Int64sOf(const onnx::TensorProto& t);

const onnx::AttributeProto* Attr(const onnx::NodeProto& n, const std::string& name);
int64_t IntAttr(const onnx::NodeProto& n, const std::string& name, int64_t def);
float FloatAttr(const onnx::NodeProto& n, const std::string& name, float def);

}  // namespace deepscan::compress

#endif  // DEEPSCAN_COMPRESS_ONNX_IO_H_
