// train::TfjsModel: reads a TensorFlow.js graph model (model.json + its binary weight shards) into
// named float tensors and the graph's nodes, so that pretrained weights shipped in that format
// (e.g. @vladmandic/human's faceres) can initialise a zoo model (train/tfjs_init.h).
//
//   ASSIGN_OR_RETURN(TfjsModel g, LoadTfjsModel("third_party/pretrained/faceres/faceres.json"));
//   const TfjsTensor* w = g.FindTensor("conv1/convolution/merged_input");  // shape {3, 3, 3, 32}
//   for (const TfjsNode& n : g.nodes) ...                                 // n.op, n.inputs, n.attrs
//
// In:  model.json as written by tfjs-converter: {"format": "graph-model", "modelTopology":
//      {"node": [{"name", "op", "input": [...], "attr": {...}}]}, "weightsManifest": [{"paths":
//      [shard, ...], "weights": [{"name", "shape", "dtype", "quantization"?}]}]}. Each manifest
//      group's shards (paths relative to model.json's folder) are concatenated; the group's weights
//      lie back to back in that byte stream, in manifest order, little-endian.
// Out: every weight as float32 values in TF's own layout (row-major over `shape`: HWIO for
//      Conv2D filters, HWC1 for depthwise ones), dequantized the way TF.js does it:
//        float32 / int32          as stored (int32 converted to float)
//        quantization float16     IEEE half -> float
//        quantization uint8/uint16 value = q * scale + min
//      and the nodes with the attributes deepscan reads (ints, floats, strings, bools, types).
// Errors: kNotFound (model.json or a shard missing), kIoError (unreadable file), kInvalidModel
//      (malformed JSON, not a graph model, bad shapes, unknown dtype or quantization, shards
//      shorter or longer than the manifest says, a weight named twice).
// Thread-safety: a TfjsModel is a plain value; the functions keep no state.
#ifndef DEEPSCAN_TRAIN_TFJS_MODEL_H_
#define DEEPSCAN_TRAIN_TFJS_MODEL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "deepscan/status.h"

namespace deepscan::train {

struct TfjsTensor {
  std::string name;
  std::vector<int64_t> shape;  // {} for a scalar
  std::vector<float> values;   // product(shape) values, row-major
  std::string dtype;           // the stored dtype before dequantization: "float32", "int32", ...
  std::string quantization;    // "", "float16", "uint8" or "uint16"
};

// One attribute of a node (TF's AttrValue as tfjs-converter writes it in JSON). Only the fields
// that were present are filled: {"list": {"i": [...]}} -> ints; {"i": "3"} -> ints {3};
// {"f": x} / {"list": {"f": [...]}} -> floats; {"s": base64} / {"list": {"s": [...]}} -> strings
// (decoded); {"b": true} -> ints {1}; {"type": "DT_FLOAT"} -> strings {"DT_FLOAT"}.
struct TfjsAttr {
  std::vector<int64_t> ints;
  std::vector<float> floats;
  std::vector<std::string> strings;
};

struct TfjsNode {
  std::string name;
  std::string op;                   // "Conv2D", "DepthwiseConv2dNative", "Const", "Placeholder", ...
  std::vector<std::string> inputs;  // node names, as written (a ":k" output index or "^" kept)
  std::map<std::string, TfjsAttr> attrs;

  // Convenience readers: the attribute's first string / its ints; empty when absent.
  std::string StringAttr(const std::string& key) const;
  std::vector<int64_t> IntsAttr(const std::string& key) const;
};

struct TfjsModel {
  std::string format;        // "graph-model"
  std::string generated_by;  // "generatedBy" (for faceres, the HSE_FaceRec_tf repository)
  std::string converted_by;  // "convertedBy"
  std::vector<TfjsNode> nodes;
  std::map<std::string, TfjsTensor> tensors;  // by weight name

  // Null when absent.
  const TfjsTensor* FindTensor(const std::string& name) const;
  const TfjsNode* FindNode(const std::string& name) const;
};

// Reads `model_json_path` and the shards its manifest names (beside it).
Result<TfjsModel> LoadTfjsModel(const std::string& model_json_path);

// The same from memory: `read_shard(path)` returns the bytes of one shard as named in the
// manifest (it may fail with its own status, which is returned). `origin` names the model in
// error messages. Errors as LoadTfjsModel's.
using TfjsShardReader = std::function<Result<std::string>(const std::string& path)>;
Result<TfjsModel> ParseTfjsModel(const std::string& json_text, const TfjsShardReader& read_shard,
                                 const std::string& origin);

// IEEE 754 binary16 -> binary32, exact (subnormals, infinities and NaN included).
float HalfToFloat(uint16_t h);

}  // namespace deepscan::train

#endif  // DEEPSCAN_TRAIN_TFJS_MODEL_H_
