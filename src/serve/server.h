// serve::Server: `deepscan serve`, an HTTP/1.1 server (Boost.Beast) in front of the scan jobs and
// the frame scorer (routes: serve/api.h; guide: docs/serve.md).
//
// Basic usage:
//   serve::ServeOptions so;  so.port = 0;            // any free port
//   auto server = serve::Server::Create(so, scan_options);
//   if (!server.ok()) { /* models or the address: server.status() */ }
//   (*server)->Start();                              // returns at once; (*server)->port() is bound
//   ...
//   (*server)->Shutdown();                           // graceful: see below
//
// How (threads):
//   - `io_threads` I/O threads run one Asio io_context: the acceptor and every connection, each on
//     a strand, every step asynchronous (wait for a request, read its header, read its body, write
//     the answer), every wait bounded by a deadline timer that cancels it (header: the whole
//     header within header_timeout_s; body: no pause over read_timeout_s; answer: write_timeout_s;
//     idle kept-alive: keepalive_timeout_s). A connection holds no thread while it waits, so idle
//     and slow clients cost a descriptor and a few kB, not a thread. Connections beyond
//     `max_connections` in all, or `max_connections_per_client` from one address, are answered 503
//     with Retry-After at once and closed.
//   - After the header, Api::Admit (serve/api.h) answers most routes on the I/O thread at once
//     (/healthz, /readyz, /metrics, /v1/jobs/{id}, the page: none blocks), and checks /v1/scan and
//     /v1/frames before their body is read. The body is then read asynchronously, a video into a
//     private file in the upload folder, an image into memory (all such bodies share the
//     `max_body_memory_bytes` budget; past it, 503 before reading).
//   - `http_threads` request threads run Api::Handle on whole requests only, from a queue of at most
//     `max_waiting_requests` (503 beyond it); the answer goes back to the connection's strand.
//     ScanJobs' workers scan videos; /v1/frames runs on the request thread over a pool of detector
//     and classifier sessions.
//   - A WebSocket upgrade leaves the event loop: the stream runs on a thread of its own
//     (serve/stream.h), at most `max_streams` of them.
//
// Shutdown(): stop accepting; idle connections close at once; requests in progress finish (a
// waiting ?wait=true scan included) and get "Connection: close"; streams score what they hold and
// close with 1001; then every accepted scan job finishes. All of it within `drain_timeout_s`;
// returns false when that ran out first.
//
// Logs: one JSON line per request on stderr (ts, method, path, status, bytes, bytes_in, ms,
// remote, route), through spdlog's "deepscan-access" logger.
#ifndef DEEPSCAN_SERVE_SERVER_H_
#define DEEPSCAN_SERVE_SERVER_H_

#include <memory>
#include <string>

#include "deepscan/options.h"
#include "deepscan/status.h"
#include "serve/serve_options.h"

namespace deepscan::serve {

class Server {
 public:
  // Loads the models (one Scanner per worker, the frame sessions), makes the private upload
  // folder and binds the listening socket. Errors: the Scanner's (kInvalidModel, ...),
  // kInvalidArgument (bad option, address in use or not valid), kIoError (upload folder).
  static Result<std::unique_ptr<Server>> Create(const ServeOptions& options, const ScanOptions& scan);
  // Shuts down (when Start ran and Shutdown did not) and removes the upload folder.
  ~Server();

  // Starts the I/O and request threads; returns at once.
  void Start();
  // Graceful shutdown (see above). Returns true when everything finished within the drain
  // timeout. Idempotent.
  bool Shutdown();

  int port() const;                 // the bound port (useful with ServeOptions::port = 0)
  const std::string& host() const;  // the bound address

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace deepscan::serve

#endif  // DEEPSCAN_SERVE_SERVER_H_
