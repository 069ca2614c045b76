#include "serve/jobs.h"

#include <cstdio>
#include <random>

#include "report/report.h"

namespace deepscan::serve {

const char* JobStateName(JobState s) {
  switch (s) {
    case JobState::kQueued: return "queued";
    case JobState::kRunning: return "running";
    case JobState::kDone: return "done";
    case JobState::kFailed: return "failed";
  }
  return "unknown";
}

std::string NewJobId() {
  // std::random_device reads the kernel's entropy source (getrandom / /dev/urandom) on Linux.
  static thread_local std::random_device rd;
  std::string id;
  id.reserve(32);
  for (int i = 0; i < 4; ++i) {
    char buf[9];
    std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(rd()));
    id += buf;
  }
  return id;
}

void CountScan(ServiceMetrics* metrics, const std::string& variant, const VideoVerdict& v, double latency_s) {
  metrics->jobs.With({std::string(StatusName(v.status))}).Inc();
  const StageTimings& t = v.timings;
  metrics->stage_seconds.With({"open"}).Inc(t.open_s);
  metrics->stage_seconds.With({"decode"}).Inc(t.decode_s);
  metrics->stage_seconds.With({"convert"}).Inc(t.convert_s);
  metrics->stage_seconds.With({"detect"}).Inc(t.detect_s);
  metrics->stage_seconds.With({"classify"}).Inc(t.classify_s);
  metrics->faces.With({"/v1/scan"}).Inc(static_cast<double>(t.faces_classified));
  // A/B: every scan this replica finishes, answered inline or polled as a job.
  const std::string label = v.status == VideoStatus::kError ? "error" : v.score ? v.label : "no_face";
  metrics->variant_requests.With({variant, "/v1/scan"}).Inc();
  metrics->variant_verdicts.With({variant, "/v1/scan", label}).Inc();
  if (v.score && v.status != VideoStatus::kError) metrics->variant_scores.With({variant, "/v1/scan"}).Observe(*v.score);
  metrics->variant_latency.With({variant, "/v1/scan"}).Observe(latency_s);
  if (v.status == VideoStatus::kError) {
    metrics->job_failures.With({std::string(CodeName(v.error.ok() ? Code::kInternal : v.error.code()))}).Inc();
  }
}

namespace {

// The scanner names the file it read; clients sent a name, and the server's folders are none of
// their business.
std::string Redact(std::string text, const std::string& file, const std::string& name) {
  for (size_t at = text.find(file); !file.empty() && at != std::string::npos; at = text.find(file, at + name.size())) {
    text.replace(at, file.size(), name);
  }
  return text;
}

}  // namespace

JobOutcome OutcomeOfScan(VideoVerdict v, const std::string& file, const std::string& name, const ModelInfo& model,
                         const ScanOptions& options) {
  JobOutcome out;
  v.path = name;  // never the server's file
  for (std::string& w : v.warnings) w = Redact(w, file, name);
  if (!v.error.ok()) v.error = Status(v.error.code(), Redact(v.error.message(), file, name));
  if (v.status == VideoStatus::kError) {
    out.error = v.error.ok() ? Status::Internal("scan failed without a reason") : v.error;
    return out;
  }
  if (!v.crops.empty()) {
    out.crops = std::make_shared<const std::vector<FaceCrop>>(std::move(v.crops));
    v.crops.clear();
  }
  report::ScanReport rep;
  rep.model = model;
  rep.options = options;
  rep.videos.push_back(std::move(v));
  // The CLI's own JSON writer, parsed back: the answer is byte-for-byte the CLI's schema.
  auto report = std::make_shared<const nlohmann::json>(
      nlohmann::json::parse(report::Render(rep, report::Format::kJson), nullptr, /*allow_exceptions=*/false));
  if (report->is_discarded()) {
    out.error = Status::Internal("the report writer produced invalid JSON");
    out.crops.reset();
    return out;
  }
  out.report = std::move(report);
  return out;
}

}  // namespace deepscan::serve
