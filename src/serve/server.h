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
//   - one accept thread: poll(2) on the listening socket and the shutdown pipe, accept, and hand
//     the connection to a queue. Connections beyond `max_connections` (being served + waiting)
//     are answered 503 with Retry-After at once and closed: accepting is bounded.
//   - `http_threads` connection threads: each takes a connection and serves its requests one
//     after another with Beast's synchronous parser (keep-alive) on a DeadlineSocket, so every
//     read and write is bounded by a timeout. A request's header is read first (16 KiB limit,
//     431 past it), the route decides (serve/api.h), and only then is the body read, into a
//     private temporary file for videos. Keep-alive is not granted while accepted connections
//     wait for a thread, so many clients take turns instead of starving.
//   - ScanJobs' workers scan videos; /v1/frames runs on the connection thread over a pool of
//     detector and classifier sessions.
//   Why synchronous threads rather than async strands: every request ends in blocking work (a
//   scan of seconds, inference of tens of milliseconds), so a thread per request in progress is
//   what the work costs anyway; the code reads top to bottom, the deadlines of DeadlineSocket
//   give the slow-client protection that timers give async code, and the future dynamic batcher
//   can block a caller until its batch is scored.
//
// Shutdown(): stop accepting; idle kept-alive connections close at once; requests in progress
// finish (a waiting ?wait=true scan included) and get "Connection: close"; connections accepted
// but not yet served are served one request each; then every accepted scan job finishes. All of
// it within `drain_timeout_s`; returns false when that ran out first.
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

  // Starts the accept and connection threads; returns at once.
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
