// serve::ServeOptions: every knob of `deepscan serve` beyond the scan options, with defaults.
// tools/deepscan/serve_command.cc maps its flags onto these fields; docs/serve.md explains them.
#ifndef DEEPSCAN_SERVE_SERVE_OPTIONS_H_
#define DEEPSCAN_SERVE_SERVE_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "serve/jobs.h"

namespace deepscan::serve {

struct ServeOptions {
  std::string host = "127.0.0.1";  // address to listen on ("0.0.0.0" / "::" for every interface)
  int port = 8080;                 // 0 = any free port (Server::port() says which)
  std::string web_dir;             // the web page's files (web/), served at / ; "" = no page
  int http_threads = 32;              // request threads: whole requests served at once
  int io_threads = 2;                 // threads that accept, read and write every connection (asynchronously)
  int max_connections = 4096;         // open connections in all; more get 503 + Retry-After and are closed
  int max_connections_per_client = 512;  // open connections per client address (0 = no limit); more get 503
  int max_waiting_requests = 256;     // whole requests waiting for a request thread; more get 503
  int64_t max_body_memory_bytes = 256LL << 20;  // /v1/frames bodies being received at once, in bytes; more get 503
  int backlog = 128;               // listen(2) backlog

  JobsOptions jobs;                          // --workers, --max-queued, --queue …
  int report_crops = 3;                      // face crops kept per identity for the HTML report of a job
  int frame_sessions = 2;                    // detector + classifier pairs for /v1/frames
  int frame_threads = 1;                     // ONNX Runtime threads per frame session
  int max_queue_delay_us = 0;                // dynamic batcher: longest a crop waits for a batch to fill (0: greedy)
  int max_streams = 4;                       // WS /v1/stream connections at once (each leases a detector pair)
  int stream_buffer = 2;                     // frames a stream holds while one is scored; more drop the oldest
  double stream_idle_timeout_s = 30;         // a stream that sends no whole message this long is closed (1008)
  int64_t max_upload_bytes = 512LL << 20;    // POST /v1/scan body; larger: 413
  int64_t sync_max_bytes = 32LL << 20;       // uploads up to this size are answered inline (?wait=true)
  int64_t max_image_bytes = 16LL << 20;      // POST /v1/frames body; larger: 413
  int64_t max_image_pixels = 7680LL * 4320;  // declared image size; larger: 413 before decoding
  uint32_t header_limit = 16 * 1024;         // request line + header fields; larger: 431

  double header_timeout_s = 10;    // a request's header must arrive within this; else 408
  double read_timeout_s = 30;      // longest pause while reading a body; else 408
  double write_timeout_s = 30;     // time a client has to read an answer; else the connection closes
  double keepalive_timeout_s = 5;  // an idle kept-alive connection is closed after this
  double drain_timeout_s = 120;    // on shutdown, time allowed for accepted jobs to finish
  int retry_after_s = 5;           // Retry-After of 503 answers

  // A/B: a second classifier served side by side as variant "b" (the scan options' model is "a").
  // Requests that do not choose a variant (X-Deepscan-Variant, ?variant=) go to "b" with
  // probability ab_split; metrics carry a `variant` label (docs/serve.md, "A/B").
  std::string ab_model;  // "" = one variant, "a"
  double ab_split = 0.5;
  int ab_workers = 1;  // scan workers of variant "b" (variant "a" has jobs.workers)

  std::vector<std::string> api_keys;  // when any: every route but /healthz and /readyz needs one
  std::string upload_dir;             // where a private folder for uploads is made; "" = $TMPDIR or /tmp
  bool access_log = true;             // one JSON line per request on stderr
};

}  // namespace deepscan::serve

#endif  // DEEPSCAN_SERVE_SERVE_OPTIONS_H_
