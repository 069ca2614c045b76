// queue::MetricsEndpoint: a minimal HTTP endpoint for a worker's Prometheus metrics
// (`deepscan worker --metrics-port`). GET /metrics answers 200 with what `render` returns;
// GET /healthz answers "ok"; anything else 404. One request per connection (Connection: close).
//
// Why not serve::Server: a worker needs one route, not Boost.Beast's machinery, and src/queue
// sits below src/serve (serve --queue uses the queue), so it must not import it.
// Bounds: the request head must arrive within 2 s and fit in 8 KiB; one connection at a time,
// so a slow client delays a scrape by 2 s at most and can never exhaust threads.
// Threading: one accept thread of its own; `render` is called on it.
#ifndef DEEPSCAN_QUEUE_METRICS_ENDPOINT_H_
#define DEEPSCAN_QUEUE_METRICS_ENDPOINT_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "deepscan/status.h"

namespace deepscan::queue {

class MetricsEndpoint {
 public:
  // Listens on host:port (port 0 = any free one; port() says which). `content_type` is sent
  // with /metrics. Errors: kInvalidArgument (not an IP address), kIoError (cannot bind).
  static Result<std::unique_ptr<MetricsEndpoint>> Start(const std::string& host, int port,
                                                        std::function<std::string()> render,
                                                        std::string content_type);
  ~MetricsEndpoint();  // stops and joins

  int port() const { return port_; }

 private:
  MetricsEndpoint() = default;
  void Serve();
  void Answer(int fd);

  int listen_fd_ = -1;
  int port_ = 0;
  std::function<std::string()> render_;
  std::string content_type_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace deepscan::queue

#endif  // DEEPSCAN_QUEUE_METRICS_ENDPOINT_H_
