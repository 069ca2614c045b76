#include "serve_client.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

namespace deepscan::bench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

std::chrono::milliseconds Ms(double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000)); }

net::io_context& SyncContext() {  // sockets used only synchronously never run it
  static net::io_context ioc;
  return ioc;
}

tcp::endpoint Loopback(int port) {
  return tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
}

}  // namespace

bool HttpClient::Connect() {
  tcp::socket s(SyncContext());
  beast::error_code ec;
  s.connect(Loopback(port_), ec);
  if (ec) return false;
  socket_ = std::make_unique<serve::DeadlineSocket>(std::move(s), -1);
  buffer_.clear();
  ++connects_;
  return true;
}

int HttpClient::Send(const std::string& method, const std::string& target, const std::string& content_type,
                     const std::string& body, std::string* answer, double* retry_after_s) {
  std::string head = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (method == "POST") {
    head += "Content-Type: " + content_type + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  head += "\r\n";
  // A kept-alive connection may have been closed by the server while idle: one retry on a fresh one.
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reused = socket_ != nullptr;
    if (!socket_ && !Connect()) return 0;
    socket_->SetWriteLimits(Clock::now() + Ms(timeout_s_), Ms(timeout_s_));
    socket_->SetReadLimits(Clock::now() + Ms(timeout_s_), Ms(timeout_s_));
    beast::error_code ec;
    const std::array<net::const_buffer, 2> out{net::buffer(head), net::buffer(body)};
    net::write(*socket_, out, ec);
    http::response_parser<http::string_body> p;
    p.body_limit(1ull << 30);
    if (!ec) http::read(*socket_, buffer_, p, ec);
    if (ec) {
      socket_.reset();
      if (reused && ec != beast::error::timeout) continue;
      return 0;
    }
    if (retry_after_s) {
      auto it = p.get().find(http::field::retry_after);
      *retry_after_s = it == p.get().end() ? 0 : std::atof(std::string(it->value()).c_str());
    }
    if (!p.get().keep_alive()) socket_.reset();
    *answer = std::move(p.get().body());
    return static_cast<int>(p.get().result_int());
  }
  return 0;
}

namespace {

// One WebSocket stream run on its own io_context (see RunStream). Every handler runs on the
// thread calling Run(), so no member needs a lock.
class StreamSession {
 public:
  explicit StreamSession(const StreamRunOptions& o) : o_(o), ws_(ioc_), tick_(ioc_), deadline_(ioc_) {}

  StreamRunResult Run() {
    deadline_.expires_after(Ms(o_.warmup_s + o_.seconds + o_.timeout_s));
    deadline_.async_wait([this](beast::error_code ec) {
      if (!ec) Fail("timeout: no summary and close within " + std::to_string(o_.timeout_s) + " s after the run");
    });
    beast::get_lowest_layer(ws_).async_connect(Loopback(o_.port), [this](beast::error_code ec) { OnConnect(ec); });
    ioc_.run();
    for (const Clock::time_point t : sent_at_) r_.sent += InWindow(t);
    r_.ok = r_.error.empty() && got_summary_;
    if (r_.error.empty() && !got_summary_) r_.error = "the stream closed without a summary";
    return std::move(r_);
  }

 private:
  bool InWindow(Clock::time_point t) const { return t >= window_begin_ && t < window_end_; }

  void Fail(const std::string& why) {
    if (done_) return;
    done_ = true;
    if (r_.error.empty()) r_.error = why;
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
    // The websocket's own handshake/idle timer may still be pending: do not wait for it.
    ioc_.stop();
  }

  void OnConnect(beast::error_code ec) {
    if (done_) return;
    if (ec) return Fail("connect: " + ec.message());
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
    ws_.binary(true);
    ws_.async_handshake(
        handshake_answer_, "127.0.0.1:" + std::to_string(o_.port), "/v1/stream", [this](beast::error_code e) {
          if (done_) return;
          if (e) {
            return Fail("handshake: " + e.message() + " (HTTP " + std::to_string(handshake_answer_.result_int()) + ")");
          }
          ws_.async_read(in_, [this](beast::error_code e2, size_t) { OnReady(e2); });
        });
  }

  void OnReady(beast::error_code ec) {
    if (done_) return;
    if (ec) return Fail("reading the ready message: " + ec.message());
    const std::string text = beast::buffers_to_string(in_.data());
    in_.consume(in_.size());
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object() || j.value("type", "") != "ready") return Fail("expected a ready message, got " + text);
    start_ = Clock::now();
    window_begin_ = start_ + Ms(o_.warmup_s);
    window_end_ = window_begin_ + Ms(o_.seconds);
    Read();
    WriteFrame();
    if (o_.fps > 0) ArmTick();
  }

  void ArmTick() {
    ++ticks_;
    tick_.expires_at(start_ +
                     std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(ticks_ / o_.fps)));
    tick_.async_wait([this](beast::error_code ec) {
      if (ec || done_ || ending_) return;
      if (Clock::now() >= window_end_) return BeginEnd();
      if (writing_) {
        pending_ = true;
        if (InWindow(Clock::now())) ++r_.late_sends;
      } else {
        WriteFrame();
      }
      ArmTick();
    });
  }

  void WriteFrame() {
    const size_t seq = sent_at_.size();
    const double ts = o_.fps > 0 ? seq / o_.fps : std::chrono::duration<double>(Clock::now() - start_).count();
    const std::string& image = o_.frames[seq % o_.frames.size()];
    out_.resize(8 + image.size());
    uint64_t bits = 0;
    std::memcpy(&bits, &ts, 8);
    for (int i = 0; i < 8; ++i) out_[i] = static_cast<char>((bits >> (8 * i)) & 0xff);  // little-endian
    std::memcpy(out_.data() + 8, image.data(), image.size());
    sent_at_.push_back(Clock::now());
    writing_ = true;
    ws_.binary(true);
    ws_.async_write(net::buffer(out_), [this](beast::error_code ec, size_t) { OnWritten(ec); });
  }

  void OnWritten(beast::error_code ec) {
    writing_ = false;
    if (done_) return;
    if (ec) return Fail("sending a frame: " + ec.message());
    if (ending_) return SendEnd();
    if (o_.fps <= 0) {
      if (Clock::now() >= window_end_) return BeginEnd();
      return WriteFrame();
    }
    if (pending_) {
      pending_ = false;
      WriteFrame();
    }
  }

  void BeginEnd() {
    if (ending_) return;
    ending_ = true;
    tick_.cancel();
    if (!writing_) SendEnd();
  }

  void SendEnd() {
    if (end_sent_) return;
    end_sent_ = true;
    writing_ = true;
    ws_.text(true);
    ws_.async_write(net::buffer(end_message_), [this](beast::error_code ec, size_t) {
      writing_ = false;
      if (!done_ && ec) Fail("sending end: " + ec.message());
    });
  }

  void Read() {
    ws_.async_read(in_, [this](beast::error_code ec, size_t) {
      if (done_) return;
      if (ec == websocket::error::closed) {
        r_.close_code = ws_.reason().code;
        done_ = true;
        ioc_.stop();
        return;
      }
      if (ec) return Fail("reading: " + ec.message());
      const std::string text = beast::buffers_to_string(in_.data());
      in_.consume(in_.size());
      OnMessage(text);
      Read();
    });
  }

  void OnMessage(const std::string& text) {
    const Clock::time_point now = Clock::now();
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object()) return;
    const std::string type = j.value("type", "");
    if (type == "summary") {
      got_summary_ = true;
      r_.server_dropped = j.value("dropped", int64_t{0});
      r_.summary_frames = j.value("frames", int64_t{0});
      r_.summary_scored = j.value("scored", int64_t{0});
      return;
    }
    if (type != "frame" && type != "error") return;
    const int64_t seq = j.value("seq", int64_t{-1});
    if (seq < 0 || seq >= static_cast<int64_t>(sent_at_.size()) || !InWindow(sent_at_[seq])) return;
    if (type == "error") {
      ++r_.frame_errors;
      return;
    }
    ++r_.answered;
    r_.latency_ms.push_back(std::chrono::duration<double, std::milli>(now - sent_at_[seq]).count());
    if (j.contains("latency_ms") && j["latency_ms"].is_number()) {
      r_.server_latency_ms.push_back(j["latency_ms"].get<double>());
    }
    if (j.contains("faces") && j["faces"].is_array() && !j["faces"].empty()) ++r_.with_faces;
  }

  const StreamRunOptions& o_;
  net::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_;
  net::steady_timer tick_, deadline_;
  websocket::response_type handshake_answer_;
  beast::flat_buffer in_;
  std::string out_;
  const std::string end_message_ = R"({"type":"end"})";
  std::vector<Clock::time_point> sent_at_;  // index = seq
  Clock::time_point start_, window_begin_, window_end_;
  int64_t ticks_ = 0;
  bool writing_ = false, pending_ = false, ending_ = false, end_sent_ = false, got_summary_ = false, done_ = false;
  StreamRunResult r_;
};

}  // namespace

StreamRunResult RunStream(const StreamRunOptions& options) {
  if (options.frames.empty()) {
    StreamRunResult r;
    r.error = "no frames to send";
    return r;
  }
  StreamSession session(options);
  StreamRunResult r = session.Run();
  r.window_s = options.seconds;
  return r;
}

}  // namespace deepscan::bench
