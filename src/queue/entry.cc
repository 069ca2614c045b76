#include "queue/entry.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "report/base64.h"
#include "report/report.h"

namespace deepscan::queue {
namespace {

using nlohmann::json;

constexpr int kRecordFormat = 1;

bool IsHex32(std::string_view s) {
  if (s.size() != 32) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool ParseDouble(const std::string& s, double* out) {
  if (s.empty() || s.size() > 64) return false;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

std::string FormatTime(double t) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", t);
  return buf;
}

Status Corrupt(const std::string& what) { return Status::CorruptInput("queue record: " + what); }

// Strict accessors: the field exists with the right type.
bool GetString(const json& j, const char* k, std::string* out) {
  auto it = j.find(k);
  if (it == j.end() || !it->is_string()) return false;
  *out = it->get<std::string>();
  return true;
}
bool GetNumber(const json& j, const char* k, double* out) {
  auto it = j.find(k);
  if (it == j.end() || !it->is_number()) return false;
  *out = it->get<double>();
  return std::isfinite(*out);
}
bool GetInt(const json& j, const char* k, int lo, int hi, int* out) {
  auto it = j.find(k);
  if (it == j.end() || !it->is_number_integer()) return false;
  int64_t v = it->get<int64_t>();
  if (v < lo || v > hi) return false;
  *out = static_cast<int>(v);
  return true;
}

Result<json> ParseObject(std::string_view text) {
  if (text.size() > (size_t{64} << 20)) return Corrupt("larger than 64 MiB");
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Corrupt("not a JSON object");
  int format = 0;
  if (!GetInt(j, "format", 1, 1000, &format) || format != kRecordFormat) return Corrupt("unknown format");
  return j;
}

}  // namespace

bool IsUrl(std::string_view video) {
  size_t p = video.find("://");
  if (p == std::string_view::npos || p == 0) return false;
  for (size_t i = 0; i < p; ++i) {
    char c = video[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && ((c >= '0' && c <= '9') || c == '+' ||
                                                                          c == '-' || c == '.')))) {
      return false;
    }
  }
  return true;
}

bool ValidEntryId(std::string_view id) {
  size_t dash = id.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == id.size() || id.size() > 41) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    if (i == dash) continue;
    if (id[i] < '0' || id[i] > '9') return false;
  }
  return true;
}

std::vector<std::string> EncodeEntry(const VideoEntry& e) {
  std::vector<std::string> f = {"v", "1", "video", e.video};
  if (!e.name.empty()) f.insert(f.end(), {"name", e.name});
  if (!e.job.empty()) f.insert(f.end(), {"job", e.job});
  if (e.bytes >= 0) f.insert(f.end(), {"bytes", std::to_string(e.bytes)});
  f.insert(f.end(), {"submitted", FormatTime(e.submitted_s)});
  return f;
}

Result<VideoEntry> DecodeEntry(std::string id, const std::vector<std::string>& fields) {
  if (fields.size() % 2 != 0) return Corrupt("odd number of stream fields");
  VideoEntry e;
  e.id = std::move(id);
  bool have_version = false, have_video = false, have_submitted = false;
  for (size_t i = 0; i < fields.size(); i += 2) {
    const std::string& k = fields[i];
    const std::string& v = fields[i + 1];
    if (k == "v") {
      if (v != "1") return Corrupt("unknown entry version '" + v.substr(0, 16) + "'");
      have_version = true;
    } else if (k == "video") {
      if (v.empty()) return Corrupt("empty video");
      if (v.size() > kMaxVideoBytes) return Corrupt("video longer than 4096 bytes");
      if (v.find('\0') != std::string::npos) return Corrupt("NUL in the video");
      e.video = v;
      have_video = true;
    } else if (k == "name") {
      if (v.size() > kMaxNameBytes) return Corrupt("name longer than 1024 bytes");
      if (v.find('\0') != std::string::npos) return Corrupt("NUL in the name");
      e.name = v;
    } else if (k == "job") {
      if (!IsHex32(v)) return Corrupt("job is not 32 lowercase hex digits");
      e.job = v;
    } else if (k == "bytes") {
      int64_t b = -1;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), b);
      if (ec != std::errc() || end != v.data() + v.size() || b < 0) return Corrupt("bytes is not a size");
      e.bytes = b;
    } else if (k == "submitted") {
      if (!ParseDouble(v, &e.submitted_s)) return Corrupt("submitted is not a number");
      have_submitted = true;
    }
  }
  if (!have_version) return Corrupt("no entry version");
  if (!have_video) return Corrupt("no video");
  if (!have_submitted) return Corrupt("no submitted time");
  return e;
}

std::string EncodeResult(const ResultRecord& r) {
  json j = {{"format", kRecordFormat},   {"key", r.key},         {"video", r.video},
            {"entry", r.entry},          {"worker", r.worker},   {"attempt", r.attempt},
            {"scanned_at", r.scanned_at}, {"verdict", report::VideoToJson(r.verdict)}};
  if (!r.verdict.crops.empty()) {
    json crops = json::array();
    for (const FaceCrop& c : r.verdict.crops) {
      crops.push_back({{"track_id", c.track_id}, {"frame", c.frame}, {"face", c.face}, {"score", c.score},
                       {"jpeg", report::Base64(c.jpeg)}, {"heatmap", report::Base64(c.heatmap_png)}});
    }
    j["crops"] = std::move(crops);
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

Status DecodeCrops(const json& j, std::vector<FaceCrop>* out) {
  if (!j.is_array() || j.size() > kMaxCrops) return Corrupt("crops is not an array of at most 256");
  const size_t max_text = (kMaxCropBytes + 2) / 3 * 4;
  for (const json& c : j) {
    if (!c.is_object()) return Corrupt("a crop is not an object");
    FaceCrop crop;
    double score = 0;
    std::string jpeg, heatmap;
    if (!GetInt(c, "track_id", -1, 1 << 30, &crop.track_id) || !GetInt(c, "frame", 0, 1 << 30, &crop.frame) ||
        !GetInt(c, "face", 0, 1 << 20, &crop.face) || !GetNumber(c, "score", &score) || score < 0 || score > 1 ||
        !GetString(c, "jpeg", &jpeg) || !GetString(c, "heatmap", &heatmap) || jpeg.size() > max_text ||
        heatmap.size() > max_text) {
      return Corrupt("a crop's fields are missing, of the wrong type or out of range");
    }
    crop.score = static_cast<float>(score);
    Result<std::string> bytes = report::Base64Decode(jpeg);
    if (!bytes.ok() || bytes->empty()) return Corrupt("a crop's jpeg is not base64");
    crop.jpeg = std::move(*bytes);
    bytes = report::Base64Decode(heatmap);
    if (!bytes.ok()) return Corrupt("a crop's heatmap is not base64");
    crop.heatmap_png = std::move(*bytes);
    out->push_back(std::move(crop));
  }
  return Status::Ok();
}

}  // namespace

Result<ResultRecord> DecodeResult(std::string_view text) {
  ASSIGN_OR_RETURN(json j, ParseObject(text));
  ResultRecord r;
  if (!GetString(j, "key", &r.key) || r.key.empty() || r.key.size() > 128) return Corrupt("bad key");
  if (!GetString(j, "video", &r.video) || r.video.size() > kMaxVideoBytes) return Corrupt("bad video");
  if (!GetString(j, "entry", &r.entry) || !ValidEntryId(r.entry)) return Corrupt("bad entry id");
  if (!GetString(j, "worker", &r.worker) || r.worker.size() > 256) return Corrupt("bad worker");
  if (!GetInt(j, "attempt", 1, 1000000, &r.attempt)) return Corrupt("bad attempt");
  if (!GetNumber(j, "scanned_at", &r.scanned_at)) return Corrupt("bad scanned_at");
  auto v = j.find("verdict");
  if (v == j.end() || !v->is_object()) return Corrupt("no verdict");
  Result<VideoVerdict> verdict = report::VideoFromJson(*v);
  if (!verdict.ok()) return Corrupt("verdict: " + verdict.status().message());
  r.verdict = std::move(*verdict);
  if (r.verdict.status == VideoStatus::kError) return Corrupt("a result holds an error verdict");
  if (auto c = j.find("crops"); c != j.end()) RETURN_IF_ERROR(DecodeCrops(*c, &r.verdict.crops));
  return r;
}

std::string EncodeDone(const DoneRecord& d) {
  json j = {{"format", kRecordFormat}, {"key", d.key},       {"video", d.video},         {"name", d.name},
            {"worker", d.worker},      {"finished_at", d.finished_at}, {"cached", d.cached}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<DoneRecord> DecodeDone(std::string_view text) {
  ASSIGN_OR_RETURN(json j, ParseObject(text));
  DoneRecord d;
  if (!GetString(j, "key", &d.key) || d.key.empty() || d.key.size() > 128) return Corrupt("bad key");
  if (!GetString(j, "video", &d.video) || d.video.size() > kMaxVideoBytes) return Corrupt("bad video");
  if (!GetString(j, "name", &d.name) || d.name.size() > kMaxNameBytes) return Corrupt("bad name");
  if (!GetString(j, "worker", &d.worker) || d.worker.size() > 256) return Corrupt("bad worker");
  if (!GetNumber(j, "finished_at", &d.finished_at)) return Corrupt("bad finished_at");
  auto c = j.find("cached");
  if (c == j.end() || !c->is_boolean()) return Corrupt("bad cached");
  d.cached = c->get<bool>();
  return d;
}

bool CodeFromName(std::string_view name, Code* code) {
  for (int c = static_cast<int>(Code::kInvalidArgument); c <= static_cast<int>(Code::kInternal); ++c) {
    if (CodeName(static_cast<Code>(c)) == name) {
      *code = static_cast<Code>(c);
      return true;
    }
  }
  return false;
}

std::string EncodeFailure(const FailureRecord& f) {
  json j = {{"format", kRecordFormat},
            {"video", f.video},
            {"entry", f.entry},
            {"worker", f.worker},
            {"attempts", f.attempts},
            {"failed_at", f.failed_at},
            {"error", {{"code", std::string(CodeName(f.error.code()))}, {"message", f.error.message()}}}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<FailureRecord> DecodeFailure(std::string_view text) {
  ASSIGN_OR_RETURN(json j, ParseObject(text));
  FailureRecord f;
  if (!GetString(j, "video", &f.video) || f.video.size() > kMaxVideoBytes) return Corrupt("bad video");
  if (!GetString(j, "entry", &f.entry) || !ValidEntryId(f.entry)) return Corrupt("bad entry id");
  if (!GetString(j, "worker", &f.worker) || f.worker.size() > 256) return Corrupt("bad worker");
  if (!GetInt(j, "attempts", 0, 1000000, &f.attempts)) return Corrupt("bad attempts");
  if (!GetNumber(j, "failed_at", &f.failed_at)) return Corrupt("bad failed_at");
  auto e = j.find("error");
  if (e == j.end() || !e->is_object()) return Corrupt("no error");
  std::string code_name, message;
  if (!GetString(*e, "code", &code_name) || !GetString(*e, "message", &message)) return Corrupt("bad error");
  Code code = Code::kOk;
  if (!CodeFromName(code_name, &code)) return Corrupt("unknown error code");
  f.error = Status(code, std::move(message));
  return f;
}

}  // namespace deepscan::queue
