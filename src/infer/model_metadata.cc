#include "infer/model_metadata.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace deepscan::infer {

const char* FaceScoreName(FaceScore s) { return s == FaceScore::kMaskMax ? "mask_max" : "logit"; }

Result<FaceScore> ParseFaceScore(const std::string& name) {
  if (name == "logit") return FaceScore::kLogit;
  if (name == "mask_max") return FaceScore::kMaskMax;
  return Status::InvalidArgument("unknown face_score '" + name + "' (logit or mask_max)");
}

std::string MetadataPathFor(const std::string& onnx_path) {
  return std::filesystem::path(onnx_path).replace_extension(".json").string();
}

Status EditMetadataJson(const std::string& from_onnx, const std::string& to_onnx,
                        const std::function<Status(nlohmann::json&)>& edit) {
  const std::string src = MetadataPathFor(from_onnx);
  nlohmann::json j;
  {
    std::ifstream in(src, std::ios::binary);
    if (!in) return Status::InvalidModel("model metadata not found: " + src);
    j = nlohmann::json::parse(in, nullptr, false);
  }
  if (j.is_discarded() || !j.is_object()) return Status::InvalidModel(src + ": unreadable metadata (not a JSON object)");
  RETURN_IF_ERROR(edit(j));
  const std::string dst = MetadataPathFor(to_onnx);
  const std::string tmp = dst + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!(out << j.dump(2) << "\n")) return Status::IoError("cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, dst, ec);
  if (ec) return Status::IoError("cannot replace " + dst + ": " + ec.message());
  return Status::Ok();
}

Result<ModelMetadata> LoadModelMetadata(const std::string& onnx_path) {
  const std::string path = MetadataPathFor(onnx_path);
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidModel("model metadata not found: " + path + " (every model needs one)");
  std::stringstream text;
  text << in.rdbuf();
  return ParseModelMetadata(text.str(), path);
}

Result<ModelMetadata> ParseModelMetadata(const std::string& text, const std::string& path) {
  ModelMetadata m;
  try {
    nlohmann::json j = nlohmann::json::parse(text);
    if (!j.is_object()) return Status::InvalidModel(path + ": metadata must be a JSON object");
    m.name = j.value("name", m.name);
    m.version = j.value("version", m.version);
    m.input_size = j.at("input_size").get<int>();
    if (j.contains("mean")) m.mean = j["mean"].get<std::array<float, 3>>();
    if (j.contains("std")) m.std = j["std"].get<std::array<float, 3>>();
    std::string out = j.value("output", "logit");
    if (out == "logit")
      m.output = OutputKind::kLogit;
    else if (out == "probability")
      m.output = OutputKind::kProbability;
    else if (out == "softmax2")
      m.output = OutputKind::kSoftmax2;
    else
      return Status::InvalidModel(path + ": unknown output kind '" + out + "'");
    m.fake_index = j.value("fake_index", m.fake_index);
    if (j.contains("face_score")) {
      auto fs = ParseFaceScore(j["face_score"].get<std::string>());
      if (!fs.ok()) return Status::InvalidModel(path + ": " + fs.status().message());
      m.face_score = *fs;
    }
    if (j.contains("calibration")) {
      const auto& c = j["calibration"];
      m.calibration_method = c.value("method", "none");
      m.calib_a = c.value("a", 1.0f);
      m.calib_b = c.value("b", 0.0f);
    }
    m.threshold = j.value("threshold", m.threshold);
    m.trained = j.value("trained", true);
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidModel(path + ": malformed metadata: " + e.what());
  }
  if (m.input_size < 16 || m.input_size > 1024) return Status::InvalidModel(path + ": input_size out of range");
  for (float s : m.std) {
    if (!(s > 0)) return Status::InvalidModel(path + ": std must be positive");
  }
  if (m.fake_index != 0 && m.fake_index != 1) return Status::InvalidModel(path + ": fake_index must be 0 or 1");
  if (!(m.threshold > 0 && m.threshold < 1)) return Status::InvalidModel(path + ": threshold must be in (0, 1)");
  return m;
}

std::string ModelMetadataToJson(const ModelMetadata& m) {
  const char* out = m.output == OutputKind::kLogit         ? "logit"
                    : m.output == OutputKind::kProbability ? "probability"
                                                           : "softmax2";
  nlohmann::json j = {{"name", m.name},
                      {"version", m.version},
                      {"input_size", m.input_size},
                      {"mean", m.mean},
                      {"std", m.std},
                      {"output", out},
                      {"fake_index", m.fake_index},
                      {"face_score", FaceScoreName(m.face_score)},
                      {"calibration", {{"method", m.calibration_method}, {"a", m.calib_a}, {"b", m.calib_b}}},
                      {"threshold", m.threshold},
                      {"trained", m.trained}};
  return j.dump(2);
}

float ProbabilityToLogit(float p) {
  p = std::clamp(p, 1e-7f, 1 - 1e-7f);
  return std::log(p / (1 - p));
}

float Calibrate(const ModelMetadata& m, float z) {
  double t = static_cast<double>(m.calib_a) * z + m.calib_b;
  return static_cast<float>(1.0 / (1.0 + std::exp(-t)));
}

}  // namespace deepscan::infer
