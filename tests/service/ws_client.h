// A small WebSocket client for the WS /v1/stream tests and serve_bench: Boost.Beast's
// asynchronous stream driven by io_context::run_for, so every call is bounded by a timeout and a
// server that hangs fails the test instead of hanging it. Header-only.
// Threading: one thread uses a client at a time.
#ifndef DEEPSCAN_TESTS_SERVICE_WS_CLIENT_H_
#define DEEPSCAN_TESTS_SERVICE_WS_CLIENT_H_

#include <bit>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

namespace deepscan::testing {

class WsClient {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;

  // Connects to 127.0.0.1:port and sends the opening handshake for `target`. Returns the HTTP
  // status of the server's answer: 101 when the stream is open; 0 when there was no answer.
  int Connect(int port, const std::string& target = "/v1/stream", const Headers& headers = {}, double timeout_s = 10) {
    namespace websocket = boost::beast::websocket;
    boost::beast::error_code ec;
    boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
    boost::beast::get_lowest_layer(ws_).socket().connect(ep, ec);
    if (ec) return 0;
    ws_.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
      for (const auto& [k, v] : headers) req.set(k, v);
    }));
    ws_.read_message_max(64u << 20);
    bool done = false;
    ws_.async_handshake(response_, "127.0.0.1", target, [&](boost::beast::error_code e) {
      ec = e;
      done = true;
    });
    if (!RunFor(timeout_s, done)) return 0;
    return static_cast<int>(response_.result_int());
  }
  // The handshake's HTTP answer (its body when the upgrade was refused).
  const boost::beast::websocket::response_type& response() const { return response_; }

  // One frame: the 8-byte little-endian float64 timestamp, then the image bytes.
  bool SendFrame(double timestamp_s, const std::string& image, double timeout_s = 10) {
    std::string message(8, '\0');
    const auto bits = std::bit_cast<uint64_t>(timestamp_s);
    for (int i = 0; i < 8; ++i) message[i] = static_cast<char>((bits >> (8 * i)) & 0xff);
    message += image;
    return SendBinary(message, timeout_s);
  }
  bool SendBinary(const std::string& bytes, double timeout_s = 10) { return Write(bytes, false, timeout_s); }
  bool SendText(const std::string& text, double timeout_s = 10) { return Write(text, true, timeout_s); }

  // The next text message parsed as JSON; nullopt when the stream closed (close_code() says how),
  // on timeout, or for a message that is not JSON.
  std::optional<nlohmann::json> Receive(double timeout_s = 30) {
    namespace websocket = boost::beast::websocket;
    boost::beast::error_code ec;
    bool done = false;
    buffer_.clear();
    ws_.async_read(buffer_, [&](boost::beast::error_code e, size_t) {
      ec = e;
      done = true;
    });
    if (!RunFor(timeout_s, done)) {
      timed_out_ = true;
      return std::nullopt;
    }
    if (ec) {
      if (ec == websocket::error::closed) close_code_ = static_cast<int>(ws_.reason().code);
      return std::nullopt;
    }
    auto j = nlohmann::json::parse(boost::beast::buffers_to_string(buffer_.data()), nullptr, false);
    if (j.is_discarded()) return std::nullopt;
    return j;
  }

  // Starts the close handshake with `code` and waits for it.
  bool Close(int code = 1000, double timeout_s = 10) {
    bool done = false;
    ws_.async_close(boost::beast::websocket::close_reason(static_cast<uint16_t>(code)),
                    [&](boost::beast::error_code) { done = true; });
    return RunFor(timeout_s, done);
  }

  int close_code() const { return close_code_; }  // the server's close code; -1 before it closed
  bool timed_out() const { return timed_out_; }

 private:
  bool Write(const std::string& bytes, bool text, double timeout_s) {
    boost::beast::error_code ec;
    bool done = false;
    ws_.text(text);
    ws_.async_write(boost::asio::buffer(bytes), [&](boost::beast::error_code e, size_t) {
      ec = e;
      done = true;
    });
    return RunFor(timeout_s, done) && !ec;
  }

  // Runs the io_context until `done` or the timeout; on timeout cancels the operation.
  bool RunFor(double timeout_s, const bool& done) {
    ioc_.restart();
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
    while (!done && std::chrono::steady_clock::now() < until) {
      ioc_.run_one_until(until);
      if (ioc_.stopped()) ioc_.restart();
    }
    if (done) return true;
    boost::beast::get_lowest_layer(ws_).socket().cancel();
    ioc_.restart();
    ioc_.run_for(std::chrono::seconds(1));
    return false;
  }

  boost::asio::io_context ioc_;
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_{ioc_};
  boost::beast::websocket::response_type response_;
  boost::beast::flat_buffer buffer_;
  int close_code_ = -1;
  bool timed_out_ = false;
};

}  // namespace deepscan::testing

#endif  // DEEPSCAN_TESTS_SERVICE_WS_CLIENT_H_
