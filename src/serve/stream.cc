#include "serve/stream.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <opencv2/imgcodecs.hpp>

#include "deepscan/version.h"
#include "report/report.h"
#include "serve/image_probe.h"
#include "serve/scan_jobs.h"

namespace deepscan::serve {
namespace {

using report::Round;

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

// Answers waiting to be written; a client that lets more pile up is not reading and is cut off.
constexpr size_t kMaxOutbox = 64;
// Once a stream ends: the header timeout plus this for the last frames, the summary and the close.
constexpr double kEndGraceS = 5;

std::chrono::milliseconds Ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

json ErrorMessage(int64_t seq, std::string_view code, std::string_view message) {
  json m = {{"type", "error"}, {"error", {{"code", std::string(code)}, {"message", std::string(message)}}}};
  m["seq"] = seq >= 0 ? json(seq) : json(nullptr);
  return m;
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// StreamScorer

StreamScorer::StreamScorer(DetectorPair* detectors, FrameScorer* frames, const ScanOptions& options,
                           size_t max_identities)
    : frames_scorer_(frames),
      max_identities_(std::max<size_t>(1, max_identities)),
      finder_(detectors->detector.get(), detectors->refinder ? detectors->refinder.get() : detectors->detector.get(),
              options),
      tracker_(options.tracking) {}

Status StreamScorer::Score(double timestamp_s, const cv::Mat& bgr, json* message) {
  if (timestamp_s < last_ts_) {
    return Status::InvalidArgument("timestamps must not decrease (" + std::to_string(timestamp_s) + " after " +
                                   std::to_string(last_ts_) + ")");
  }
  auto t = Clock::now();
  ASSIGN_OR_RETURN(std::vector<face::Detection> found, finder_.Find(bgr));
  last_detect_s_ = std::chrono::duration<double>(Clock::now() - t).count();
  last_ts_ = timestamp_s;
  const std::vector<int> ids = tracker_.Update(timestamp_s, found);
  FrameScore scored;
  RETURN_IF_ERROR(frames_scorer_->ScoreFaces(bgr, found, &scored));
  last_classify_s_ = scored.classify_s;
  ++frames_;

  const float threshold = frames_scorer_->threshold();
  const std::optional<float> frame_score = scored.score;
  json faces = json::array();
  for (size_t i = 0; i < scored.faces.size(); ++i) {
    FaceResult& f = scored.faces[i];
    f.track_id = ids[i];
    json fj = report::FaceToJson(f);
    fj["label"] = f.score >= threshold ? "fake" : "real";
    faces.push_back(std::move(fj));
    if (ids[i] < 0) continue;
    auto [it, fresh] = identities_.try_emplace(ids[i]);
    Identity& id = it->second;
    if (fresh) {
      id.first_s = timestamp_s;
      id.recent = f.score;
    }
    ++id.frames;
    id.sum += f.score;
    // About the last second at 30 fps: a person's look right now, next to the mean over the stream.
    id.recent += 0.1 * (f.score - id.recent);
    id.last_s = timestamp_s;
  }
  while (identities_.size() > max_identities_) identities_.erase(identities_.begin());  // oldest ids

  (*message)["timestamp_s"] = Round(timestamp_s, 4);
  (*message)["score"] = frame_score ? json(Round(*frame_score, 4)) : json(nullptr);
  (*message)["label"] = !frame_score ? "no_face" : *frame_score >= threshold ? "fake" : "real";
  (*message)["faces"] = std::move(faces);
  (*message)["identities"] = Identities();
  return Status::Ok();
}

json StreamScorer::Identities() const {
  const float threshold = frames_scorer_->threshold();
  json out = json::array();
  for (const auto& [track_id, id] : identities_) {
    const double mean = id.frames > 0 ? id.sum / id.frames : 0.0;
    out.push_back({{"track_id", track_id},
                   {"score", Round(mean, 4)},
                   {"recent", Round(id.recent, 4)},
                   {"label", mean >= threshold ? "fake" : "real"},
                   {"faces", id.frames},
                   {"first_s", Round(id.first_s, 4)},
                   {"last_s", Round(id.last_s, 4)}});
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// StreamHub::Session: one upgraded connection.

class StreamHub::Session {
 public:
  Session(StreamHub* hub, int fd, Ticket ticket, FrameScorer* frames, std::string variant)
      : hub_(hub),
        frames_(frames),
        variant_(std::move(variant)),
        ws_(MakeSocket(ioc_, fd)),
        ticket_(std::move(ticket)),
        buffer_(hub->options_.stream_buffer) {}

  // Serves the stream; returns when it ended.
  StreamStats Run(const http::request<http::empty_body>& upgrade) {
    websocket::stream_base::timeout t;
    t.handshake_timeout = Ms(hub_->options_.header_timeout_s);
    // Beast's idle timeout (no byte and no pong for this long) only catches dead peers; ours
    // (ArmIdle: no whole message) ends idle streams first, with a close frame.
    t.idle_timeout = Ms(2 * hub_->options_.stream_idle_timeout_s);
    t.keep_alive_pings = true;  // an idle but live client answers the ping at half the idle time
    ws_.set_option(t);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, std::string("deepscan/") + kVersion); }));
    ws_.read_message_max(static_cast<uint64_t>(hub_->options_.max_image_bytes) + kTimestampBytes);
    ws_.auto_fragment(false);
    ws_.async_accept(upgrade, [this](beast::error_code ec) { OnAccept(ec); });
    ioc_.run();
    // The connection is over: stop scoring what is left and wait for the scoring thread.
    buffer_.Close(false);
    if (scorer_.joinable()) scorer_.join();
    return {upgraded_, bytes_in_, received_.load(), scored_.load(), buffer_.dropped()};
  }

  // From any thread: end the stream as on {"type":"end"}, with close code 1001.
  void Stop() {
    net::post(ioc_, [this] { BeginEnd(websocket::close_code::going_away, "the server is shutting down"); });
  }

 private:
  struct Frame {
    int64_t seq = 0;
    double timestamp_s = 0;
    std::string bytes;
    Clock::time_point arrived;
  };

  static tcp::socket MakeSocket(net::io_context& ioc, int fd) {
    tcp::socket s(ioc);
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    const bool v6 = getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 && addr.ss_family == AF_INET6;
    beast::error_code ec;
    s.assign(v6 ? tcp::v6() : tcp::v4(), fd, ec);
    if (ec) ::close(fd);  // the socket stays closed: the accept fails and the stream ends
    return s;
  }

  // --- io thread (the connection thread, in ioc_.run) ---

  void OnAccept(beast::error_code ec) {
    if (ec) return;  // not a valid upgrade after all (Beast answered 400), or the client left
    upgraded_ = true;
    hub_->metrics_->streams.Inc();
    Send(Dump({{"type", "ready"},
               {"stream", id_},
               {"model", frames_->model().name},
               {"variant", variant_},
               {"threshold", Round(frames_->threshold(), 4)},
               {"buffer", buffer_.capacity()},
               {"max_frame_bytes", hub_->options_.max_image_bytes + static_cast<int64_t>(kTimestampBytes)}}));
    scorer_ = std::thread([this] { ScoreLoop(); });
    ArmIdle();
    Read();
  }

  // A stream that sends no whole message for --stream-idle-timeout ends (close 1008), so an idle
  // client, or one trickling a message a byte at a time, cannot hold its place forever. (Beast's
  // own idle timeout only sees bytes, and pings answered.)
  void ArmIdle() {
    idle_timer_.expires_after(Ms(hub_->options_.stream_idle_timeout_s));
    idle_timer_.async_wait([this](beast::error_code ec) {
      if (ec || ending_) return;  // re-armed (aborted), or the stream is ending anyway
      char reason[64];
      std::snprintf(reason, sizeof reason, "idle: no message for %g s", hub_->options_.stream_idle_timeout_s);
      BeginEnd(websocket::close_code::policy_error, reason);
    });
  }

  void Read() {
    ws_.async_read(in_, [this](beast::error_code ec, size_t n) { OnRead(ec, n); });
  }

  void OnRead(beast::error_code ec, size_t n) {
    if (ec) {  // closed by the client, a protocol error (Beast sent the close code), the idle timeout
      // The connection is over: whatever is left (answers not yet written, Beast's ping timer)
      // has nobody to go to, so the io_context stops now rather than when the timer fires.
      buffer_.Close(false);
      ioc_.stop();
      return;
    }
    bytes_in_ += n;
    if (!ending_) ArmIdle();
    const std::string_view message(static_cast<const char*>(in_.cdata().data()), in_.size());
    if (ws_.got_text()) {
      if (IsEndMessage(message)) {
        BeginEnd(websocket::close_code::normal, "");
      } else {
        Send(Dump(ErrorMessage(-1, "bad_message", R"(text messages are control messages: {"type":"end"})")));
      }
    } else {
      const int64_t seq = received_++;
      hub_->metrics_->stream_frames.With({"received"}).Inc();
      Result<FrameMessage> f = ParseFrameMessage(message);
      if (ending_) {
        Error(seq, "stream_ending", "the stream is ending: frames after the end are not scored");
      } else if (!f.ok()) {
        Error(seq, "bad_frame", f.status().message());
      } else if (buffer_.Push(Frame{seq, f->timestamp_s, std::string(f->image), Clock::now()}) > 0) {
        hub_->metrics_->stream_frames.With({"dropped"}).Inc();
      }
    }
    in_.consume(in_.size());
    Read();
  }

  void Error(int64_t seq, std::string_view code, std::string_view message) {
    hub_->metrics_->stream_frames.With({"error"}).Inc();
    Send(Dump(ErrorMessage(seq, code, message)));
  }

  // The scoring thread scores what is buffered, then sends the summary and closes with `code`.
  void BeginEnd(websocket::close_code code, std::string reason) {
    if (ending_) return;
    ending_ = true;
    ending_flag_ = true;
    end_code_ = code;
    end_reason_ = std::move(reason);
    buffer_.Close(true);  // before the upgrade finished too: the scoring thread starts, finds it closed, ends
    idle_timer_.cancel();
    // The summary and the close handshake need the client to read. One that does not is cut off
    // after this grace (the socket closed: the pending read fails and the io_context stops).
    end_timer_.expires_after(Ms(hub_->options_.header_timeout_s + kEndGraceS));
    end_timer_.async_wait([this](beast::error_code ec) {
      if (ec) return;
      beast::error_code ignored;
      beast::get_lowest_layer(ws_).socket().close(ignored);
    });
  }

  void Send(std::string message) {
    if (closing_ || close_when_sent_) return;  // nothing after the summary
    if (outbox_.size() >= kMaxOutbox) {        // the client does not read its answers
      beast::error_code ec;
      beast::get_lowest_layer(ws_).socket().close(ec);
      return;
    }
    outbox_.push_back(std::move(message));
    if (!writing_) Write();
  }

  void Write() {
    writing_ = true;
    ws_.text(true);
    ws_.async_write(net::buffer(outbox_.front()), [this](beast::error_code ec, size_t) {
      outbox_.pop_front();
      writing_ = false;
      if (ec) {
        outbox_.clear();
        beast::error_code ignored;
        beast::get_lowest_layer(ws_).socket().close(ignored);
        return;
      }
      if (!outbox_.empty()) {
        Write();
      } else if (close_when_sent_) {
        Close();
      }
    });
  }

  // The last message, then the close handshake.
  void Finish(std::string summary) {
    Send(std::move(summary));
    close_when_sent_ = true;
    if (!writing_ && outbox_.empty()) Close();
  }

  void Close() {
    if (closing_) return;
    closing_ = true;
    ws_.async_close(websocket::close_reason(end_code_, end_reason_), [](beast::error_code) {});
  }

  // --- scoring thread ---

  void ScoreLoop() {
    StreamScorer scorer(&*ticket_, frames_, hub_->scan_);
    ServiceMetrics& m = *hub_->metrics_;
    while (std::optional<Frame> f = buffer_.Pop()) {
      json message = {{"type", "frame"}, {"seq", f->seq}};
      Status s = ScoreOne(&scorer, *f, &message);
      const double latency_s = std::chrono::duration<double>(Clock::now() - f->arrived).count();
      if (s.ok()) {
        m.stream_frames.With({"scored"}).Inc();
        ++scored_;
        m.faces.With({"/v1/stream"}).Inc(static_cast<double>(message["faces"].size()));
        m.stream_latency.Observe(latency_s);
        m.variant_requests.With({variant_, "/v1/stream"}).Inc();
        m.variant_verdicts.With({variant_, "/v1/stream", message["label"].get<std::string>()}).Inc();
        if (message["score"].is_number()) m.variant_scores.With({variant_, "/v1/stream"}).Observe(message["score"]);
        m.variant_latency.With({variant_, "/v1/stream"}).Observe(latency_s);
        message["dropped"] = buffer_.dropped();
        message["latency_ms"] = Round(latency_s * 1000.0, 2);
      } else {
        m.stream_frames.With({"error"}).Inc();
        m.variant_verdicts.With({variant_, "/v1/stream", "error"}).Inc();
        m.variant_requests.With({variant_, "/v1/stream"}).Inc();
        const std::string& msg = s.message();
        const bool busy =
            s.code() == Code::kTooLarge && (msg.rfind("overloaded", 0) == 0 || msg.rfind("stopped", 0) == 0);
        message = ErrorMessage(f->seq, busy ? "busy" : CodeName(s.code()), msg);
      }
      net::post(ioc_, [this, text = Dump(message)]() mutable { Send(std::move(text)); });
    }
    if (!ending_flag_.load()) return;  // the client left: nobody to tell
    json summary = {{"type", "summary"},
                    {"stream", id_},
                    {"frames", received_.load()},
                    {"scored", scorer.frames_scored()},
                    {"dropped", buffer_.dropped()},
                    {"identities", scorer.Identities()}};
    net::post(ioc_, [this, text = Dump(summary)]() mutable { Finish(std::move(text)); });
  }

  Status ScoreOne(StreamScorer* scorer, const Frame& f, json* message) {
    std::optional<ImageHeader> header = ProbeImage(f.bytes);
    if (!header) return Status::CorruptInput("not a JPEG or PNG image");
    if (header->width * header->height > hub_->options_.max_image_pixels) {
      return Status::TooLarge("image of " + std::to_string(header->width) + "x" + std::to_string(header->height) +
                              " pixels exceeds the limit of " + std::to_string(hub_->options_.max_image_pixels));
    }
    cv::Mat bgr;
    const auto t = Clock::now();
    try {
      bgr = cv::imdecode(cv::Mat(1, static_cast<int>(f.bytes.size()), CV_8UC1, const_cast<char*>(f.bytes.data())),
                         cv::IMREAD_COLOR);
    } catch (const cv::Exception&) {
      bgr.release();
    }
    if (bgr.empty()) return Status::CorruptInput("the image could not be decoded");
    ServiceMetrics& m = *hub_->metrics_;
    m.frame_stage_seconds.With({"/v1/stream", "decode"}).Inc(std::chrono::duration<double>(Clock::now() - t).count());
    RETURN_IF_ERROR(scorer->Score(f.timestamp_s, bgr, message));
    m.frame_stage_seconds.With({"/v1/stream", "detect"}).Inc(scorer->last_detect_s());
    m.frame_stage_seconds.With({"/v1/stream", "classify"}).Inc(scorer->last_classify_s());
    return Status::Ok();
  }

  StreamHub* hub_;
  FrameScorer* frames_;
  const std::string variant_;
  net::io_context ioc_{1};
  websocket::stream<beast::tcp_stream> ws_;
  Ticket ticket_;
  const std::string id_ = NewJobId();  // 128 random bits, as job ids
  beast::flat_buffer in_;
  DropBuffer<Frame> buffer_;
  std::thread scorer_;
  std::atomic<int64_t> received_{0};
  uint64_t bytes_in_ = 0;
  bool upgraded_ = false;
  std::atomic<int64_t> scored_{0};

  // io thread only
  std::deque<std::string> outbox_;
  bool writing_ = false, closing_ = false, close_when_sent_ = false;
  bool ending_ = false;
  websocket::close_code end_code_ = websocket::close_code::normal;
  std::string end_reason_;
  net::steady_timer idle_timer_{ioc_};
  net::steady_timer end_timer_{ioc_};
  // ending_ for the scoring thread: set before the buffer is closed for draining, read after its
  // last frame (a buffer closed without it means the client left).
  std::atomic<bool> ending_flag_{false};
};

// ---------------------------------------------------------------------------------------------
// StreamHub

Result<std::unique_ptr<StreamHub>> StreamHub::Create(const ServeOptions& options, const ScanOptions& scan,
                                                     ServiceMetrics* metrics) {
  if (options.max_streams < 0) return Status::InvalidArgument("--max-streams must not be negative");
  if (options.stream_buffer < 1) return Status::InvalidArgument("--stream-buffer must be at least 1");
  std::vector<std::unique_ptr<DetectorPair>> pairs;
  for (int i = 0; i < options.max_streams; ++i) {
    auto pair = std::make_unique<DetectorPair>();
    ASSIGN_OR_RETURN(pair->detector, face::BlazeFaceDetector::Create(scan.detector, 1, scan.accel.device));
    if (!scan.detector.refind_model_path.empty()) {
      DetectorOptions ro = scan.detector;
      ro.model_path = scan.detector.refind_model_path;
      ASSIGN_OR_RETURN(pair->refinder, face::BlazeFaceDetector::Create(ro, 1, scan.accel.device));
    }
    pairs.push_back(std::move(pair));
  }
  return std::unique_ptr<StreamHub>(new StreamHub(options, scan, metrics, std::move(pairs)));
}

StreamHub::StreamHub(const ServeOptions& options, const ScanOptions& scan, ServiceMetrics* metrics,
                     std::vector<std::unique_ptr<DetectorPair>> pairs)
    : options_(options), scan_(scan), metrics_(metrics), pairs_(std::move(pairs)) {}

StreamHub::~StreamHub() = default;

std::optional<StreamHub::Ticket> StreamHub::TryOpen() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return std::nullopt;
  }
  return pairs_.TryAcquire();
}

StreamStats StreamHub::Serve(int fd, const http::request<http::empty_body>& upgrade, Ticket ticket, FrameScorer* frames,
                             const std::string& variant) {
  Session session(this, fd, std::move(ticket), frames, variant);
  {
    std::lock_guard<std::mutex> lock(mu_);
    sessions_.insert(&session);
    if (stopping_) session.Stop();
  }
  ++open_;
  const StreamStats stats = session.Run(upgrade);
  --open_;
  std::lock_guard<std::mutex> lock(mu_);
  sessions_.erase(&session);
  return stats;
}

void StreamHub::Shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = true;
  for (Session* s : sessions_) s->Stop();
}

}  // namespace deepscan::serve
