#include "serve/server.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <nlohmann/json.hpp>

#include "deepscan/version.h"
#include "serve/api.h"
#include "serve/deadline_socket.h"
#include "serve/request_parse.h"
#include "serve/stream.h"

namespace deepscan::serve {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

milliseconds Ms(double seconds) { return milliseconds(static_cast<int64_t>(seconds * 1000.0)); }

std::string NowIso8601() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

// Methods become metric labels: anything unusual is "other", so clients cannot grow the set.
std::string MethodLabel(const std::string& m) {
  for (const char* known : {"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"}) {
    if (m == known) return m;
  }
  return "other";
}

BodyOutcome OutcomeOf(const beast::error_code& ec) {
  if (!ec) return BodyOutcome::kOk;
  if (ec == http::error::body_limit) return BodyOutcome::kTooLarge;
  if (ec == beast::error::timeout) return BodyOutcome::kTimeout;
  if (ec == http::error::partial_message || ec == http::error::end_of_stream || ec == net::error::eof ||
      ec == net::error::connection_reset || ec == net::error::broken_pipe || ec == net::error::connection_aborted) {
    return BodyOutcome::kClientGone;
  }
  if (ec.category() == http::make_error_code(http::error::bad_chunk).category()) return BodyOutcome::kMalformed;
  return BodyOutcome::kIoError;  // the body could not be stored (disk full, ...)
}

// Reads a request's body on demand, from the connection's socket and buffer, after the header.
class BeastBodyReader : public BodyReader {
 public:
  BeastBodyReader(DeadlineSocket& socket, beast::flat_buffer& buffer, http::request_parser<http::empty_body>& header,
                  const ServeOptions& options)
      : socket_(socket), buffer_(buffer), header_(header), options_(options) {}

  BodyOutcome ReadToString(uint64_t limit, std::string* out) override {
    if (used_) return BodyOutcome::kIoError;
    used_ = true;
    if (!SendContinue()) return BodyOutcome::kClientGone;
    http::request_parser<http::string_body> p(std::move(header_));
    p.body_limit(limit);
    beast::error_code ec;
    http::read(socket_, buffer_, p, ec);
    bytes_ = p.get().body().size();
    BodyOutcome o = OutcomeOf(ec);
    if (o == BodyOutcome::kOk) {
      *out = std::move(p.get().body());
      complete_ = true;
    }
    return o;
  }

  BodyOutcome ReadToFile(const std::string& path, uint64_t limit, uint64_t* bytes) override {
    if (used_) return BodyOutcome::kIoError;
    used_ = true;
    if (!SendContinue()) return BodyOutcome::kClientGone;
    http::request_parser<http::file_body> p(std::move(header_));
    p.body_limit(limit);
    beast::error_code ec;
    p.get().body().open(path.c_str(), beast::file_mode::write, ec);
    if (ec) return BodyOutcome::kIoError;
    http::read(socket_, buffer_, p, ec);
    p.get().body().close();
    std::error_code fec;
    const auto size = std::filesystem::file_size(path, fec);
    bytes_ = fec ? 0 : size;
    *bytes = bytes_;
    BodyOutcome o = OutcomeOf(ec);
    if (o == BodyOutcome::kOk) complete_ = true;
    return o;
  }

  bool complete() const { return complete_; }
  uint64_t bytes() const { return bytes_; }

 private:
  // Answers "Expect: 100-continue" (curl asks for it before large uploads); false when the
  // client is gone.
  bool SendContinue() {
    socket_.SetReadLimits(Clock::time_point::max(), Ms(options_.read_timeout_s));
    const auto expect = header_.get()[http::field::expect];
    if (!beast::iequals(expect, "100-continue")) return true;
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    beast::error_code ec;
    net::write(socket_, net::buffer(kContinue.data(), kContinue.size()), ec);
    return !ec;
  }

  DeadlineSocket& socket_;
  beast::flat_buffer& buffer_;
  http::request_parser<http::empty_body>& header_;
  const ServeOptions& options_;
  bool used_ = false, complete_ = false;
  uint64_t bytes_ = 0;
};

// The answer to a connection over --max-connections, written by the accept thread without
// parsing anything.
std::string BusyResponse(int retry_after_s) {
  const std::string body = R"({"error":{"code":"busy","message":"too many connections, retry later"}})";
  return "HTTP/1.1 503 Service Unavailable\r\nServer: deepscan/" + std::string(kVersion) +
         "\r\nContent-Type: application/json\r\nRetry-After: " + std::to_string(retry_after_s) +
         "\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// The dynamic batchers' own counts (serve/batcher.h), per A/B variant, read at scrape time.
void RegisterBatcherMetrics(metrics::Registry* r, const std::vector<Variant>& variants) {
  using LV = metrics::Registry::LabeledValue;
  using LH = metrics::Registry::LabeledHistogram;
  auto values = [variants](auto field) {
    return [variants, field] {
      std::vector<LV> out;
      for (const Variant& v : variants) out.push_back({{v.name}, field(v.frames->batcher_stats())});
      return out;
    };
  };
  r->AddValuesFn("deepscan_batcher_crops_total", "Face crops submitted to the dynamic batcher (/v1/frames, streams)",
                 "counter", {"variant"}, values([](const BatcherStats& s) { return double(s.crops); }));
  r->AddValuesFn("deepscan_batcher_rejected_total",
                 "Batcher submissions refused because its queue was full (answered 503 / busy)", "counter", {"variant"},
                 values([](const BatcherStats& s) { return double(s.rejected); }));
  r->AddValuesFn("deepscan_batcher_batches_total", "Classifier calls made by the batcher", "counter", {"variant"},
                 values([](const BatcherStats& s) { return double(s.batches); }));
  r->AddValuesFn("deepscan_batcher_queued", "Crops waiting for a classifier session now", "gauge", {"variant"},
                 values([](const BatcherStats& s) { return double(s.queued); }));
  r->AddValuesFn("deepscan_batcher_busy_sessions", "Classifier sessions running a batch now", "gauge", {"variant"},
                 values([](const BatcherStats& s) { return double(s.busy_sessions); }));
  r->AddHistogramsFn("deepscan_batch_size", "Crops per classifier call of the dynamic batcher", {"variant"},
                     [variants] {
                       std::vector<LH> out;
                       for (const Variant& v : variants) {
                         const BatcherStats s = v.frames->batcher_stats();
                         LH h{{v.name}, {}, {}, 0};
                         for (size_t n = 1; n < s.batch_sizes.size(); ++n) {
                           h.bounds.push_back(static_cast<double>(n));
                           h.counts.push_back(s.batch_sizes[n]);
                           h.sum += static_cast<double>(n * s.batch_sizes[n]);
                         }
                         h.counts.push_back(0);  // +Inf: a batch is never larger than max_batch
                         out.push_back(std::move(h));
                       }
                       return out;
                     });
  auto seconds = [](const std::string& name, const BatcherStats::Histogram& us) {
    LH h{{name}, {}, {}, us.sum / 1e6};
    for (double b : us.bounds) h.bounds.push_back(b / 1e6);
    h.counts = us.counts;
    return h;
  };
  r->AddHistogramsFn("deepscan_batch_queue_seconds", "Per crop: time from submission until its batch started",
                     {"variant"}, [variants, seconds] {
                       std::vector<LH> out;
                       for (const Variant& v : variants)
                         out.push_back(seconds(v.name, v.frames->batcher_stats().queue_us));
                       return out;
                     });
  r->AddHistogramsFn("deepscan_batch_run_seconds", "Per batch: time of the classifier call", {"variant"},
                     [variants, seconds] {
                       std::vector<LH> out;
                       for (const Variant& v : variants)
                         out.push_back(seconds(v.name, v.frames->batcher_stats().run_us));
                       return out;
                     });
}

}  // namespace

struct Server::Impl {
  ServeOptions options;
  ScanOptions scan;
  metrics::Registry registry;
  std::unique_ptr<ServiceMetrics> metrics;
  std::unique_ptr<ScanJobs> jobs;  // variant "a" (the scan options' model)
  std::unique_ptr<FrameScorer> frames;
  std::unique_ptr<ScanJobs> jobs_b;  // variant "b" (--ab-model), when served
  std::unique_ptr<FrameScorer> frames_b;
  std::vector<Variant> variants;
  std::unique_ptr<StreamHub> streams;
  std::unique_ptr<Api> api;
  std::string upload_dir;
  std::string busy_response;
  std::shared_ptr<spdlog::logger> access;

  net::io_context ioc;  // only to own sockets; every operation is synchronous
  tcp::acceptor acceptor{ioc};
  int port = 0;
  int wake[2] = {-1, -1};  // shutdown pipe: readable once Shutdown began

  std::thread accept_thread;
  std::vector<std::thread> connection_threads;
  std::mutex mu;  // guards pending, accept_done, live_threads
  std::condition_variable cv;
  std::deque<tcp::socket> pending;
  bool accept_done = false;
  int live_threads = 0;
  std::atomic<size_t> pending_count{0};
  std::atomic<int> open_connections{0};
  std::atomic<bool> stopping{false};
  bool started = false, shut_down = false, drained = false;

  ~Impl() {
    if (wake[0] >= 0) close(wake[0]);
    if (wake[1] >= 0) close(wake[1]);
  }

  void Log(const nlohmann::ordered_json& line) {
    if (access) access->info(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }

  void AcceptLoop() {
    while (true) {
      pollfd fds[2] = {{acceptor.native_handle(), POLLIN, 0}, {wake[0], POLLIN, 0}};
      const int n = ::poll(fds, 2, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (fds[1].revents & POLLIN) break;
      beast::error_code ec;
      tcp::socket s(ioc);
      acceptor.accept(s, ec);
      if (ec == net::error::would_block || ec == net::error::try_again) continue;
      if (ec) {  // out of file descriptors and the like: let a moment pass
        std::this_thread::sleep_for(milliseconds(10));
        continue;
      }
      if (open_connections.load() >= options.max_connections) {
        metrics->connections_rejected.Inc();
        ::send(s.native_handle(), busy_response.data(), busy_response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        s.shutdown(tcp::socket::shutdown_send, ec);
        s.close(ec);
        continue;
      }
      ++open_connections;
      metrics->connections_open.Inc();
      {
        std::lock_guard<std::mutex> lock(mu);
        pending.push_back(std::move(s));
        ++pending_count;
      }
      cv.notify_one();
    }
    beast::error_code ec;
    acceptor.close(ec);
    {
      std::lock_guard<std::mutex> lock(mu);
      accept_done = true;
    }
    cv.notify_all();
  }

  void ConnectionLoop() {
    while (true) {
      std::optional<tcp::socket> s;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return !pending.empty() || accept_done; });
        if (pending.empty()) break;
        s.emplace(std::move(pending.front()));
        pending.pop_front();
        --pending_count;
      }
      Serve(std::move(*s));
      --open_connections;
      metrics->connections_open.Dec();
    }
    std::lock_guard<std::mutex> lock(mu);
    --live_threads;
    cv.notify_all();
  }

  // Discards what the client still sends (an unread body) for a moment after our answer, so
  // that closing does not reset the connection before the client has read that answer.
  static void LingeringClose(DeadlineSocket& s) {
    beast::error_code ec;
    s.socket().shutdown(tcp::socket::shutdown_send, ec);
    s.SetReadLimits(Clock::now() + milliseconds(2000), milliseconds(500));
    char sink[16384];
    size_t total = 0;
    while (total < (8u << 20)) {
      const size_t n = s.read_some(net::buffer(sink), ec);
      if (ec) break;
      total += n;
    }
    s.socket().close(ec);
  }

  void Serve(tcp::socket socket) {
    beast::error_code ec;
    const auto ep = socket.remote_endpoint(ec);
    const std::string remote = ec ? "-" : ep.address().to_string() + ":" + std::to_string(ep.port());
    DeadlineSocket s(std::move(socket), wake[0]);
    beast::flat_buffer buffer;
    bool first = true;
    while (true) {
      if (buffer.size() == 0) {
        // Idle: the first request gets the header timeout; a kept-alive connection the
        // keep-alive timeout, and gives its thread up when another connection waits for one.
        const bool kept = !first;
        auto w = s.WaitReadable(Ms(first ? options.header_timeout_s : options.keepalive_timeout_s), true,
                                [&] { return kept && pending_count.load() > 0; });
        if (w != DeadlineSocket::Wait::kReady) break;
      }
      first = false;
      const auto start = Clock::now();
      s.SetReadLimits(start + Ms(options.header_timeout_s), Ms(options.header_timeout_s));
      s.SetWriteLimits(Clock::time_point::max(), Ms(options.write_timeout_s));

      http::request_parser<http::empty_body> header;
      header.header_limit(options.header_limit);
      // The route sets the body's limit (and answers 413 by Content-Length, after 401/404/405).
      header.body_limit(std::numeric_limits<std::uint64_t>::max());
      http::read_header(s, buffer, header, ec);

      Response res;
      Request req;
      std::string route = "-";
      unsigned version = 11;
      bool keep_alive = false, body_done = true;
      uint64_t bytes_in = 0;
      if (ec) {
        if (ec == http::error::end_of_stream || ec == net::error::eof) break;                 // closed between requests
        if (ec == http::error::partial_message || ec == net::error::connection_reset) break;  // gone mid-header
        if (ec == beast::error::timeout) {
          res = ErrorResponse(408, "timeout", "the request header did not arrive in time");
        } else if (ec == http::error::header_limit) {
          res =
              ErrorResponse(431, "header_too_large",
                            "request line and header fields exceed " + std::to_string(options.header_limit) + " bytes");
        } else {
          res = ErrorResponse(400, "bad_request", "malformed HTTP request: " + ec.message());
        }
        body_done = false;
      } else {
        auto& h = header.get();
        version = h.version();
        keep_alive = h.keep_alive();
        req.method = std::string(h.method_string());
        const std::string target(h.target());
        std::optional<Target> t = SplitTarget(target);
        req.path = t ? std::string(t->path) : target;
        req.query = t ? std::string(t->query) : "";
        req.content_type = std::string(h[http::field::content_type]);
        if (h.find(http::field::authorization) != h.end())
          req.authorization = std::string(h[http::field::authorization]);
        if (h.find("X-API-Key") != h.end()) req.x_api_key = std::string(h["X-API-Key"]);
        if (h.find("X-Deepscan-Variant") != h.end()) req.variant = std::string(h["X-Deepscan-Variant"]);
        if (auto cl = header.content_length()) req.content_length = *cl;
        req.has_body = !header.is_done();
        req.websocket_upgrade = beast::websocket::is_upgrade(h);
        req.remote = remote;
        route = t ? std::string(Api::RouteLabel(req.path)) : "-";
        BeastBodyReader body(s, buffer, header, options);
        if (!t) {
          res = ErrorResponse(400, "bad_request", "the request target must be a path (origin form)");
          res.close = true;
        } else if (version != 10 && version != 11) {
          res = ErrorResponse(400, "bad_request", "only HTTP/1.0 and HTTP/1.1 are served");
          res.close = true;
          version = 11;
        } else {
          try {
            res = api->Handle(req, body);
          } catch (const std::exception& e) {  // a bug; never let it take the connection thread down
            res = ErrorResponse(500, "internal", std::string("unexpected exception: ") + e.what());
          }
        }
        bytes_in = body.bytes();
        body_done = !req.has_body || body.complete();
      }
      if (res.upgrade) {
        if (buffer.size() == 0 && !req.has_body) {
          if (std::optional<StreamHub::Ticket> ticket = streams->TryOpen()) {
            // The stream owns the connection from here on (its own io_context, serve/stream.h).
            const int fd = s.socket().release(ec);  // out of this io_context's reactor, still open
            const Variant& v = variants[res.variant];
            StreamStats stats;
            if (!ec && fd >= 0) stats = streams->Serve(fd, header.get(), std::move(*ticket), v.frames, v.name);
            Finish(
                req, route, stats.upgraded ? 101 : 400, stats.upgraded ? "" : "bad_request", 0, stats.bytes_in, start,
                remote,
                {{"variant", v.name}, {"frames", stats.frames}, {"scored", stats.scored}, {"dropped", stats.dropped}});
            return;
          }
          res =
              ErrorResponse(503, "busy", "too many streams (" + std::to_string(options.max_streams) + "), retry later");
          res.headers.emplace_back("Retry-After", std::to_string(options.retry_after_s));
        } else {  // a client must wait for the 101 before it sends anything (RFC 6455, 4.1)
          res = ErrorResponse(400, "bad_request", "data sent before the WebSocket handshake was answered");
        }
        res.close = true;
      }
      if (res.drop) {
        Finish(req, route, 499, "", 0, bytes_in, start, remote);  // nginx's "client closed request"
        break;
      }
      const bool keep = keep_alive && body_done && !res.close && !stopping.load() && pending_count.load() == 0 &&
                        req.method != "HEAD";
      http::response<http::string_body> out{static_cast<http::status>(res.status), version};
      out.set(http::field::server, std::string("deepscan/") + kVersion);
      out.set(http::field::content_type, res.content_type);
      for (const auto& [k, v] : res.headers) out.set(k, v);
      out.body() = std::move(res.body);
      out.keep_alive(keep);
      out.prepare_payload();
      const size_t bytes_out = out.body().size();
      if (req.method == "HEAD") out.body().clear();  // no route serves HEAD (405), and its answer has no body
      s.SetWriteLimits(Clock::now() + Ms(options.write_timeout_s), Ms(options.write_timeout_s));
      http::write(s, out, ec);
      Finish(req, route, res.status, res.error_code, bytes_out, bytes_in, start, remote);
      if (ec) break;
      if (!keep) {
        if (!body_done) {
          LingeringClose(s);
          return;
        }
        break;
      }
    }
    s.socket().shutdown(tcp::socket::shutdown_both, ec);
    s.socket().close(ec);
  }

  // `extra`: more fields for the log line (a stream's counts).
  void Finish(const Request& req, const std::string& route, int status, const std::string& error_code, size_t bytes_out,
              uint64_t bytes_in, Clock::time_point start, const std::string& remote,
              const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) {
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const std::string method = req.method.empty() ? "-" : req.method;
    metrics->requests.With({route, MethodLabel(method), std::to_string(status)}).Inc();
    metrics->latency.With({route}).Observe(seconds);
    if (!error_code.empty()) metrics->errors.With({route, error_code}).Inc();
    if (!options.access_log) return;
    nlohmann::ordered_json line = {{"ts", NowIso8601()},
                                   {"method", method},
                                   {"path", req.path.empty() ? "-" : req.path},
                                   {"route", route},
                                   {"status", status},
                                   {"bytes", bytes_out},
                                   {"bytes_in", bytes_in},
                                   {"ms", std::round(seconds * 10000.0) / 10.0},
                                   {"remote", remote}};
    if (!error_code.empty()) line["error"] = error_code;
    for (const auto& [k, v] : extra.items()) line[k] = v;
    Log(line);
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  Shutdown();
  Impl& m = *impl_;
  if (m.accept_thread.joinable()) m.accept_thread.join();
  for (std::thread& t : m.connection_threads) {
    if (t.joinable()) t.join();
  }
  m.api.reset();
  m.streams.reset();
  m.jobs.reset();  // joins the workers
  m.jobs_b.reset();
  std::error_code ec;
  if (!m.upload_dir.empty()) std::filesystem::remove_all(m.upload_dir, ec);
}

Result<std::unique_ptr<Server>> Server::Create(const ServeOptions& options, const ScanOptions& scan) {
  if (options.http_threads < 1) return Status::InvalidArgument("--http-threads must be at least 1");
  if (options.max_connections < 1) return Status::InvalidArgument("--max-connections must be at least 1");
  if (options.max_upload_bytes < 1 || options.max_image_bytes < 1) {
    return Status::InvalidArgument("upload limits must be positive");
  }
  auto impl = std::make_unique<Impl>();
  Impl& m = *impl;
  m.options = options;
  // Each stream holds a connection thread for its life: keep one free for everything else.
  m.options.max_streams = std::max(0, std::min(options.max_streams, options.http_threads - 1));
  if (m.options.max_streams < options.max_streams) {
    spdlog::warn("--max-streams {} lowered to {}: each stream holds one of the {} --http-threads", options.max_streams,
                 m.options.max_streams, options.http_threads);
  }
  m.scan = scan;
  m.metrics = std::make_unique<ServiceMetrics>(&m.registry);
  m.busy_response = BusyResponse(options.retry_after_s);

  // Address first: a port in use should not cost a model load.
  beast::error_code ec;
  const auto address = net::ip::make_address(options.host, ec);
  if (ec) return Status::InvalidArgument("not an IP address: " + options.host);
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(options.port));
  m.acceptor.open(endpoint.protocol(), ec);
  if (!ec) m.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) m.acceptor.bind(endpoint, ec);
  if (!ec) m.acceptor.listen(options.backlog, ec);
  if (!ec) m.acceptor.non_blocking(true, ec);
  if (ec) {
    return Status::IoError("cannot listen on " + options.host + ":" + std::to_string(options.port) + ": " +
                           ec.message());
  }
  m.port = m.acceptor.local_endpoint().port();
  if (pipe(m.wake) != 0) return Status::IoError("cannot create the shutdown pipe");

  if (options.jobs.job_dir.empty()) {  // with a job store, uploads go to its folder for this replica (below)
    std::string base = options.upload_dir;
    if (base.empty()) {
      const char* tmp = std::getenv("TMPDIR");
      base = tmp && *tmp ? tmp : "/tmp";
    }
    std::string dir = base + "/deepscan-serve-XXXXXX";
    if (mkdtemp(dir.data()) == nullptr) return Status::IoError("cannot create an upload folder in " + base);
    m.upload_dir = dir;  // mode 0700: uploads are private to this user
  }

  // From here on, failing removes the folder with the Server.
  std::unique_ptr<Server> server(new Server(std::move(impl)));
  ASSIGN_OR_RETURN(m.jobs, ScanJobs::Create(scan, options.jobs, m.metrics.get()));
  if (!options.jobs.job_dir.empty()) m.upload_dir = m.jobs->upload_dir();
  ASSIGN_OR_RETURN(
      m.frames, FrameScorer::Create(scan, options.frame_sessions, options.frame_threads, options.max_queue_delay_us));
  const bool ab = !options.ab_model.empty();
  m.variants.push_back({"a", ab ? 1.0 - options.ab_split : 1.0, m.jobs.get(), m.frames.get()});
  if (ab) {
    if (!(options.ab_split >= 0 && options.ab_split <= 1))
      return Status::InvalidArgument("--ab-split must be in [0, 1]");
    ScanOptions scan_b = scan;
    scan_b.classifier.model_path = options.ab_model;
    JobsOptions jobs_b = options.jobs;
    jobs_b.workers = std::max(1, options.ab_workers);
    jobs_b.variant = "b";
    if (!jobs_b.job_dir.empty()) jobs_b.job_dir += "/b";  // b's jobs apart: a reclaimed job keeps its model
    ASSIGN_OR_RETURN(m.jobs_b, ScanJobs::Create(scan_b, jobs_b, m.metrics.get()));
    ASSIGN_OR_RETURN(m.frames_b, FrameScorer::Create(scan_b, options.frame_sessions, options.frame_threads,
                                                     options.max_queue_delay_us));
    m.variants.push_back({"b", options.ab_split, m.jobs_b.get(), m.frames_b.get()});
  }
  ASSIGN_OR_RETURN(m.streams, StreamHub::Create(m.options, m.scan, m.metrics.get()));
  m.api = std::make_unique<Api>(m.options, m.variants, &m.registry, m.metrics.get(), m.upload_dir);
  RegisterBatcherMetrics(&m.registry, m.variants);

  ScanJobs* jobs = m.jobs.get();
  m.registry.AddGaugeFn("deepscan_scans_in_flight", "Scan jobs being scanned now",
                        [jobs] { return static_cast<double>(jobs->running()); });
  m.registry.AddGaugeFn("deepscan_job_queue_depth", "Scan jobs waiting for a worker (uploads being read included)",
                        [jobs] { return static_cast<double>(jobs->queued()); });
  m.registry.AddGaugeFn("deepscan_job_queue_capacity", "--max-queued",
                        [q = options.jobs.max_queued] { return static_cast<double>(q); });
  m.registry.AddGaugeFn("deepscan_scan_workers", "--workers", [jobs] { return static_cast<double>(jobs->workers()); });
  Impl* self = &m;
  m.registry.AddGaugeFn("deepscan_http_connections_waiting", "Accepted connections waiting for a connection thread",
                        [self] { return static_cast<double>(self->pending_count.load()); });
  StreamHub* streams = m.streams.get();
  m.registry.AddGaugeFn("deepscan_streams_open", "WS /v1/stream connections open now",
                        [streams] { return static_cast<double>(streams->open_streams()); });
  m.registry.AddGaugeFn("deepscan_streams_capacity", "--max-streams",
                        [q = m.options.max_streams] { return static_cast<double>(q); });
  m.registry.AddGaugeFn("process_resident_memory_bytes", "Resident memory size in bytes",
                        [] { return metrics::ResidentMemoryBytes(); });

  if (options.access_log) {
    m.access = spdlog::get("deepscan-access");
    if (!m.access) {
      m.access = spdlog::stderr_logger_mt("deepscan-access");
      m.access->set_pattern("%v");
      m.access->set_level(spdlog::level::info);
    }
  }
  return server;
}

void Server::Start() {
  Impl& m = *impl_;
  if (m.started) return;
  m.started = true;
  m.live_threads = m.options.http_threads;
  for (int i = 0; i < m.options.http_threads; ++i) m.connection_threads.emplace_back([&m] { m.ConnectionLoop(); });
  m.accept_thread = std::thread([&m] { m.AcceptLoop(); });
  m.Log({{"ts", NowIso8601()},
         {"event", "listening"},
         {"host", m.options.host},
         {"port", m.port},
         {"workers", m.jobs->workers()},
         {"http_threads", m.options.http_threads},
         {"model", m.jobs->model().name},
         {"auth", !m.options.api_keys.empty()}});
}

bool Server::Shutdown() {
  Impl& m = *impl_;
  if (!m.started || m.shut_down) return m.drained || !m.started;
  m.shut_down = true;
  const auto t0 = Clock::now();
  const auto deadline = t0 + Ms(m.options.drain_timeout_s);
  m.stopping = true;
  m.api->SetDraining();
  m.streams->Shutdown();  // streams score what they hold, send their summary, close with 1001
  m.Log({{"ts", NowIso8601()}, {"event", "draining"}, {"queued", m.jobs->queued()}, {"running", m.jobs->running()}});
  const char byte = 1;
  [[maybe_unused]] ssize_t w = write(m.wake[1], &byte, 1);  // wakes the accept loop and idle connections
  m.accept_thread.join();
  bool threads_done;
  {
    std::unique_lock<std::mutex> lock(m.mu);
    threads_done = m.cv.wait_until(lock, deadline, [&] { return m.live_threads == 0; });
  }
  if (threads_done) {
    for (std::thread& t : m.connection_threads) t.join();
  }
  bool jobs_done = m.jobs->Drain(deadline);
  if (m.jobs_b) jobs_done = m.jobs_b->Drain(deadline) && jobs_done;
  m.drained = threads_done && jobs_done;
  m.Log({{"ts", NowIso8601()},
         {"event", "stopped"},
         {"drained", m.drained},
         {"queued", m.jobs->queued()},
         {"running", m.jobs->running()},
         {"s", std::round(std::chrono::duration<double>(Clock::now() - t0).count() * 1000.0) / 1000.0}});
  return m.drained;
}

int Server::port() const { return impl_->port; }
const std::string& Server::host() const { return impl_->options.host; }

}  // namespace deepscan::serve
