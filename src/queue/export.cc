#include "queue/export.h"

#include <hdf5.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "report/report.h"

namespace deepscan::queue {
namespace {

using nlohmann::json;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Status WriteJsonl(const std::vector<ExportRow>& rows, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Status::IoError("cannot write " + path);
  for (const ExportRow& r : rows) out << RowToJson(r).dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
  out.flush();
  if (!out) return Status::IoError("cannot write " + path);
  return Status::Ok();
}

// Closes an HDF5 handle on scope exit.
struct H5Handle {
  hid_t id = -1;
  herr_t (*close)(hid_t) = nullptr;
  ~H5Handle() {
    if (id >= 0 && close != nullptr) close(id);
  }
};

class H5Writer {
 public:
  H5Writer(hid_t file, hsize_t n) : file_(file), n_(n) {}
  bool ok() const { return ok_; }

  void Strings(const char* name, const std::vector<std::string>& values) {
    H5Handle type{H5Tcopy(H5T_C_S1), H5Tclose};
    H5Tset_size(type.id, H5T_VARIABLE);
    H5Tset_cset(type.id, H5T_CSET_UTF8);
    std::vector<const char*> ptrs;
    for (const auto& v : values) ptrs.push_back(v.c_str());
    Write(name, type.id, ptrs.empty() ? nullptr : ptrs.data());
  }
  void Doubles(const char* name, const std::vector<double>& values) {
    Write(name, H5T_NATIVE_DOUBLE, values.empty() ? nullptr : values.data(), H5T_IEEE_F64LE);
  }
  void Ints(const char* name, const std::vector<int64_t>& values) {
    Write(name, H5T_NATIVE_INT64, values.empty() ? nullptr : values.data(), H5T_STD_I64LE);
  }
  template <typename T>
  void Vlen(const char* name, const std::vector<std::vector<T>>& values, hid_t mem_base, hid_t file_base) {
    H5Handle mem{H5Tvlen_create(mem_base), H5Tclose};
    H5Handle file{H5Tvlen_create(file_base), H5Tclose};
    std::vector<hvl_t> v(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      v[i].len = values[i].size();
      v[i].p = values[i].empty() ? nullptr : const_cast<T*>(values[i].data());
    }
    Write(name, mem.id, v.empty() ? nullptr : v.data(), file.id);
  }
  void Attribute(const char* name, const std::string& value) {
    H5Handle type{H5Tcopy(H5T_C_S1), H5Tclose};
    H5Tset_size(type.id, value.size() + 1);
    H5Tset_cset(type.id, H5T_CSET_UTF8);
    H5Handle space{H5Screate(H5S_SCALAR), H5Sclose};
    H5Handle attr{H5Acreate2(file_, name, type.id, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
    if (attr.id < 0 || H5Awrite(attr.id, type.id, value.c_str()) < 0) ok_ = false;
  }
  void Attribute(const char* name, int64_t value) {
    H5Handle space{H5Screate(H5S_SCALAR), H5Sclose};
    H5Handle attr{H5Acreate2(file_, name, H5T_STD_I64LE, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
    if (attr.id < 0 || H5Awrite(attr.id, H5T_NATIVE_INT64, &value) < 0) ok_ = false;
  }

 private:
  void Write(const char* name, hid_t mem_type, const void* data, hid_t file_type = -1) {
    if (file_type < 0) file_type = mem_type;
    hsize_t dims[1] = {n_};
    H5Handle space{H5Screate_simple(1, dims, nullptr), H5Sclose};
    H5Handle set{H5Dcreate2(file_, name, file_type, space.id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose};
    if (set.id < 0) {
      ok_ = false;
      return;
    }
    if (n_ > 0 && H5Dwrite(set.id, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) ok_ = false;
  }

  hid_t file_;
  hsize_t n_;
  bool ok_ = true;
};

Status WriteHdf5(const std::vector<ExportRow>& rows, const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors are returned, not printed
  H5Handle file{H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose};
  if (file.id < 0) return Status::IoError("cannot create " + path);
  H5Writer w(file.id, rows.size());
  auto strings = [&](auto get) {
    std::vector<std::string> v;
    for (const auto& r : rows) v.push_back(get(r));
    return v;
  };
  auto doubles = [&](auto get) {
    std::vector<double> v;
    for (const auto& r : rows) v.push_back(get(r));
    return v;
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  w.Strings("entry", strings([](const ExportRow& r) { return r.entry; }));
  w.Strings("path", strings([](const ExportRow& r) { return r.video; }));
  w.Strings("name", strings([](const ExportRow& r) { return r.name; }));
  w.Strings("hash", strings([](const ExportRow& r) { return r.hash; }));
  w.Strings("status", strings([](const ExportRow& r) { return r.status; }));
  w.Strings("label", strings([](const ExportRow& r) { return r.label; }));
  w.Strings("worker", strings([](const ExportRow& r) { return r.worker; }));
  w.Strings("error_code", strings([](const ExportRow& r) {
              return r.error.ok() ? std::string() : std::string(CodeName(r.error.code()));
            }));
  w.Strings("error_message", strings([](const ExportRow& r) { return r.error.message(); }));
  w.Doubles("score", doubles([&](const ExportRow& r) { return r.has_score ? r.score : nan; }));
  w.Doubles("threshold", doubles([&](const ExportRow& r) { return r.verdict.is_null() ? nan : r.threshold; }));
  w.Doubles("open_s", doubles([](const ExportRow& r) { return r.timings.open_s; }));
  w.Doubles("decode_s", doubles([](const ExportRow& r) { return r.timings.decode_s; }));
  w.Doubles("convert_s", doubles([](const ExportRow& r) { return r.timings.convert_s; }));
  w.Doubles("detect_s", doubles([](const ExportRow& r) { return r.timings.detect_s; }));
  w.Doubles("classify_s", doubles([](const ExportRow& r) { return r.timings.classify_s; }));
  w.Doubles("total_s", doubles([](const ExportRow& r) { return r.timings.total_s; }));
  std::vector<int64_t> sampled, attempts;
  std::vector<std::vector<float>> scores;
  std::vector<std::vector<int>> ids;
  for (const auto& r : rows) {
    sampled.push_back(r.timings.frames_sampled);
    attempts.push_back(r.attempts);
    scores.push_back(r.identity_scores);
    ids.push_back(r.identity_ids);
  }
  w.Ints("frames_sampled", sampled);
  w.Ints("attempts", attempts);
  w.Vlen("identity_scores", scores, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE);
  w.Vlen("identity_ids", ids, H5T_NATIVE_INT, H5T_STD_I32LE);
  w.Attribute("format", std::string("deepscan-queue-results"));
  w.Attribute("format_version", int64_t{1});
  if (!w.ok()) return Status::IoError("cannot write " + path + " (HDF5)");
  return Status::Ok();
}

}  // namespace

ExportRow RowOf(const Outcome& o) {
  ExportRow r;
  r.entry = o.entry;
  if (o.done) {
    r.video = o.done->video;
    r.name = o.done->name;
    r.hash = o.done->key;
    r.worker = o.done->worker;
  }
  if (o.result) {
    const VideoVerdict& v = o.result->verdict;
    r.status = std::string(StatusName(v.status));
    r.label = v.label;
    r.has_score = v.score.has_value();
    r.score = v.score.value_or(0);
    r.threshold = v.threshold;
    for (const IdentityVerdict& id : v.identities) {
      if (!id.score) continue;
      r.identity_scores.push_back(*id.score);
      r.identity_ids.push_back(id.track_id);
    }
    r.timings = v.timings;
    r.attempts = o.result->attempt;
    r.verdict = report::VideoToJson(v);
    r.verdict["path"] = r.name.empty() ? r.video : r.name;
  } else if (o.done) {
    r.status = "error";
    r.error = Status::Internal("the result " + o.done->key + " is missing from redis");
  }
  if (o.failed && !o.done) {
    r.video = o.failed->video;
    r.worker = o.failed->worker;
    r.status = "error";
    r.attempts = o.failed->attempts;
    r.error = o.failed->error;
  }
  return r;
}

json RowToJson(const ExportRow& r) {
  json ids = json::array();
  for (size_t i = 0; i < r.identity_scores.size(); ++i) {
    ids.push_back({{"track_id", r.identity_ids[i]},
                   {"score", report::Round(r.identity_scores[i], 4)},
                   {"label", r.identity_scores[i] >= r.threshold ? "fake" : "real"}});
  }
  const StageTimings& t = r.timings;
  json j = {{"entry", r.entry},
            {"video", r.video},
            {"name", r.name},
            {"hash", r.hash.empty() ? json(nullptr) : json(r.hash)},
            {"status", r.status},
            {"label", r.label.empty() ? json(nullptr) : json(r.label)},
            {"score", r.has_score ? json(report::Round(r.score, 4)) : json(nullptr)},
            {"threshold", r.verdict.is_null() ? json(nullptr) : json(report::Round(r.threshold, 4))},
            {"identities", ids},
            {"timings",
             {{"open_s", report::Round(t.open_s, 3)},
              {"decode_s", report::Round(t.decode_s, 3)},
              {"convert_s", report::Round(t.convert_s, 3)},
              {"detect_s", report::Round(t.detect_s, 3)},
              {"classify_s", report::Round(t.classify_s, 3)},
              {"total_s", report::Round(t.total_s, 3)},
              {"frames_sampled", t.frames_sampled}}},
            {"worker", r.worker},
            {"attempts", r.attempts},
            {"error", r.error.ok() ? json(nullptr)
                                   : json({{"code", std::string(CodeName(r.error.code()))},
                                           {"message", r.error.message()}})},
            {"verdict", r.verdict}};
  return j;
}

namespace {

enum class ExportFormat { kJsonl, kHdf5 };

// The format `path`'s extension names. Errors: kInvalidArgument.
Result<ExportFormat> FormatOf(const std::string& path) {
  const std::string p = Lower(path);
  if (EndsWith(p, ".jsonl") || EndsWith(p, ".json-lines") || EndsWith(p, ".ndjson")) return ExportFormat::kJsonl;
  if (EndsWith(p, ".h5") || EndsWith(p, ".hdf5")) return ExportFormat::kHdf5;
  if (EndsWith(p, ".parquet")) {
    return Status::InvalidArgument(
        "Parquet is not written: no Parquet library is packaged for this machine; export .h5 or .jsonl "
        "(docs/queue.md)");
  }
  return Status::InvalidArgument("unknown export format for " + path + " (use .jsonl or .h5)");
}

}  // namespace

Status WriteRows(const std::vector<ExportRow>& rows, const std::string& path) {
  ASSIGN_OR_RETURN(ExportFormat format, FormatOf(path));
  return format == ExportFormat::kJsonl ? WriteJsonl(rows, path) : WriteHdf5(rows, path);
}

Result<int64_t> ExportResults(WorkQueue& queue, const std::string& path) {
  RETURN_IF_ERROR(FormatOf(path).status());  // before reading the whole queue
  std::vector<ExportRow> rows;
  RETURN_IF_ERROR(queue.ForEachOutcome([&](const Outcome& o) { rows.push_back(RowOf(o)); }));
  RETURN_IF_ERROR(WriteRows(rows, path));
  return static_cast<int64_t>(rows.size());
}

}  // namespace deepscan::queue
