#include "serve/service_metrics.h"

namespace deepscan::serve {

ServiceMetrics::ServiceMetrics(metrics::Registry* r)
    : requests(r->AddCounter("deepscan_http_requests_total", "HTTP requests answered, by route, method and status",
                             {"route", "method", "status"})),
      errors(r->AddCounter("deepscan_http_errors_total",
                           "HTTP answers with an error body, by route and error code (failures)", {"route", "code"})),
      latency(r->AddHistogram("deepscan_http_request_duration_seconds",
                              "Time from the first byte of a request to its response written", {"route"},
                              metrics::LatencyBuckets())),
      queue_seconds(r->AddHistogram("deepscan_job_queue_seconds", "Time a scan job waited in the queue for a worker",
                                    {}, metrics::LatencyBuckets())
                        .With({})),
      scan_seconds(r->AddHistogram("deepscan_scan_duration_seconds", "Time a worker spent scanning one video", {},
                                   metrics::LatencyBuckets())
                       .With({})),
      jobs(r->AddCounter("deepscan_scan_jobs_total", "Scan jobs finished, by verdict status", {"status"})),
      job_failures(r->AddCounter("deepscan_scan_failures_total", "Scan jobs that failed, by error code", {"code"})),
      stage_seconds(r->AddCounter("deepscan_scan_stage_seconds_total",
                                  "Wall time spent per pipeline stage, summed over scanned videos", {"stage"})),
      faces(r->AddCounter("deepscan_faces_scored_total", "Face crops classified, by route", {"route"})),
      frame_seconds(r->AddHistogram("deepscan_frame_score_seconds",
                                    "POST /v1/frames: decode, detect and classify one image", {},
                                    metrics::LatencyBuckets())
                        .With({})),
      upload_bytes(r->AddCounter("deepscan_http_request_body_bytes_total", "Request body bytes read").With({})),
      connections_open(
          r->AddGauge("deepscan_http_connections_open", "Connections accepted and not yet closed").With({})),
      connections_rejected(r->AddCounter("deepscan_http_connections_rejected_total",
                                         "Connections refused with 503 because --max-connections were open")
                               .With({})),
      store_events(r->AddCounter("deepscan_job_store_events_total",
                                 "Job store (--job-dir): jobs this replica reclaimed from a replica whose lease "
                                 "expired, and jobs it lost to another replica's newer claim",
                                 {"event"})) {}

}  // namespace deepscan::serve
