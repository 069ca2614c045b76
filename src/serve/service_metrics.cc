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
      frame_stage_seconds(r->AddCounter("deepscan_frame_stage_seconds_total",
                                        "Wall time per stage of /v1/frames requests and stream frames, summed",
                                        {"route", "stage"})),
      frame_seconds(r->AddHistogram("deepscan_frame_score_seconds",
                                    "POST /v1/frames: decode, detect and classify one image", {},
                                    metrics::LatencyBuckets())
                        .With({})),
      stream_frames(r->AddCounter("deepscan_stream_frames_total",
                                  "WS /v1/stream frames, by outcome (received, scored, dropped: the buffer was full, "
                                  "error: not usable)",
                                  {"outcome"})),
      stream_latency(r->AddHistogram("deepscan_stream_frame_latency_seconds",
                                     "WS /v1/stream: time from a frame's arrival to its answer being queued", {},
                                     metrics::LatencyBuckets())
                         .With({})),
      streams(r->AddCounter("deepscan_streams_total", "WS /v1/stream connections opened").With({})),
      variant_requests(r->AddCounter("deepscan_variant_requests_total",
                                     "Requests (and stream frames) served, by A/B model variant and route",
                                     {"variant", "route"})),
      variant_verdicts(r->AddCounter("deepscan_variant_verdicts_total",
                                     "Answers by A/B model variant, route and label (fake, real, no_face, error)",
                                     {"variant", "route", "label"})),
      variant_scores(r->AddHistogram("deepscan_variant_score",
                                     "Scores (P(fake)) answered, by A/B model variant and route", {"variant", "route"},
                                     {0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95})),
      variant_latency(r->AddHistogram("deepscan_variant_duration_seconds",
                                      "Time to answer, by A/B model variant and route", {"variant", "route"},
                                      metrics::LatencyBuckets())),
      upload_bytes(r->AddCounter("deepscan_http_request_body_bytes_total", "Request body bytes read").With({})),
      connections_open(
          r->AddGauge("deepscan_http_connections_open", "Connections accepted and not yet closed").With({})),
      connections_rejected(r->AddCounter("deepscan_http_connections_rejected_total",
                                         "Connections refused with 503 because --max-connections were open")
                               .With({})) {}

}  // namespace deepscan::serve
