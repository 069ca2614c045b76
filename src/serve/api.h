// serve::Api: the routes of `deepscan serve` (docs/serve.md, docs/openapi.yaml).
//
//   GET  /healthz        200 while the process runs
//   GET  /readyz         200 when the models are loaded and the job queue has room, else 503
//   GET  /metrics        Prometheus text format 0.0.4
//   POST /v1/scan        body = a video; 200 with the scan report (small uploads, ?wait=true),
//                        else 202 with a job id
//   GET  /v1/jobs/{id}   a job's state, progress, report or error; ?format=html: its report as
//                        one self-contained page (409 until the job is done)
//   POST /v1/frames      body = one JPEG/PNG; its faces and scores
//   GET  /v1/stream      WebSocket upgrade: a live stream of frames (serve/stream.h); Handle()
//                        only checks it (401, 405, 426) and answers `upgrade`: the server
//                        reserves a stream place (503 when none) and upgrades
//
// In:  a Request (header only): Admit() decides, without blocking, whether it is answered at
//      once (every route but /v1/scan and /v1/frames, and every refusal) or needs its body; then
//      Handle() runs the route with the body, already read whole by the connection.
// Out: a Response. Checks run in this order, each before the body is read: target, API key
//      (every route but /healthz, /readyz), route (404), method (405 + Allow), content type
//      (415), declared length (413), queue room (503 + Retry-After). Every error body is
//      {"error": {"code", "message"}}. Handle() runs the same checks again (the queue may have
//      filled while the body arrived).
// Threading: Admit() runs on the server's I/O threads and must never block (no route it answers
//      waits for a scan or a model); Handle() runs on the request threads, many at once. Api
//      holds no per-request state. Scans run on the job backend's workers (serve/jobs.h); with
//      one whose Get blocks (--queue), /v1/jobs/{id} is answered on a request thread; frames on the request thread
//      (FrameScorer pools).
#ifndef DEEPSCAN_SERVE_API_H_
#define DEEPSCAN_SERVE_API_H_

#include <atomic>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "deepscan/status.h"
#include "serve/exchange.h"
#include "serve/frame_scorer.h"
#include "serve/metrics.h"
#include "serve/jobs.h"
#include "serve/serve_options.h"
#include "serve/service_metrics.h"

namespace deepscan::serve {

struct PageFile;  // api.cc: one file of the web page

// One model variant served (A/B, docs/serve.md): its name ("a", "b"), its share of the requests
// that do not choose one, and its scan jobs and frame scorer (each with its own classifier).
struct Variant {
  std::string name;
  double weight = 1;
  Jobs* jobs = nullptr;
  FrameScorer* frames = nullptr;
};

// The HTTP status for a scan or frame that failed with `code` (docs/serve.md): a video or image
// the server cannot use is 422 (not_a_video, corrupt_input, too_large, timeout), a bad argument
// 400, a broken server 500 (invalid_model, io_error, internal), a missing feature 501.
int HttpStatusFor(Code code);

class Api {
 public:
  // Everything must outlive the Api. `upload_dir` is the server's private folder for uploads.
  // `variants`: at least one; the first is the default model's.
  Api(const ServeOptions& options, std::vector<Variant> variants, const metrics::Registry* registry,
      ServiceMetrics* metrics, std::string upload_dir);

  // From the header alone: the answer, or where the body goes before Handle().
  Admission Admit(const Request& request);
  // The route, with the whole body behind `body`.
  Response Handle(const Request& request, BodyReader& body);

  // The route label for metrics and logs: the route's template ("/v1/jobs/{id}"), or "other"
  // for paths no route serves (so clients cannot grow the label set).
  static std::string_view RouteLabel(std::string_view path);

  // /readyz turns 503 from now on (draining).
  void SetDraining() { draining_ = true; }

 private:
  struct ScanArgs {
    bool wait = true;
    std::string name = "upload";
  };
  // API key, route, method, job id form: the refusal, or nullopt.
  std::optional<Response> Gate(const Request& request) const;
  // The pre-body checks of /v1/scan (fills `args`) and /v1/frames: the refusal, or nullopt.
  std::optional<Response> CheckScan(const Request& request, ScanArgs* args) const;
  std::optional<Response> CheckFrames(const Request& request) const;
  Response Health() const;
  Response Ready() const;
  Response Metrics() const;
  Response Scan(const Request& request, BodyReader& body);
  Response Job(std::string_view id, std::string_view query) const;  // ?format=json|html
  Response Frames(const Request& request, BodyReader& body);
  Response Stream(const Request& request) const;
  Response Busy(std::string_view message) const;
  // A job backend's error: kIoError (the queue is unreachable) is 503 `unavailable` + Retry-After,
  // anything else as ErrorFromStatus.
  Response Unavailable(const Status& s) const;
  // The variant a request asks for (X-Deepscan-Variant or ?variant=), else one drawn by weight.
  // Errors: kInvalidArgument (an unknown name).
  Result<size_t> PickVariant(const Request& request) const;
  // Counts a request's outcome under its variant (deepscan_variant_* metrics).
  void CountVariant(size_t variant, std::string_view route, std::optional<float> score, std::string_view label,
                    double seconds) const;
  Response Page(const PageFile& file) const;  // a file of the web page (web/)  // 503 + Retry-After

  const ServeOptions& options_;
  const std::vector<Variant> variants_;
  const metrics::Registry* registry_;
  ServiceMetrics* metrics_;
  const std::string upload_dir_;
  std::atomic<bool> draining_{false};
};

}  // namespace deepscan::serve

#endif  // DEEPSCAN_SERVE_API_H_
