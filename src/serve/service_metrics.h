// serve/service_metrics: every metric `deepscan serve` exports, in one place (docs/serve.md
// lists them). The families live in a metrics::Registry; this struct holds references to them
// so request, job and frame code update them without looking names up.
// Threading: as metrics::Registry (everything thread-safe).
#ifndef DEEPSCAN_SERVE_SERVICE_METRICS_H_
#define DEEPSCAN_SERVE_SERVICE_METRICS_H_

#include "serve/metrics.h"

namespace deepscan::serve {

struct ServiceMetrics {
  // Registers the families on `registry`, which must outlive this struct.
  explicit ServiceMetrics(metrics::Registry* registry);

  metrics::Family<metrics::Counter>& requests;       // route, method, status
  metrics::Family<metrics::Counter>& errors;         // route, code: answers with an error body
  metrics::Family<metrics::Histogram>& latency;      // route: request read to response written
  metrics::Histogram& queue_seconds;                 // scan jobs: submitted -> picked by a worker
  metrics::Histogram& scan_seconds;                  // scan jobs: picked -> verdict
  metrics::Family<metrics::Counter>& jobs;           // status: ok, no_face, error
  metrics::Family<metrics::Counter>& job_failures;   // code: why a scan job failed
  metrics::Family<metrics::Counter>& stage_seconds;  // stage: open, decode, convert, detect, classify
  metrics::Family<metrics::Counter>& faces;          // route: /v1/scan, /v1/frames
  metrics::Family<metrics::Counter>&
      frame_stage_seconds;                           // route, stage: /v1/frames and streams: decode, detect, classify
  metrics::Histogram& frame_seconds;                 // /v1/frames: decode + detect + classify
  metrics::Family<metrics::Counter>& stream_frames;  // outcome: received, scored, dropped, error
  metrics::Histogram& stream_latency;                // WS /v1/stream: frame arrived -> its answer queued
  metrics::Counter& streams;                         // streams opened
  // A/B (serve/api.h Variant): per variant and route (/v1/scan: every scan finished, /v1/frames,
  // /v1/stream frames): requests, verdict labels (fake, real, no_face, error), scores, latency.
  metrics::Family<metrics::Counter>& variant_requests;   // variant, route
  metrics::Family<metrics::Counter>& variant_verdicts;   // variant, route, label
  metrics::Family<metrics::Histogram>& variant_scores;   // variant, route: P(fake) of frames / videos
  metrics::Family<metrics::Histogram>& variant_latency;  // variant, route
  metrics::Counter& upload_bytes;                        // request body bytes read
  metrics::Gauge& connections_open;                      // accepted, not yet closed
  metrics::Counter& connections_rejected;                // over --max-connections: 503 and closed
};

}  // namespace deepscan::serve

#endif  // DEEPSCAN_SERVE_SERVICE_METRICS_H_
