#include "serve/api.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <vector>

#include <opencv2/imgcodecs.hpp>

#include "report/html_report.h"
#include "report/report.h"
#include "serve/image_probe.h"
#include "serve/request_parse.h"

namespace deepscan::serve {

// The web page's files: a fixed list, so no request path ever reaches the file system.
struct PageFile {
  std::string_view path, file, type;
};
constexpr PageFile kPageFiles[] = {{"/", "index.html", "text/html; charset=utf-8"},
                                   {"/index.html", "index.html", "text/html; charset=utf-8"},
                                   {"/app.js", "app.js", "text/javascript; charset=utf-8"},
                                   {"/app.css", "app.css", "text/css; charset=utf-8"}};

namespace {

using report::Round;

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kHealth = "/healthz";
constexpr std::string_view kReady = "/readyz";
constexpr std::string_view kMetrics = "/metrics";
constexpr std::string_view kScan = "/v1/scan";
constexpr std::string_view kFrames = "/v1/frames";
constexpr std::string_view kStream = "/v1/stream";
constexpr std::string_view kJobsTemplate = "/v1/jobs/{id}";
constexpr size_t kMaxNameBytes = 255;
constexpr std::string_view kPage = "/";

std::string MiB(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

Response FromBodyOutcome(BodyOutcome o, uint64_t limit) {
  switch (o) {
    case BodyOutcome::kOk: break;
    case BodyOutcome::kTooLarge:
      return ErrorResponse(413, "too_large", "request body exceeds the limit of " + MiB(static_cast<int64_t>(limit)));
    case BodyOutcome::kTimeout: return ErrorResponse(408, "timeout", "the request body stopped arriving");
    case BodyOutcome::kMalformed: return ErrorResponse(400, "bad_request", "malformed request body framing");
    case BodyOutcome::kIoError: return ErrorResponse(500, "io_error", "the upload could not be stored");
    case BodyOutcome::kClientGone: {
      Response r;
      r.drop = true;
      return r;
    }
  }
  return ErrorResponse(500, "internal", "unexpected body outcome");
}

Response ErrorFromStatus(const Status& s) {
  return ErrorResponse(HttpStatusFor(s.code()), CodeName(s.code()), s.message());
}

// A private temporary file for one upload, removed unless Release()d.
class TempFile {
 public:
  explicit TempFile(const std::string& dir) {
    std::string pattern = dir + "/upload-XXXXXX";
    int fd = mkstemp(pattern.data());
    if (fd >= 0) {
      close(fd);
      path_ = pattern;
    }
  }
  ~TempFile() {
    if (!path_.empty()) unlink(path_.c_str());
  }
  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  std::string Release() { return std::exchange(path_, std::string()); }

 private:
  std::string path_;
};

json JobToJson(const JobView& v) {
  json j = {{"job_id", v.id},   {"status", JobStateName(v.state)}, {"progress", Round(v.progress, 4)}, {"name", v.name},
            {"bytes", v.bytes}, {"location", "/v1/jobs/" + v.id}};
  if (v.state == JobState::kDone && v.report) j["result"] = *v.report;
  if (v.state == JobState::kFailed) {
    j["error"] = {{"code", CodeName(v.error.code())}, {"message", v.error.message()}};
  }
  return j;
}

}  // namespace

Response JsonResponse(int status, const json& body) {
  Response r;
  r.status = status;
  // Names and paths need not be UTF-8: invalid bytes become U+FFFD, as in the CLI's report.
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

Response ErrorResponse(int status, std::string_view code, std::string_view message) {
  Response r = JsonResponse(status, json{{"error", {{"code", std::string(code)}, {"message", std::string(message)}}}});
  r.error_code = std::string(code);
  return r;
}

int HttpStatusFor(Code code) {
  switch (code) {
    case Code::kOk: return 200;
    case Code::kInvalidArgument: return 400;
    case Code::kNotFound: return 404;
    case Code::kNotAVideo:
    case Code::kCorruptInput:
    case Code::kTooLarge:
    case Code::kTimeout: return 422;
    case Code::kNotSupported: return 501;
    case Code::kUnavailable: return 503;
    case Code::kInvalidModel:
    case Code::kIoError:
    case Code::kInternal: return 500;
  }
  return 500;
}

Api::Api(const ServeOptions& options, std::vector<Variant> variants, const metrics::Registry* registry,
         ServiceMetrics* metrics, std::string upload_dir)
    : options_(options),
      variants_(std::move(variants)),
      registry_(registry),
      metrics_(metrics),
      upload_dir_(std::move(upload_dir)) {}

std::string_view Api::RouteLabel(std::string_view path) {
  for (std::string_view r : {kHealth, kReady, kMetrics, kScan, kFrames, kStream}) {
    if (path == r) return r;
  }
  if (JobIdFromPath(path)) return kJobsTemplate;
  for (const PageFile& f : kPageFiles) {
    if (path == f.path) return kPage;
  }
  return "other";
}

namespace {
// The routes' methods: nullopt for a path no route serves.
std::optional<std::string_view> MethodFor(std::string_view path, const PageFile* page) {
  if (path == kScan || path == kFrames) return "POST";
  if (path == kHealth || path == kReady || path == kMetrics || path == kStream || page != nullptr) return "GET";
  if (JobIdFromPath(path)) return "GET";
  return std::nullopt;
}

const PageFile* PageFor(std::string_view path) {
  for (const PageFile& f : kPageFiles) {
    if (path == f.path) return &f;
  }
  return nullptr;
}

// A body that is never read: the routes answered from the header alone.
class NoBody : public BodyReader {
 public:
  BodyOutcome ReadToString(uint64_t, std::string*) override { return BodyOutcome::kIoError; }
  BodyOutcome ReadToFile(const std::string&, uint64_t, uint64_t*) override { return BodyOutcome::kIoError; }
};
}  // namespace

std::optional<Response> Api::Gate(const Request& req) const {
  const std::string_view path = req.path;
  const PageFile* page = PageFor(path);
  // The page is public (it asks for the key itself); what it calls is not.
  const bool public_route = path == kHealth || path == kReady || page != nullptr;
  if (!public_route && !options_.api_keys.empty()) {
    std::optional<std::string> key = PresentedApiKey(req.authorization.value_or(""), req.authorization.has_value(),
                                                     req.x_api_key.value_or(""), req.x_api_key.has_value());
    if (!key && path == kStream) {  // browsers cannot set headers on a WebSocket: ?api_key=KEY
      if (auto query = ParseQuery(req.query)) {
        if (auto it = query->find("api_key"); it != query->end()) key = it->second;
      }
    }
    if (!key || !MatchesAnyKey(*key, options_.api_keys)) {
      Response r = ErrorResponse(
          401, "unauthorized",
          key ? "the API key is not valid" : "an API key is required: Authorization: Bearer <key> or X-API-Key: <key>");
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"deepscan\"");
      return r;
    }
  }
  const std::optional<std::string_view> method = MethodFor(path, options_.web_dir.empty() ? nullptr : page);
  if (!method) return ErrorResponse(404, "not_found", "no route " + std::string(path));
  if (req.method != *method) {
    Response r = ErrorResponse(405, "method_not_allowed", "use " + std::string(*method) + " for " + std::string(path));
    r.headers.emplace_back("Allow", std::string(*method));
    return r;
  }
  if (std::optional<std::string_view> id = JobIdFromPath(path); id && id->empty()) {
    return ErrorResponse(400, "invalid_argument", "a job id is 32 lowercase hexadecimal digits");
  }
  return std::nullopt;
}

Admission Api::Admit(const Request& req) {
  Admission a;
  if (std::optional<Response> refused = Gate(req)) {
    a.answer = std::move(*refused);
  } else if (req.path == kScan) {
    ScanArgs args;
    if (std::optional<Response> refused = CheckScan(req, &args)) {
      a.answer = std::move(*refused);
    } else {
      a.body = Admission::Body::kFile;
      a.limit = static_cast<uint64_t>(options_.max_upload_bytes);
    }
  } else if (req.path == kFrames) {
    if (std::optional<Response> refused = CheckFrames(req)) {
      a.answer = std::move(*refused);
    } else {
      a.body = req.has_body ? Admission::Body::kMemory : Admission::Body::kNone;
      a.limit = static_cast<uint64_t>(options_.max_image_bytes);
    }
  } else if (JobIdFromPath(req.path) && std::any_of(variants_.begin(), variants_.end(),
                                                     [](const Variant& v) { return v.jobs->get_blocks(); })) {
    a.body = Admission::Body::kNone;  // the job is read over the network (--queue): on a request thread
  } else {
    NoBody none;  // every other route answers from the header, at once
    a.answer = Handle(req, none);
  }
  return a;
}

Response Api::Handle(const Request& req, BodyReader& body) {
  if (std::optional<Response> refused = Gate(req)) return *refused;
  const std::string_view path = req.path;
  if (path == kHealth) return Health();
  if (path == kReady) return Ready();
  if (path == kMetrics) return Metrics();
  if (path == kScan) return Scan(req, body);
  if (path == kFrames) return Frames(req, body);
  if (path == kStream) return Stream(req);
  if (std::optional<std::string_view> id = JobIdFromPath(path)) return Job(*id, req.query);
  return Page(*PageFor(path));  // Gate let only the page's files through
}

Response Api::Page(const PageFile& f) const {
  std::ifstream in(options_.web_dir + "/" + std::string(f.file), std::ios::binary);
  std::stringstream ss;
  if (!in || !(ss << in.rdbuf())) return ErrorResponse(404, "not_found", "the web page is not installed");
  Response r;
  r.body = ss.str();
  r.content_type = std::string(f.type);
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; media-src 'self' blob:");
  return r;
}

Response Api::Health() const { return JsonResponse(200, {{"status", "ok"}}); }

Response Api::Ready() const {
  if (draining_) {
    Response r = ErrorResponse(503, "shutting_down", "the server is draining before it exits");
    r.headers.emplace_back("Retry-After", std::to_string(options_.retry_after_s));
    return r;
  }
  Jobs* jobs = variants_.front().jobs;
  for (const Variant& v : variants_) {
    if (!v.jobs->healthy()) return Unavailable(Status::IoError("the job queue (--queue) does not answer"));
    if (v.jobs->Full()) return Busy("the scan queue is full");
  }
  json body = {{"status", "ready"},
               {"workers", jobs->workers()},
               {"running", jobs->running()},
               {"queued", jobs->queued()},
               {"max_queued", options_.jobs.max_queued},
               {"model", report::ModelToJson(jobs->model())}};
  if (variants_.size() > 1) {
    json vs = json::array();
    for (const Variant& v : variants_) {
      vs.push_back({{"name", v.name}, {"weight", v.weight}, {"model", report::ModelToJson(v.jobs->model())}});
    }
    body["variants"] = vs;
  }
  return JsonResponse(200, body);
}

Response Api::Metrics() const {
  Response r;
  r.body = registry_->Render();
  r.content_type = metrics::kContentType;
  return r;
}

Response Api::Unavailable(const Status& s) const {
  if (s.code() != Code::kIoError) return ErrorFromStatus(s);
  Response r = ErrorResponse(503, "unavailable", s.message());
  r.headers.emplace_back("Retry-After", std::to_string(options_.retry_after_s));
  return r;
}

Response Api::Busy(std::string_view message) const {
  Response r = ErrorResponse(503, "busy", message);
  r.headers.emplace_back("Retry-After", std::to_string(options_.retry_after_s));
  return r;
}

std::optional<Response> Api::CheckScan(const Request& req, ScanArgs* args) const {
  const std::string type = MediaType(req.content_type);
  if (type.rfind("video/", 0) != 0 && type != "application/octet-stream") {
    return ErrorResponse(415, "unsupported_media_type",
                         "send the video bytes as video/* or application/octet-stream, not '" + type + "'");
  }
  auto query = ParseQuery(req.query);
  if (!query) return ErrorResponse(400, "invalid_argument", "malformed query string");
  if (auto it = query->find("wait"); it != query->end()) {
    std::optional<bool> b = ParseBool(it->second);
    if (!b) return ErrorResponse(400, "invalid_argument", "wait must be true or false");
    args->wait = *b;
  }
  if (auto it = query->find("name"); it != query->end() && !it->second.empty()) {
    if (it->second.size() > kMaxNameBytes) return ErrorResponse(400, "invalid_argument", "name is too long");
    for (unsigned char c : it->second) {
      if (c < 0x20 || c == 0x7f) return ErrorResponse(400, "invalid_argument", "name holds control characters");
    }
    args->name = it->second;
  }
  const auto limit = static_cast<uint64_t>(options_.max_upload_bytes);
  if (req.content_length && *req.content_length > limit) {
    Response r = FromBodyOutcome(BodyOutcome::kTooLarge, limit);
    r.close = true;
    return r;
  }
  if (!req.has_body) return ErrorResponse(422, "corrupt_input", "empty upload: send the video bytes as the body");
  Result<size_t> variant = PickVariant(req);
  if (!variant.ok()) return ErrorFromStatus(variant.status());
  if (!variants_[*variant].jobs->healthy()) {
    return Unavailable(Status::IoError("the job queue (--queue) does not answer; try again later"));
  }
  if (variants_[*variant].jobs->Full()) {
    return Busy("the scan queue is full (" + std::to_string(options_.jobs.max_queued) + " jobs)");
  }
  return std::nullopt;
}

Response Api::Scan(const Request& req, BodyReader& body) {
  ScanArgs args;
  if (std::optional<Response> refused = CheckScan(req, &args)) return *refused;
  const bool wait = args.wait;
  const std::string& name = args.name;
  const auto limit = static_cast<uint64_t>(options_.max_upload_bytes);
  Result<size_t> variant = PickVariant(req);
  if (!variant.ok()) return ErrorFromStatus(variant.status());
  const Variant& use = variants_[*variant];
  Jobs* jobs = use.jobs;
  std::optional<Jobs::Slot> slot = jobs->Reserve();
  if (!slot) return Busy("the scan queue is full (" + std::to_string(options_.jobs.max_queued) + " jobs)");
  TempFile file(upload_dir_);
  if (!file.ok()) return ErrorResponse(500, "io_error", "cannot create a file for the upload");
  uint64_t bytes = 0;
  BodyOutcome o = body.ReadToFile(file.path(), limit, &bytes);
  metrics_->upload_bytes.Inc(static_cast<double>(bytes));
  if (o != BodyOutcome::kOk) return FromBodyOutcome(o, limit);

  Result<std::string> submitted = jobs->Submit(std::move(*slot), file.Release(), name, static_cast<int64_t>(bytes));
  if (!submitted.ok()) return Unavailable(submitted.status());
  const std::string id = *submitted;
  if (wait && bytes <= static_cast<uint64_t>(options_.sync_max_bytes)) {
    Result<std::optional<JobView>> waited = jobs->Wait(id);
    if (!waited.ok()) return Unavailable(waited.status());
    const std::optional<JobView>& v = *waited;
    if (!v) return ErrorResponse(500, "internal", "the job vanished");
    if (v->state == JobState::kFailed) {
      Response r = ErrorFromStatus(v->error);
      r.headers.emplace_back("X-Deepscan-Variant", use.name);
      return r;
    }
    Response r = JsonResponse(200, *v->report);
    r.headers.emplace_back("X-Deepscan-Variant", use.name);
    return r;
  }
  Result<std::optional<JobView>> got = jobs->Get(id);
  JobView v;  // just submitted: queued, unless its state could be read
  if (got.ok() && got->has_value()) {
    v = **got;
  } else {
    v.id = id;
    v.name = name;
    v.bytes = static_cast<int64_t>(bytes);
  }
  json job = JobToJson(v);
  if (variants_.size() > 1) job["variant"] = use.name;
  Response r = JsonResponse(202, job);
  r.headers.emplace_back("Location", "/v1/jobs/" + id);
  r.headers.emplace_back("X-Deepscan-Variant", use.name);
  return r;
}

Result<size_t> Api::PickVariant(const Request& req) const {
  std::optional<std::string> asked = req.variant;
  if (!asked) {
    auto query = ParseQuery(req.query);
    if (!query) return Status::InvalidArgument("malformed query string");
    if (auto it = query->find("variant"); it != query->end()) asked = it->second;
  }
  if (asked) {
    for (size_t i = 0; i < variants_.size(); ++i) {
      if (variants_[i].name == *asked) return i;
    }
    std::string names;
    for (const Variant& v : variants_) names += (names.empty() ? "" : ", ") + v.name;
    return Status::InvalidArgument("no model variant '" + asked->substr(0, 64) + "' (this server has: " + names + ")");
  }
  if (variants_.size() == 1) return size_t{0};
  double total = 0;
  for (const Variant& v : variants_) total += v.weight;
  thread_local std::mt19937_64 rng{std::random_device{}()};
  double x = std::uniform_real_distribution<double>(0.0, total)(rng);
  for (size_t i = 0; i < variants_.size(); ++i) {
    if (x < variants_[i].weight) return i;
    x -= variants_[i].weight;
  }
  return variants_.size() - 1;
}

void Api::CountVariant(size_t variant, std::string_view route, std::optional<float> score, std::string_view label,
                       double seconds) const {
  const std::string& name = variants_[variant].name;
  const std::string r(route);
  metrics_->variant_requests.With({name, r}).Inc();
  metrics_->variant_verdicts.With({name, r, std::string(label)}).Inc();
  if (score) metrics_->variant_scores.With({name, r}).Observe(*score);
  metrics_->variant_latency.With({name, r}).Observe(seconds);
}

Response Api::Stream(const Request& req) const {
  if (!req.websocket_upgrade) {
    Response r = ErrorResponse(426, "upgrade_required", "/v1/stream is a WebSocket: send Upgrade: websocket");
    r.headers.emplace_back("Upgrade", "websocket");
    return r;
  }
  if (draining_) {
    Response r = ErrorResponse(503, "shutting_down", "the server is draining before it exits");
    r.headers.emplace_back("Retry-After", std::to_string(options_.retry_after_s));
    return r;
  }
  Result<size_t> variant = PickVariant(req);
  if (!variant.ok()) return ErrorFromStatus(variant.status());
  Response r;
  r.status = 101;
  r.upgrade = true;
  r.variant = *variant;
  return r;
}

namespace {

// ?format=html: the job's report as one self-contained page (report/html_report.h), with the face
// crops the job kept (--report-crops). A failed job's page shows its error; one not finished yet is 409.
Response HtmlJobResponse(const JobView& v, const ModelInfo& model, bool keeps_crops) {
  if (v.state == JobState::kQueued || v.state == JobState::kRunning) {
    Response r =
        ErrorResponse(409, "not_done",
                      "the job is " + std::string(JobStateName(v.state)) + ": its HTML report exists once it is done");
    r.headers.emplace_back("Retry-After", "1");
    return r;
  }
  report::HtmlReport page;
  if (v.state == JobState::kDone && v.report) {
    Result<report::HtmlReport> read = report::HtmlReportFromJson(*v.report);
    if (!read.ok()) return ErrorResponse(500, "internal", read.status().message());
    page = std::move(*read);
  } else {
    page.scan.model = model;
    VideoVerdict failed;
    failed.path = v.name;
    failed.status = VideoStatus::kError;
    failed.error = v.error;
    page.scan.videos.push_back(std::move(failed));
  }
  if (page.scan.model.name == model.name) page.card = report::LoadModelCard(model.path, model.name);
  if (v.crops && !page.scan.videos.empty()) {
    page.scan.videos.front().crops = *v.crops;
  } else if (!keeps_crops) {
    page.crops_note = "this server keeps no face crops (deepscan serve --report-crops N keeps them).";
  }
  Response r;
  r.body = report::RenderHtml(page);
  r.content_type = "text/html; charset=utf-8";
  r.headers.emplace_back("Content-Security-Policy", "default-src 'none'; img-src data:; style-src 'unsafe-inline'");
  return r;
}

}  // namespace

Response Api::Job(std::string_view id, std::string_view query) const {
  auto q = ParseQuery(query);
  if (!q) return ErrorResponse(400, "invalid_argument", "malformed query string");
  bool html = false;
  if (auto it = q->find("format"); it != q->end()) {
    if (it->second != "json" && it->second != "html") {
      return ErrorResponse(400, "invalid_argument", "format must be json or html");
    }
    html = it->second == "html";
  }
  for (const Variant& variant : variants_) {
    Result<std::optional<JobView>> got = variant.jobs->Get(std::string(id));
    if (!got.ok()) return Unavailable(got.status());
    const std::optional<JobView>& v = *got;
    if (!v) continue;
    if (html) {
      Response r = HtmlJobResponse(*v, variant.jobs->model(), options_.report_crops > 0);
      r.headers.emplace_back("X-Deepscan-Variant", variant.name);
      return r;
    }
    json job = JobToJson(*v);
    if (variants_.size() > 1) job["variant"] = variant.name;
    Response r = JsonResponse(200, job);
    r.headers.emplace_back("X-Deepscan-Variant", variant.name);
    return r;
  }
  return ErrorResponse(404, "not_found", "no job " + std::string(id) + " (unknown, or finished too long ago)");
}

std::optional<Response> Api::CheckFrames(const Request& req) const {
  const std::string type = MediaType(req.content_type);
  if (type != "image/jpeg" && type != "image/png" && type != "application/octet-stream") {
    return ErrorResponse(415, "unsupported_media_type",
                         "send one image as image/jpeg, image/png or application/octet-stream, not '" + type + "'");
  }
  const auto limit = static_cast<uint64_t>(options_.max_image_bytes);
  if (req.content_length && *req.content_length > limit) {
    Response r = FromBodyOutcome(BodyOutcome::kTooLarge, limit);
    r.close = true;
    return r;
  }
  Result<size_t> variant = PickVariant(req);
  if (!variant.ok()) return ErrorFromStatus(variant.status());
  return std::nullopt;
}

Response Api::Frames(const Request& req, BodyReader& body) {
  if (std::optional<Response> refused = CheckFrames(req)) return *refused;
  const auto limit = static_cast<uint64_t>(options_.max_image_bytes);
  Result<size_t> variant = PickVariant(req);
  if (!variant.ok()) return ErrorFromStatus(variant.status());
  FrameScorer* frames = variants_[*variant].frames;
  const auto start = Clock::now();
  std::string bytes;
  BodyOutcome o = body.ReadToString(limit, &bytes);
  metrics_->upload_bytes.Inc(static_cast<double>(bytes.size()));
  if (o != BodyOutcome::kOk) return FromBodyOutcome(o, limit);

  std::optional<ImageHeader> header = ProbeImage(bytes);
  if (!header) return ErrorResponse(422, "corrupt_input", "not a JPEG or PNG image");
  if (header->width * header->height > options_.max_image_pixels) {
    return ErrorResponse(413, "too_large",
                         "image of " + std::to_string(header->width) + "x" + std::to_string(header->height) +
                             " pixels exceeds the limit of " + std::to_string(options_.max_image_pixels) + " pixels");
  }
  cv::Mat bgr;
  try {
    bgr = cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1, bytes.data()), cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    bgr.release();
  }
  if (bgr.empty()) return ErrorResponse(422, "corrupt_input", "the image could not be decoded");
  const double decode_s = std::chrono::duration<double>(Clock::now() - start).count();

  Result<FrameScore> scored = frames->Score(bgr);
  if (!scored.ok()) {
    CountVariant(*variant, kFrames, std::nullopt, "error", std::chrono::duration<double>(Clock::now() - start).count());
    // The batcher refuses crops when its queue is full or it is stopping: the server is busy, not
    // the request too large (serve/batcher.h).
    const std::string& m = scored.status().message();
    if (scored.status().code() == Code::kTooLarge && (m.rfind("overloaded", 0) == 0 || m.rfind("stopped", 0) == 0)) {
      return Busy(m);
    }
    return ErrorFromStatus(scored.status());
  }
  const FrameScore& f = *scored;
  metrics_->frame_stage_seconds.With({std::string(kFrames), "decode"}).Inc(decode_s);
  metrics_->frame_stage_seconds.With({std::string(kFrames), "detect"}).Inc(f.detect_s);
  metrics_->frame_stage_seconds.With({std::string(kFrames), "classify"}).Inc(f.classify_s);
  metrics_->faces.With({std::string(kFrames)}).Inc(static_cast<double>(f.faces.size()));
  const double total_s = std::chrono::duration<double>(Clock::now() - start).count();
  metrics_->frame_seconds.Observe(total_s);

  json faces = json::array();
  for (const FaceResult& face : f.faces) faces.push_back(report::FaceToJson(face));
  const float threshold = frames->threshold();
  json label = nullptr;
  if (f.score) label = *f.score >= threshold ? "fake" : "real";
  CountVariant(*variant, kFrames, f.score, f.score ? label.get<std::string>() : "no_face", total_s);
  Response r = JsonResponse(200, {{"width", bgr.cols},
                                  {"height", bgr.rows},
                                  {"faces", faces},
                                  {"score", f.score ? json(Round(*f.score, 4)) : json(nullptr)},
                                  {"label", label},
                                  {"threshold", Round(threshold, 4)},
                                  {"model", report::ModelToJson(frames->model())},
                                  {"timings",
                                   {{"decode_s", Round(decode_s, 4)},
                                    {"detect_s", Round(f.detect_s, 4)},
                                    {"classify_s", Round(f.classify_s, 4)},
                                    {"total_s", Round(total_s, 4)}}}});
  r.headers.emplace_back("X-Deepscan-Variant", variants_[*variant].name);
  return r;
}

}  // namespace deepscan::serve
