#include "serve/server.h"

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
#include <functional>
#include <map>
#include <set>
#include <filesystem>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <nlohmann/json.hpp>

#include "deepscan/version.h"
#include "serve/api.h"
#include "serve/queue_jobs.h"
#include "serve/request_parse.h"
#include "serve/scan_jobs.h"
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

// A body read whole by the connection before the route runs (Api::Admit chose memory or a
// file): the route takes it as if it read it. A file not taken is removed.
class PrereadBody : public BodyReader {
 public:
  PrereadBody(BodyOutcome outcome, std::string memory, std::string file, uint64_t bytes)
      : outcome_(outcome), memory_(std::move(memory)), file_(std::move(file)), bytes_(bytes) {}
  ~PrereadBody() override {
    if (!file_.empty()) ::unlink(file_.c_str());
  }
  PrereadBody(const PrereadBody&) = delete;
  PrereadBody& operator=(const PrereadBody&) = delete;

  BodyOutcome ReadToString(uint64_t, std::string* out) override {
    if (used_ || !file_.empty()) return BodyOutcome::kIoError;
    used_ = true;
    *out = std::move(memory_);
    return outcome_;
  }
  BodyOutcome ReadToFile(const std::string& path, uint64_t, uint64_t* bytes) override {
    if (used_ || file_.empty()) return BodyOutcome::kIoError;
    used_ = true;
    *bytes = bytes_;
    if (outcome_ != BodyOutcome::kOk) return outcome_;
    if (::rename(file_.c_str(), path.c_str()) != 0) return BodyOutcome::kIoError;  // same folder: no copy
    file_.clear();
    return BodyOutcome::kOk;
  }

 private:
  BodyOutcome outcome_;
  std::string memory_, file_;
  uint64_t bytes_;
  bool used_ = false;
};

// Whole requests waiting for a request thread: bounded, so a burst is answered 503 at once rather
// than queued without end.
class RequestPool {
 public:
  RequestPool(int threads, size_t capacity) : capacity_(capacity) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~RequestPool() { Stop(); }
  // False when `capacity` requests already wait (or stopping): the caller answers 503.
  bool TrySubmit(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || tasks_.size() >= capacity_) return false;
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
    return true;
  }
  size_t waiting() const {
    std::lock_guard<std::mutex> lock(mu_);
    return tasks_.size();
  }
  int busy() const { return busy_.load(); }
  // Runs what is queued, then joins the threads.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  void Loop() {
    while (true) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return !tasks_.empty() || stopping_; });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      ++busy_;
      task();
      --busy_;
    }
  }
  const size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::thread> threads_;
  std::atomic<int> busy_{0};
  bool stopping_ = false;
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
  class Connection;

  ServeOptions options;
  ScanOptions scan;
  metrics::Registry registry;
  std::unique_ptr<ServiceMetrics> metrics;
  std::unique_ptr<Jobs> jobs;  // variant "a" (the scan options' model)
  std::unique_ptr<FrameScorer> frames;
  std::unique_ptr<Jobs> jobs_b;  // variant "b" (--ab-model), when served
  std::vector<std::pair<std::string, QueueJobs*>> queues;  // with --queue: (variant, its jobs)
  std::unique_ptr<FrameScorer> frames_b;
  std::vector<Variant> variants;
  std::unique_ptr<StreamHub> streams;
  std::unique_ptr<Api> api;
  std::string upload_dir;
  std::string busy_response;
  std::shared_ptr<spdlog::logger> access;

  int port = 0;
  std::vector<std::thread> io_threads;
  std::unique_ptr<RequestPool> pool;

  std::mutex mu;  // guards connections, per_client, memory_reserved, stream_threads, finished_streams
  std::condition_variable cv;
  std::set<Connection*> connections;
  std::map<std::string, int> per_client;  // open connections per client address
  int64_t memory_reserved = 0;            // bytes of bodies being read into memory
  std::map<std::thread::id, std::thread> stream_threads;
  std::vector<std::thread::id> finished_streams;
  std::atomic<int> open_connections{0};
  std::atomic<bool> stopping{false};
  bool started = false, shut_down = false, drained = false;
  // Last, so that it goes first: handlers it still holds end connections that use the members above.
  net::io_context ioc;  // the acceptor and every connection's reads, writes and timers
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  tcp::acceptor acceptor{ioc};

  void Log(const nlohmann::ordered_json& line) {
    if (access) access->info(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }

  // --- accepting (I/O threads) ---

  void Accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) { OnAccept(ec, std::move(s)); });
  }

  void OnAccept(beast::error_code ec, tcp::socket s);

  // Closes at once, with 503 + Retry-After when it fits in the socket buffer.
  void Refuse(tcp::socket& s) {
    metrics->connections_rejected.Inc();
    beast::error_code ec;
    ::send(s.native_handle(), busy_response.data(), busy_response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    s.shutdown(tcp::socket::shutdown_send, ec);
    s.close(ec);
  }

  // Bodies read into memory share one budget (--max-body-memory-mb): false when it is spent.
  bool ReserveMemory(int64_t bytes) {
    std::lock_guard<std::mutex> lock(mu);
    if (memory_reserved + bytes > options.max_body_memory_bytes) return false;
    memory_reserved += bytes;
    return true;
  }
  void ReleaseMemory(int64_t bytes) {
    std::lock_guard<std::mutex> lock(mu);
    memory_reserved -= bytes;
  }

  // A WebSocket stream runs on a thread of its own (serve/stream.h) until it ends.
  void StartStream(int fd, http::request<http::empty_body> upgrade, StreamHub::Ticket ticket, Request req,
                   std::string route, Clock::time_point start, std::string remote, size_t variant) {
    std::lock_guard<std::mutex> lock(mu);
    for (const std::thread::id& id : finished_streams) {  // reap the threads of streams that ended
      auto it = stream_threads.find(id);
      if (it != stream_threads.end()) {
        it->second.join();
        stream_threads.erase(it);
      }
    }
    finished_streams.clear();
    auto ticket_ptr = std::make_shared<StreamHub::Ticket>(std::move(ticket));
    std::thread t([this, fd, upgrade = std::move(upgrade), ticket_ptr, req = std::move(req), route = std::move(route),
                   start, remote = std::move(remote), variant]() mutable {
      const Variant& v = variants[variant];
      StreamStats stats = streams->Serve(fd, upgrade, std::move(*ticket_ptr), v.frames, v.name);
      Finish(req, route, stats.upgraded ? 101 : 400, stats.upgraded ? "" : "bad_request", 0, stats.bytes_in, start,
             remote, {{"variant", v.name}, {"frames", stats.frames}, {"scored", stats.scored}, {"dropped", stats.dropped}});
      std::lock_guard<std::mutex> lock(mu);
      finished_streams.push_back(std::this_thread::get_id());
      cv.notify_all();
    });
    stream_threads.emplace(t.get_id(), std::move(t));
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

// One client connection: its requests one after another (keep-alive), every step asynchronous on
// the connection's strand, every wait bounded by a timer (beast::tcp_stream's expiry). It holds no
// thread while it waits for bytes: only a whole request goes to a request thread.
class Server::Impl::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Impl* server, tcp::socket socket, std::string address, std::string remote)
      : m_(server), socket_(std::move(socket)), address_(std::move(address)), remote_(std::move(remote)) {
    beast::error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);
  }

  ~Connection() {
    GiveBackMemory();
    {
      std::lock_guard<std::mutex> lock(m_->mu);
      m_->connections.erase(this);
      if (--m_->per_client[address_] <= 0) m_->per_client.erase(address_);
    }
    --m_->open_connections;
    m_->metrics->connections_open.Dec();
    m_->cv.notify_all();
  }

  void Start() { WaitForRequest(); }

  // From any thread, on shutdown: a connection waiting for its next request closes at once; one
  // with a request under way finishes it and closes.
  void Stop() {
    net::post(socket_.get_executor(), [self = shared_from_this()] {  // the caller holds a reference
      if (self->idle_) {
        beast::error_code ec;
        self->socket_.shutdown(tcp::socket::shutdown_both, ec);
        self->socket_.close(ec);
      }
    });
  }

 private:
  template <typename Duration>
  void Arm(Duration d) {
    timed_out_ = false;
    deadline_.expires_after(d);
    deadline_.async_wait([self = shared_from_this(), gen = ++deadline_gen_](beast::error_code ec) {
      if (ec || gen != self->deadline_gen_) return;  // disarmed, or re-armed for a later operation
      self->timed_out_ = true;
      beast::error_code ignored;
      self->socket_.cancel(ignored);
    });
  }
  void Disarm() {
    ++deadline_gen_;
    deadline_.cancel();
  }
  // An operation's result, its deadline taken into account; disarms.
  beast::error_code Checked(beast::error_code ec) {
    const bool late = timed_out_;
    Disarm();
    timed_out_ = false;
    if (late && (ec == net::error::operation_aborted || !ec)) return beast::error::timeout;
    return ec;
  }

  // Idle: nothing of the next request yet. The first request gets the header timeout, a
  // kept-alive connection the keep-alive timeout; the header then has the header timeout.
  void WaitForRequest() {
    if (m_->stopping.load() && !first_) return Close();
    if (buffer_.size() > 0) return ReadHeader();  // pipelined: the next request is here already
    idle_ = true;
    // Wait for readability without reading: the header parser then sees the request from its first
    // byte, as one read (Beast counts --max-header-kb over what each read hands it).
    idle_timer_.expires_after(Ms(first_ ? m_->options.header_timeout_s : m_->options.keepalive_timeout_s));
    idle_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec && self->idle_) self->Close();  // silent for too long: nothing to answer
    });
    socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
      self->idle_ = false;
      self->idle_timer_.cancel();
      if (ec) return self->Close();  // closed, or shut down
      self->ReadHeader();
    });
  }

  void ReadHeader() {
    first_ = false;
    start_ = Clock::now();
    header_.emplace();
    header_->header_limit(m_->options.header_limit);
    // The route sets the body's limit (and answers 413 by Content-Length, after 401/404/405).
    header_->body_limit(std::numeric_limits<std::uint64_t>::max());
    Arm(Ms(m_->options.header_timeout_s));  // the whole header: a trickle is held to it
    http::async_read_header(socket_, buffer_, *header_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(self->Checked(ec)); });
  }

  void OnHeader(beast::error_code ec) {
    req_ = Request{};
    route_ = "-";
    version_ = 11;
    keep_alive_ = false;
    body_done_ = true;
    bytes_in_ = 0;
    if (ec) {
      if (ec == http::error::end_of_stream || ec == net::error::eof) return Close();                 // closed
      if (ec == http::error::partial_message || ec == net::error::connection_reset) return Close();  // gone
      body_done_ = false;
      if (ec == beast::error::timeout) {
        return Respond(ErrorResponse(408, "timeout", "the request header did not arrive in time"));
      }
      if (ec == http::error::header_limit) {
        return Respond(ErrorResponse(431, "header_too_large", "request line and header fields exceed " +
                                                                   std::to_string(m_->options.header_limit) + " bytes"));
      }
      return Respond(ErrorResponse(400, "bad_request", "malformed HTTP request: " + ec.message()));
    }
    auto& h = header_->get();
    version_ = h.version();
    keep_alive_ = h.keep_alive();
    req_.method = std::string(h.method_string());
    const std::string target(h.target());
    std::optional<Target> t = SplitTarget(target);
    req_.path = t ? std::string(t->path) : target;
    req_.query = t ? std::string(t->query) : "";
    req_.content_type = std::string(h[http::field::content_type]);
    if (h.find(http::field::authorization) != h.end()) req_.authorization = std::string(h[http::field::authorization]);
    if (h.find("X-API-Key") != h.end()) req_.x_api_key = std::string(h["X-API-Key"]);
    if (h.find("X-Deepscan-Variant") != h.end()) req_.variant = std::string(h["X-Deepscan-Variant"]);
    if (auto cl = header_->content_length()) req_.content_length = *cl;
    req_.has_body = !header_->is_done();
    req_.websocket_upgrade = beast::websocket::is_upgrade(h);
    req_.remote = remote_;
    route_ = t ? std::string(Api::RouteLabel(req_.path)) : "-";
    body_done_ = !req_.has_body;
    if (!t) {
      Response r = ErrorResponse(400, "bad_request", "the request target must be a path (origin form)");
      r.close = true;
      return Respond(std::move(r));
    }
    if (version_ != 10 && version_ != 11) {
      version_ = 11;
      Response r = ErrorResponse(400, "bad_request", "only HTTP/1.0 and HTTP/1.1 are served");
      r.close = true;
      return Respond(std::move(r));
    }
    Admission a;
    try {
      a = m_->api->Admit(req_);
    } catch (const std::exception& e) {  // a bug; never let it take an I/O thread down
      a.answer = ErrorResponse(500, "internal", std::string("unexpected exception: ") + e.what());
    }
    if (a.answer) {
      if (a.answer->upgrade) return Upgrade(std::move(*a.answer));
      return Respond(std::move(*a.answer));
    }
    body_kind_ = a.body;
    limit_ = a.limit;
    if (body_kind_ == Admission::Body::kNone) return Dispatch(BodyOutcome::kOk);
    if (body_kind_ == Admission::Body::kMemory) {
      const int64_t want = static_cast<int64_t>(req_.content_length.value_or(limit_));
      if (!m_->ReserveMemory(want)) {
        Response r = ErrorResponse(503, "busy", "too many request bodies being received, retry later");
        r.headers.emplace_back("Retry-After", std::to_string(m_->options.retry_after_s));
        return Respond(std::move(r));
      }
      memory_ = want;
    }
    SendContinue();
  }

  // Answers "Expect: 100-continue" (curl asks for it before large uploads), then reads the body.
  void SendContinue() {
    if (!beast::iequals(header_->get()[http::field::expect], "100-continue")) return ReadBody();
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    Arm(Ms(m_->options.write_timeout_s));
    net::async_write(socket_, net::buffer(kContinue.data(), kContinue.size()),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (self->Checked(ec)) return self->Dispatch(BodyOutcome::kClientGone);
                       self->ReadBody();
                     });
  }

  void ReadBody() {
    if (body_kind_ == Admission::Body::kMemory) {
      memory_parser_.emplace(std::move(*header_));
      memory_parser_->body_limit(limit_);
      return ReadSome(*memory_parser_);
    }
    std::string dir = m_->upload_dir + "/body-XXXXXX";
    const int fd = ::mkstemp(dir.data());
    if (fd < 0) return Dispatch(BodyOutcome::kIoError);
    ::close(fd);
    file_ = dir;
    file_parser_.emplace(std::move(*header_));
    file_parser_->body_limit(limit_);
    beast::error_code ec;
    file_parser_->get().body().open(file_.c_str(), beast::file_mode::write, ec);
    if (ec) return Dispatch(BodyOutcome::kIoError);
    ReadSome(*file_parser_);
  }

  // The body in pieces, each within --read-timeout of the one before.
  template <typename Parser>
  void ReadSome(Parser& parser) {
    Arm(Ms(m_->options.read_timeout_s));
    http::async_read_some(socket_, buffer_, parser, [self = shared_from_this(), &parser](beast::error_code ec, size_t) {
      ec = self->Checked(ec);
      if (!ec && !parser.is_done()) return self->ReadSome(parser);
      self->Dispatch(OutcomeOf(ec));
    });
  }

  // The request is whole (or its body failed): the route runs on a request thread.
  void Dispatch(BodyOutcome outcome) {
    body_done_ = outcome == BodyOutcome::kOk;
    std::string memory;
    uint64_t bytes = 0;
    if (memory_parser_) {
      memory = std::move(memory_parser_->get().body());
      bytes = memory.size();
      memory_parser_.reset();
    }
    if (file_parser_) {
      file_parser_->get().body().close();
      file_parser_.reset();
      std::error_code fec;
      const auto size = std::filesystem::file_size(file_, fec);
      bytes = fec ? 0 : size;
    }
    bytes_in_ = bytes;
    auto body = std::make_shared<PrereadBody>(outcome, std::move(memory), std::move(file_), bytes);
    file_.clear();
    Disarm();  // the route may take long (a waiting scan); the client waits for it
    const bool queued = m_->pool->TrySubmit([self = shared_from_this(), body]() mutable {
      Response res;
      try {
        res = self->m_->api->Handle(self->req_, *body);
      } catch (const std::exception& e) {  // a bug; never let it take a request thread down
        res = ErrorResponse(500, "internal", std::string("unexpected exception: ") + e.what());
      }
      body.reset();  // an upload the route did not take is removed now
      net::post(self->socket_.get_executor(), [self, res = std::move(res)]() mutable {
        self->GiveBackMemory();
        self->Respond(std::move(res));
      });
    });
    if (!queued) {
      GiveBackMemory();
      Response r = ErrorResponse(503, "busy", "every request thread is busy, retry later");
      r.headers.emplace_back("Retry-After", std::to_string(m_->options.retry_after_s));
      Respond(std::move(r));
    }
  }

  void Upgrade(Response res) {
    if (buffer_.size() == 0 && !req_.has_body) {
      if (std::optional<StreamHub::Ticket> ticket = m_->streams->TryOpen()) {
        // The stream owns the connection from here on (its own io_context, serve/stream.h).
        beast::error_code ec;
        const int fd = socket_.release(ec);  // out of this io_context's reactor, still open
        if (ec || fd < 0) return Close();
        m_->StartStream(fd, header_->release(), std::move(*ticket), req_, route_, start_, remote_, res.variant);
        return;  // the last handler: the connection object goes, the stream goes on
      }
      res = ErrorResponse(503, "busy", "too many streams (" + std::to_string(m_->options.max_streams) + "), retry later");
      res.headers.emplace_back("Retry-After", std::to_string(m_->options.retry_after_s));
    } else {  // a client must wait for the 101 before it sends anything (RFC 6455, 4.1)
      res = ErrorResponse(400, "bad_request", "data sent before the WebSocket handshake was answered");
    }
    res.close = true;
    Respond(std::move(res));
  }

  void Respond(Response res) {
    if (res.drop) {
      m_->Finish(req_, route_, 499, "", 0, bytes_in_, start_, remote_);  // nginx's "client closed request"
      return Close();
    }
    keep_ = keep_alive_ && body_done_ && !res.close && !m_->stopping.load() && req_.method != "HEAD";
    out_.emplace(static_cast<http::status>(res.status), version_);
    out_->set(http::field::server, std::string("deepscan/") + kVersion);
    out_->set(http::field::content_type, res.content_type);
    for (const auto& [k, v] : res.headers) out_->set(k, v);
    out_->body() = std::move(res.body);
    out_->keep_alive(keep_);
    out_->prepare_payload();
    bytes_out_ = out_->body().size();
    if (req_.method == "HEAD") out_->body().clear();  // no route serves HEAD (405), and its answer has no body
    status_ = res.status;
    error_code_ = std::move(res.error_code);
    Arm(Ms(m_->options.write_timeout_s));
    http::async_write(socket_, *out_, [self = shared_from_this()](beast::error_code ec, size_t) {
      ec = self->Checked(ec);
      self->m_->Finish(self->req_, self->route_, self->status_, self->error_code_, self->bytes_out_, self->bytes_in_,
                       self->start_, self->remote_);
      self->out_.reset();
      if (ec) return self->Close();
      if (!self->keep_) return self->body_done_ ? self->Close() : self->LingeringClose();
      self->WaitForRequest();
    });
  }

  // Discards what the client still sends (an unread body) for a moment after our answer, so that
  // closing does not reset the connection before the client has read that answer.
  void LingeringClose() {
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    linger_deadline_ = Clock::now() + milliseconds(2000);
    Discard();
  }
  void Discard() {
    const auto left = linger_deadline_ - Clock::now();
    if (left <= Clock::duration::zero() || lingered_ >= (8u << 20)) return Close();
    Arm(std::min<Clock::duration>(left, milliseconds(500)));
    socket_.async_read_some(net::buffer(sink_), [self = shared_from_this()](beast::error_code ec, size_t n) {
      if (self->Checked(ec)) return self->Close();
      self->lingered_ += n;
      self->Discard();
    });
  }

  // The body memory this request reserved (ReserveMemory) goes back to the budget; idempotent.
  void GiveBackMemory() {
    if (memory_ > 0) m_->ReleaseMemory(memory_);
    memory_ = 0;
  }

  void Close() {
    Disarm();
    idle_timer_.cancel();
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

  Impl* m_;
  tcp::socket socket_;
  net::steady_timer idle_timer_{socket_.get_executor()};
  // The deadline of the operation in flight: when it passes, the operation is cancelled (the socket
  // stays open, so a 408 can still be written) and its handler sees beast::error::timeout.
  net::steady_timer deadline_{socket_.get_executor()};
  uint64_t deadline_gen_ = 0;
  bool timed_out_ = false;
  const std::string address_, remote_;
  beast::flat_buffer buffer_;
  bool first_ = true;
  bool idle_ = false;  // waiting for the first byte of a request (strand only)
  // the request under way
  std::optional<http::request_parser<http::empty_body>> header_;
  std::optional<http::request_parser<http::string_body>> memory_parser_;
  std::optional<http::request_parser<http::file_body>> file_parser_;
  std::string file_;      // the upload file being written, until handed to the route
  int64_t memory_ = 0;    // bytes reserved from the body memory budget
  Request req_;
  std::string route_ = "-";
  unsigned version_ = 11;
  bool keep_alive_ = false, body_done_ = true, keep_ = false;
  Admission::Body body_kind_ = Admission::Body::kNone;
  uint64_t limit_ = 0, bytes_in_ = 0;
  Clock::time_point start_;
  std::optional<http::response<http::string_body>> out_;
  int status_ = 0;
  std::string error_code_;
  size_t bytes_out_ = 0;
  Clock::time_point linger_deadline_;
  size_t lingered_ = 0;
  char sink_[16384];
};

void Server::Impl::OnAccept(beast::error_code ec, tcp::socket s) {
  if (ec == net::error::operation_aborted || !acceptor.is_open()) return;  // shutting down
  if (!ec) {
    beast::error_code ep_ec;
    const auto ep = s.remote_endpoint(ep_ec);
    const std::string address = ep_ec ? "-" : ep.address().to_string();
    const std::string remote = ep_ec ? "-" : address + ":" + std::to_string(ep.port());
    std::shared_ptr<Connection> c;
    {
      std::lock_guard<std::mutex> lock(mu);
      int& mine = per_client[address];
      if (open_connections.load() >= options.max_connections ||
          (options.max_connections_per_client > 0 && mine >= options.max_connections_per_client)) {
        if (mine == 0) per_client.erase(address);
      } else {
        ++mine;
        ++open_connections;
        metrics->connections_open.Inc();
        c = std::make_shared<Connection>(this, std::move(s), address, remote);
        connections.insert(c.get());
      }
    }
    if (c) {
      c->Start();
    } else {
      Refuse(s);
    }
    Accept();
    return;
  }
  // Out of file descriptors and the like: let a moment pass, then accept again.
  auto timer = std::make_shared<net::steady_timer>(ioc, milliseconds(10));
  timer->async_wait([this, timer](beast::error_code) { Accept(); });
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  Shutdown();
  Impl& m = *impl_;
  m.work.reset();
  m.ioc.stop();  // a drain that ran out: connections still open are dropped with the io_context
  for (std::thread& t : m.io_threads) {
    if (t.joinable()) t.join();
  }
  if (m.pool) m.pool->Stop();
  if (m.streams) m.streams->Shutdown();
  {
    std::unique_lock<std::mutex> lock(m.mu);
    for (auto& [id, t] : m.stream_threads) {
      lock.unlock();
      if (t.joinable()) t.join();
      lock.lock();
    }
    m.stream_threads.clear();
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
  if (options.max_connections_per_client < 0) {
    return Status::InvalidArgument("--max-connections-per-client must be 0 (no limit) or more");
  }
  if (options.io_threads < 1) return Status::InvalidArgument("--io-threads must be at least 1");
  if (options.max_body_memory_bytes < options.max_image_bytes) {
    return Status::InvalidArgument("--max-body-memory-mb must hold at least one image (--max-image-mb)");
  }
  if (options.max_upload_bytes < 1 || options.max_image_bytes < 1) {
    return Status::InvalidArgument("upload limits must be positive");
  }
  auto impl = std::make_unique<Impl>();
  Impl& m = *impl;
  m.options = options;
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
  if (ec) {
    return Status::IoError("cannot listen on " + options.host + ":" + std::to_string(options.port) + ": " +
                           ec.message());
  }
  m.port = m.acceptor.local_endpoint().port();

  // The job backend (serve/jobs.h): embedded, or the shared Redis queue (--queue).
  ScanOptions job_scan = scan;
  job_scan.report_crops = options.report_crops;
  auto make_jobs = [&](const ScanOptions& for_scan, const JobsOptions& o) -> Result<std::unique_ptr<Jobs>> {
    if (o.queue_url.empty()) {
      ASSIGN_OR_RETURN(std::unique_ptr<ScanJobs> j, ScanJobs::Create(for_scan, o, m.metrics.get()));
      return std::unique_ptr<Jobs>(std::move(j));
    }
    ASSIGN_OR_RETURN(std::unique_ptr<QueueJobs> j, QueueJobs::Create(for_scan, o, m.metrics.get()));
    m.queues.emplace_back(o.variant, j.get());
    return std::unique_ptr<Jobs>(std::move(j));
  };

  // From here on, failing removes the folders with the Server.
  std::unique_ptr<Server> server(new Server(std::move(impl)));
  ASSIGN_OR_RETURN(m.jobs, make_jobs(job_scan, options.jobs));
  m.upload_dir = m.jobs->upload_dir();  // with --queue: on the blob folder's filesystem, for rename
  if (m.upload_dir.empty()) {
    std::string base = options.upload_dir;
    if (base.empty()) {
      const char* tmp = std::getenv("TMPDIR");
      base = tmp && *tmp ? tmp : "/tmp";
    }
    std::string dir = base + "/deepscan-serve-XXXXXX";
    if (mkdtemp(dir.data()) == nullptr) return Status::IoError("cannot create an upload folder in " + base);
    m.upload_dir = dir;  // mode 0700: uploads are private to this user
  }
  ASSIGN_OR_RETURN(
      m.frames, FrameScorer::Create(scan, options.frame_sessions, options.frame_threads, options.max_queue_delay_us));
  const bool ab = !options.ab_model.empty();
  m.variants.push_back({"a", ab ? 1.0 - options.ab_split : 1.0, m.jobs.get(), m.frames.get()});
  if (ab) {
    if (!(options.ab_split >= 0 && options.ab_split <= 1))
      return Status::InvalidArgument("--ab-split must be in [0, 1]");
    ScanOptions scan_b = scan;
    scan_b.classifier.model_path = options.ab_model;
    ScanOptions job_scan_b = job_scan;
    job_scan_b.classifier.model_path = options.ab_model;
    JobsOptions jobs_b = options.jobs;
    jobs_b.workers = std::max(1, options.ab_workers);
    jobs_b.variant = "b";
    jobs_b.queue_name += "-b";  // b's jobs in a queue of their own: a worker of a never scans them
    ASSIGN_OR_RETURN(m.jobs_b, make_jobs(job_scan_b, jobs_b));
    // Uploads are written in variant a's upload folder; with --queue, b's Submit renames them into
    // the same --blob-dir, so one filesystem.
    ASSIGN_OR_RETURN(m.frames_b, FrameScorer::Create(scan_b, options.frame_sessions, options.frame_threads,
                                                     options.max_queue_delay_us));
    m.variants.push_back({"b", options.ab_split, m.jobs_b.get(), m.frames_b.get()});
  }
  ASSIGN_OR_RETURN(m.streams, StreamHub::Create(m.options, m.scan, m.metrics.get()));
  m.api = std::make_unique<Api>(m.options, m.variants, &m.registry, m.metrics.get(), m.upload_dir);
  RegisterBatcherMetrics(&m.registry, m.variants);

  if (!m.queues.empty()) {
    m.registry.AddValuesFn("deepscan_job_queue_events_total",
                           "--queue: events of this replica's queue workers: reclaimed (taken over from a worker "
                           "that stopped), retried, dead (dead-lettered), cached (a stored result of the same "
                           "content reused), duplicates, reconnects",
                           "counter", {"variant", "event"}, [q = m.queues] {
                             std::vector<metrics::Registry::LabeledValue> out;
                             for (const auto& [variant, jobs] : q) {
                               for (auto v : jobs->Events()) {
                                 v.labels.insert(v.labels.begin(), variant);
                                 out.push_back(std::move(v));
                               }
                             }
                             return out;
                           });
    m.registry.AddGaugeFn("deepscan_job_queue_connected", "--queue: 1 while Redis answers this replica",
                          [q = m.queues] {
                            for (const auto& [variant, jobs] : q) {
                              if (!jobs->connected()) return 0.0;
                            }
                            return 1.0;
                          });
  }
  Jobs* jobs = m.jobs.get();
  m.registry.AddGaugeFn("deepscan_scans_in_flight", "Scan jobs being scanned now",
                        [jobs] { return static_cast<double>(jobs->running()); });
  m.registry.AddGaugeFn("deepscan_job_queue_depth", "Scan jobs waiting for a worker (uploads being read included)",
                        [jobs] { return static_cast<double>(jobs->queued()); });
  m.registry.AddGaugeFn("deepscan_job_queue_capacity", "--max-queued",
                        [q = options.jobs.max_queued] { return static_cast<double>(q); });
  m.registry.AddGaugeFn("deepscan_scan_workers", "--workers", [jobs] { return static_cast<double>(jobs->workers()); });
  Impl* self = &m;
  m.pool = std::make_unique<RequestPool>(options.http_threads, static_cast<size_t>(options.max_waiting_requests));
  m.registry.AddGaugeFn("deepscan_http_requests_waiting", "Whole requests waiting for a request thread",
                        [self] { return static_cast<double>(self->pool->waiting()); });
  m.registry.AddGaugeFn("deepscan_http_requests_running", "Requests being served by a request thread now",
                        [self] { return static_cast<double>(self->pool->busy()); });
  m.registry.AddGaugeFn("deepscan_http_body_memory_bytes", "Bytes reserved for request bodies being read into memory",
                        [self] {
                          std::lock_guard<std::mutex> lock(self->mu);
                          return static_cast<double>(self->memory_reserved);
                        });
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
  m.work.emplace(m.ioc.get_executor());
  m.Accept();
  for (int i = 0; i < m.options.io_threads; ++i) m.io_threads.emplace_back([&m] { m.ioc.run(); });
  m.Log({{"ts", NowIso8601()},
         {"event", "listening"},
         {"host", m.options.host},
         {"port", m.port},
         {"workers", m.jobs->workers()},
         {"http_threads", m.options.http_threads},
         {"io_threads", m.options.io_threads},
         {"max_connections", m.options.max_connections},
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
  net::post(m.ioc, [&m] {  // no new connections; idle ones close at once, the others after their request
    beast::error_code ec;
    m.acceptor.close(ec);
    // Take references under the lock, stop and drop them after it: the last reference to a connection that
    // is closing meanwhile may be one of these, and ~Connection takes m.mu (a deadlock if still held here).
    std::vector<std::shared_ptr<Impl::Connection>> alive;
    {
      std::lock_guard<std::mutex> lock(m.mu);
      for (Impl::Connection* c : m.connections) {
        if (std::shared_ptr<Impl::Connection> a = c->weak_from_this().lock()) alive.push_back(std::move(a));
      }
    }
    for (const std::shared_ptr<Impl::Connection>& c : alive) c->Stop();
  });
  bool connections_done, streams_done;
  {
    std::unique_lock<std::mutex> lock(m.mu);
    connections_done = m.cv.wait_until(lock, deadline, [&] { return m.open_connections.load() == 0; });
    streams_done = m.cv.wait_until(lock, deadline, [&] { return m.finished_streams.size() == m.stream_threads.size(); });
  }
  bool jobs_done = m.jobs->Drain(deadline);
  if (m.jobs_b) jobs_done = m.jobs_b->Drain(deadline) && jobs_done;
  m.drained = connections_done && streams_done && jobs_done;
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
