// Load-generating clients for serve_bench (bench/serve_bench.cc): a keep-alive HTTP/1.1 client
// and a WebSocket client for WS /v1/stream (docs/serve.md), both against a server on loopback.
//
// In:  the server's port; request bodies (images, videos) prepared beforehand, so a client
//      spends its time waiting for the server, not encoding.
// Out: per request the HTTP status and answer body (HttpClient); per stream the frames sent,
//      answered, dropped and the latency of each answer (RunStream).
// How: HttpClient writes one request and reads its answer on one connection, reconnecting when
//      the server closes it (Connection: close, 503 at the connection limit); every read and
//      write is bounded by a timeout (serve::DeadlineSocket). RunStream drives one WebSocket
//      with Beast's asynchronous interface on one io_context: a timer paces the binary frame
//      messages (or each is sent as soon as the previous one is written), a read loop matches
//      the server's "frame" answers to the send times by seq.
// Threading: an HttpClient belongs to one thread. RunStream blocks its caller and runs the
//      stream on the calling thread; several may run at once on different threads.
#ifndef DEEPSCAN_BENCH_SERVE_CLIENT_H_
#define DEEPSCAN_BENCH_SERVE_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/beast/core/flat_buffer.hpp>

#include "serve/deadline_socket.h"

namespace deepscan::bench {

class HttpClient {
 public:
  HttpClient(int port, double timeout_s) : port_(port), timeout_s_(timeout_s) {}

  // POSTs `body` (as `content_type`) to `target` on the kept-alive connection, opening one when
  // there is none. Returns the HTTP status and sets *answer to the answer's body; returns 0 when
  // the connection failed (refused, closed before an answer, timeout); the next call reconnects.
  // *retry_after_s is the Retry-After header of the answer (0 when absent).
  int Post(const std::string& target, const std::string& content_type, const std::string& body, std::string* answer,
           double* retry_after_s = nullptr) {
    return Send("POST", target, content_type, body, answer, retry_after_s);
  }
  int Get(const std::string& target, std::string* answer) { return Send("GET", target, "", "", answer, nullptr); }

  int64_t connects() const { return connects_; }  // connections opened so far

 private:
  bool Connect();
  int Send(const std::string& method, const std::string& target, const std::string& content_type,
           const std::string& body, std::string* answer, double* retry_after_s);

  const int port_;
  const double timeout_s_;
  std::unique_ptr<serve::DeadlineSocket> socket_;
  boost::beast::flat_buffer buffer_;
  int64_t connects_ = 0;
};

struct StreamRunOptions {
  int port = 0;
  std::vector<std::string> frames;  // encoded images (JPEG/PNG), sent in a loop
  double fps = 30;                  // frames sent per second; 0 = each as soon as the previous one is written
  double warmup_s = 1;              // frames sent before this are neither counted nor timed
  double seconds = 10;              // the measured window after the warm-up
  double timeout_s = 60;            // the whole run (connect to close) is abandoned after warm-up + seconds + this
};

struct StreamRunResult {
  bool ok = false;             // the stream opened, ran and closed with a summary
  std::string error;           // why not (handshake declined, closed early, timeout...)
  int64_t sent = 0;            // frames sent in the measured window
  int64_t answered = 0;        // of those, answered with a "frame" message
  int64_t frame_errors = 0;    // of those, answered with an "error" message
  int64_t with_faces = 0;      // answered frames with at least one face
  int64_t late_sends = 0;      // ticks at which the previous frame was still being written (fps > 0)
  int64_t server_dropped = 0;  // the summary's "dropped" (the whole stream, warm-up included)
  int64_t summary_frames = 0, summary_scored = 0;  // the summary's "frames" and "scored"
  double window_s = 0;                             // the measured window's actual length
  std::vector<double> latency_ms;                  // per answered frame of the window: client send to answer
  std::vector<double> server_latency_ms;           // the same frames' "latency_ms" as the server measured it
  int close_code = 0;                              // the server's close code
};

// Opens WS /v1/stream, sends `frames` in a loop (each prefixed with its float64 timestamp, seq
// i at i / fps seconds, or at its real send time when fps is 0) for warmup_s + seconds, then
// sends {"type":"end"} and reads until the server's summary and close.
StreamRunResult RunStream(const StreamRunOptions& options);

}  // namespace deepscan::bench

#endif  // DEEPSCAN_BENCH_SERVE_CLIENT_H_
