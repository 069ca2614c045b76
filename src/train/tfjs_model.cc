#include "train/tfjs_model.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

namespace deepscan::train {
namespace {

using nlohmann::json;

// Standard base64 (tfjs-converter writes protobuf JSON, whose bytes fields are base64).
Result<std::string> DecodeBase64(const std::string& in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const int v = value(c);
    if (v < 0) return Status::InvalidModel("bad base64 in an attribute");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

// An int written as a JSON number or as a decimal string (protobuf JSON writes int64 as strings).
Result<int64_t> JsonInt(const json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    size_t used = 0;
    try {
      const long long x = std::stoll(s, &used);
      if (used == s.size()) return static_cast<int64_t>(x);
    } catch (const std::exception&) {
    }
  }
  return Status::InvalidModel("expected an integer, got " + v.dump());
}

Result<float> JsonFloat(const json& v) {
  if (v.is_number()) return v.get<float>();
  if (v.is_string()) {  // "NaN", "Infinity" in protobuf JSON
    const std::string& s = v.get_ref<const std::string&>();
    if (s == "NaN") return std::numeric_limits<float>::quiet_NaN();
    if (s == "Infinity") return std::numeric_limits<float>::infinity();
    if (s == "-Infinity") return -std::numeric_limits<float>::infinity();
  }
  return Status::InvalidModel("expected a number, got " + v.dump());
}

// `v` itself, or its elements when it is an array (TF.js writes a list attribute either way).
std::vector<json> OneOrMany(const json& v) { return v.is_array() ? v.get<std::vector<json>>() : std::vector<json>{v}; }

Result<TfjsAttr> ParseAttr(const json& a) {
  TfjsAttr out;
  if (!a.is_object()) return Status::InvalidModel("an attribute is not an object");
  auto take = [&](const json& holder) -> Status {
    if (holder.contains("i")) {
      for (const json& v : OneOrMany(holder["i"])) {
        ASSIGN_OR_RETURN(int64_t x, JsonInt(v));
        out.ints.push_back(x);
      }
    }
    if (holder.contains("f")) {
      for (const json& v : OneOrMany(holder["f"])) {
        ASSIGN_OR_RETURN(float x, JsonFloat(v));
        out.floats.push_back(x);
      }
    }
    if (holder.contains("s")) {
      for (const json& v : OneOrMany(holder["s"])) {
        if (!v.is_string()) return Status::InvalidModel("a string attribute is not a string");
        ASSIGN_OR_RETURN(std::string d, DecodeBase64(v.get<std::string>()));
        out.strings.push_back(std::move(d));
      }
    }
    if (holder.contains("b")) {
      for (const json& v : OneOrMany(holder["b"])) {
        if (!v.is_boolean()) return Status::InvalidModel("a bool attribute is not a bool");
        out.ints.push_back(v.get<bool>() ? 1 : 0);
      }
    }
    if (holder.contains("type")) {
      for (const json& v : OneOrMany(holder["type"])) {
        if (v.is_string()) out.strings.push_back(v.get<std::string>());
      }
    }
    return Status::Ok();
  };
  RETURN_IF_ERROR(take(a));
  if (a.contains("list")) {
    if (!a["list"].is_object()) return Status::InvalidModel("an attribute list is not an object");
    RETURN_IF_ERROR(take(a["list"]));
  }
  return out;
}

// Bytes per stored element of `dtype` (a weight's dtype, or its quantization's); 0 = unknown.
size_t BytesPer(const std::string& dtype) {
  if (dtype == "float32" || dtype == "int32") return 4;
  if (dtype == "float16" || dtype == "uint16") return 2;
  if (dtype == "uint8" || dtype == "bool") return 1;
  return 0;
}

uint16_t ReadU16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t ReadU32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

// One manifest entry, checked, with its place in the group's byte stream.
struct WeightSpec {
  TfjsTensor tensor;  // values still empty
  int64_t count = 0;
  std::string stored;  // the dtype of the bytes: dtype, or the quantization's
  float scale = 1, min = 0;
};

Result<WeightSpec> ParseWeightSpec(const json& w, const std::string& origin) {
  WeightSpec spec;
  if (!w.is_object()) return Status::InvalidModel(origin + ": a weightsManifest entry is not an object");
  if (!w.contains("name") || !w["name"].is_string()) return Status::InvalidModel(origin + ": a weight without a name");
  spec.tensor.name = w["name"].get<std::string>();
  const std::string& name = spec.tensor.name;
  if (!w.contains("shape") || !w["shape"].is_array())
    return Status::InvalidModel(origin + ": weight '" + name + "' has no shape");
  int64_t count = 1;
  for (const json& d : w["shape"]) {
    auto dim = JsonInt(d);
    if (!dim.ok() || *dim < 0 || *dim > (int64_t{1} << 31)) {
      return Status::InvalidModel(origin + ": weight '" + name + "' has a bad shape " + w["shape"].dump());
    }
    spec.tensor.shape.push_back(*dim);
    count *= *dim;
    if (count > (int64_t{1} << 31)) return Status::InvalidModel(origin + ": weight '" + name + "' is too large");
  }
  spec.count = count;
  if (!w.contains("dtype") || !w["dtype"].is_string())
    return Status::InvalidModel(origin + ": weight '" + name + "' has no dtype");
  spec.tensor.dtype = w["dtype"].get<std::string>();
  if (spec.tensor.dtype != "float32" && spec.tensor.dtype != "int32" && spec.tensor.dtype != "bool") {
    return Status::InvalidModel(origin + ": weight '" + name + "' has the unsupported dtype '" + spec.tensor.dtype +
                                "' (float32, int32, bool)");
  }
  spec.stored = spec.tensor.dtype;
  if (w.contains("quantization") && !w["quantization"].is_null()) {
    const json& q = w["quantization"];
    if (!q.is_object() || !q.contains("dtype") || !q["dtype"].is_string()) {
      return Status::InvalidModel(origin + ": weight '" + name + "' has a malformed quantization");
    }
    const std::string qd = q["dtype"].get<std::string>();
    if (qd != "float16" && qd != "uint8" && qd != "uint16") {
      return Status::InvalidModel(origin + ": weight '" + name + "' has the unknown quantization dtype '" + qd +
                                  "' (float16, uint8, uint16)");
    }
    spec.tensor.quantization = qd;
    spec.stored = qd;
    if (qd != "float16") {
      if (!q.contains("scale") || !q.contains("min") || !q["scale"].is_number() || !q["min"].is_number()) {
        return Status::InvalidModel(origin + ": weight '" + name + "' is " + qd + "-quantized without scale and min");
      }
      spec.scale = q["scale"].get<float>();
      spec.min = q["min"].get<float>();
    }
  }
  return spec;
}

// Fills spec->tensor.values from `bytes` (exactly count * BytesPer(stored) of them).
void Decode(const unsigned char* p, WeightSpec* spec) {
  std::vector<float>& v = spec->tensor.values;
  v.resize(static_cast<size_t>(spec->count));
  const std::string& s = spec->stored;
  const bool to_int = spec->tensor.dtype == "int32";
  for (int64_t i = 0; i < spec->count; ++i) {
    float x = 0;
    if (s == "float32") {
      const uint32_t u = ReadU32(p + 4 * i);
      std::memcpy(&x, &u, 4);
    } else if (s == "int32") {
      x = static_cast<float>(static_cast<int32_t>(ReadU32(p + 4 * i)));
    } else if (s == "bool") {
      x = p[i] != 0 ? 1.0f : 0.0f;
    } else if (s == "float16") {
      x = HalfToFloat(ReadU16(p + 2 * i));
    } else if (s == "uint16") {
      x = static_cast<float>(ReadU16(p + 2 * i)) * spec->scale + spec->min;
    } else {  // uint8
      x = static_cast<float>(p[i]) * spec->scale + spec->min;
    }
    if (to_int && s != "int32") x = std::trunc(x);  // TF.js casts dequantized int32 weights
    v[static_cast<size_t>(i)] = x;
  }
}

}  // namespace

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal half: mant * 2^-24, normal as a float
      float f = std::ldexp(static_cast<float>(mant), -24);
      std::memcpy(&bits, &f, 4);
      bits |= sign;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

std::string TfjsNode::StringAttr(const std::string& key) const {
  auto it = attrs.find(key);
  return it == attrs.end() || it->second.strings.empty() ? std::string() : it->second.strings.front();
}

std::vector<int64_t> TfjsNode::IntsAttr(const std::string& key) const {
  auto it = attrs.find(key);
  return it == attrs.end() ? std::vector<int64_t>() : it->second.ints;
}

const TfjsTensor* TfjsModel::FindTensor(const std::string& name) const {
  auto it = tensors.find(name);
  return it == tensors.end() ? nullptr : &it->second;
}

const TfjsNode* TfjsModel::FindNode(const std::string& name) const {
  for (const TfjsNode& n : nodes) {
    if (n.name == name) return &n;
  }
  return nullptr;
}

Result<TfjsModel> ParseTfjsModel(const std::string& json_text, const TfjsShardReader& read_shard,
                                 const std::string& origin) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    return Status::InvalidModel(origin + ": malformed JSON: " + e.what());
  }
  if (!j.is_object()) return Status::InvalidModel(origin + ": not a JSON object");
  TfjsModel m;
  auto text = [&](const char* key) { return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : ""; };
  m.format = text("format");
  m.generated_by = text("generatedBy");
  m.converted_by = text("convertedBy");
  if (m.format != "graph-model") {
    return Status::InvalidModel(origin + ": format is '" + m.format + "', not 'graph-model' (a TF.js layers model?)");
  }
  if (!j.contains("modelTopology") || !j["modelTopology"].is_object() || !j["modelTopology"].contains("node") ||
      !j["modelTopology"]["node"].is_array()) {
    return Status::InvalidModel(origin + ": no modelTopology.node list");
  }
  std::set<std::string> node_names;
  for (const json& n : j["modelTopology"]["node"]) {
    if (!n.is_object() || !n.contains("name") || !n["name"].is_string() || !n.contains("op") || !n["op"].is_string()) {
      return Status::InvalidModel(origin + ": a node without a name or op");
    }
    TfjsNode node;
    node.name = n["name"].get<std::string>();
    node.op = n["op"].get<std::string>();
    if (!node_names.insert(node.name).second) return Status::InvalidModel(origin + ": node '" + node.name + "' twice");
    if (n.contains("input")) {
      if (!n["input"].is_array()) return Status::InvalidModel(origin + ": node '" + node.name + "' inputs malformed");
      for (const json& in : n["input"]) {
        if (!in.is_string()) return Status::InvalidModel(origin + ": node '" + node.name + "' inputs malformed");
        node.inputs.push_back(in.get<std::string>());
      }
    }
    if (n.contains("attr")) {
      if (!n["attr"].is_object()) return Status::InvalidModel(origin + ": node '" + node.name + "' attr malformed");
      for (auto it = n["attr"].begin(); it != n["attr"].end(); ++it) {
        if (it.key() == "value") continue;  // Const payloads: the weights manifest carries them
        auto a = ParseAttr(it.value());
        if (!a.ok()) {
          return Status::InvalidModel(origin + ": node '" + node.name + "' attribute '" + it.key() +
                                      "': " + a.status().message());
        }
        node.attrs[it.key()] = std::move(*a);
      }
    }
    m.nodes.push_back(std::move(node));
  }

  if (!j.contains("weightsManifest") || !j["weightsManifest"].is_array()) {
    return Status::InvalidModel(origin + ": no weightsManifest list");
  }
  for (const json& group : j["weightsManifest"]) {
    if (!group.is_object() || !group.contains("paths") || !group["paths"].is_array() || !group.contains("weights") ||
        !group["weights"].is_array()) {
      return Status::InvalidModel(origin + ": a weightsManifest group without paths or weights");
    }
    std::string bytes;
    for (const json& p : group["paths"]) {
      if (!p.is_string()) return Status::InvalidModel(origin + ": a shard path is not a string");
      ASSIGN_OR_RETURN(std::string shard, read_shard(p.get<std::string>()));
      bytes += shard;
    }
    std::vector<WeightSpec> specs;
    uint64_t need = 0;
    for (const json& w : group["weights"]) {
      ASSIGN_OR_RETURN(WeightSpec spec, ParseWeightSpec(w, origin));
      need += static_cast<uint64_t>(spec.count) * BytesPer(spec.stored);
      specs.push_back(std::move(spec));
    }
    if (need != bytes.size()) {
      return Status::InvalidModel(origin + ": the manifest's weights need " + std::to_string(need) +
                                  " bytes, its shards hold " + std::to_string(bytes.size()));
    }
    const auto* base = reinterpret_cast<const unsigned char*>(bytes.data());
    uint64_t offset = 0;
    for (WeightSpec& spec : specs) {
      Decode(base + offset, &spec);
      offset += static_cast<uint64_t>(spec.count) * BytesPer(spec.stored);
      const std::string name = spec.tensor.name;
      if (!m.tensors.emplace(name, std::move(spec.tensor)).second) {
        return Status::InvalidModel(origin + ": weight '" + name + "' named twice");
      }
    }
  }
  return m;
}

Result<TfjsModel> LoadTfjsModel(const std::string& model_json_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_regular_file(model_json_path, ec)) return Status::NotFound("TF.js model not found: " + model_json_path);
  auto slurp = [](const std::string& path) -> Result<std::string> {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::IoError("cannot read " + path);
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return Status::IoError("cannot read " + path);
    return ss.str();
  };
  ASSIGN_OR_RETURN(std::string text, slurp(model_json_path));
  const fs::path dir = fs::path(model_json_path).parent_path();
  auto read_shard = [&](const std::string& rel) -> Result<std::string> {
    const std::string path = (dir / rel).string();
    std::error_code e;
    if (!fs::is_regular_file(path, e)) {
      return Status::NotFound("weight shard " + rel + " of " + model_json_path + " not found (" + path + ")");
    }
    return slurp(path);
  };
  return ParseTfjsModel(text, read_shard, model_json_path);
}

}  // namespace deepscan::train
