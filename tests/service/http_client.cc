#include "http_client.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>

namespace deepscan::testing {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

net::io_context& Context() {
  static net::io_context ioc;
  return ioc;
}

std::chrono::milliseconds Ms(double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000)); }

}  // namespace

std::unique_ptr<HttpConnection> HttpConnection::Open(int port, const std::string& from) {
  tcp::socket s(Context());
  beast::error_code ec;
  if (!from.empty()) {  // another loopback address (127.0.0.0/8) makes another client
    s.open(tcp::v4(), ec);
    if (!ec) s.bind(tcp::endpoint(net::ip::make_address(from, ec), 0), ec);
    if (ec) return nullptr;
  }
  s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)), ec);
  if (ec) return nullptr;
  return std::unique_ptr<HttpConnection>(new HttpConnection(std::move(s)));
}

bool HttpConnection::Send(std::string_view bytes) {
  socket_.SetWriteLimits(Clock::now() + Ms(60), Ms(60));
  beast::error_code ec;
  net::write(socket_, net::buffer(bytes.data(), bytes.size()), ec);
  return !ec;
}

bool HttpConnection::SendRequest(const std::string& method, const std::string& target, const std::string& body,
                                 const Headers& headers) {
  std::string head = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  bool has_length = false;
  for (const auto& [k, v] : headers) {
    head += k + ": " + v + "\r\n";
    std::string lower = k;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    has_length = has_length || lower == "content-length" || lower == "transfer-encoding";
  }
  if (!has_length && (!body.empty() || method == "POST"))
    head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  head += "\r\n";
  return Send(head + body);
}

std::optional<HttpResponse> HttpConnection::Read(double timeout_s) {
  socket_.SetReadLimits(Clock::now() + Ms(timeout_s), Ms(timeout_s));
  http::response_parser<http::string_body> p;
  p.body_limit(1ull << 30);
  beast::error_code ec;
  http::read(socket_, buffer_, p, ec);
  if (ec) return std::nullopt;
  HttpResponse r;
  r.status = static_cast<int>(p.get().result_int());
  for (const auto& f : p.get()) {
    std::string name(f.name_string());
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    r.headers[name] = std::string(f.value());
  }
  r.body = p.get().body();
  r.keep_alive = p.get().keep_alive();
  return r;
}

std::string HttpConnection::ReadUntilClosed(double timeout_s) {
  socket_.SetReadLimits(Clock::now() + Ms(timeout_s), Ms(timeout_s));
  std::string out(static_cast<const char*>(buffer_.data().data()), buffer_.size());
  buffer_.consume(buffer_.size());
  char chunk[4096];
  while (true) {
    beast::error_code ec;
    const size_t n = socket_.read_some(net::buffer(chunk), ec);
    if (ec) return out;
    out.append(chunk, n);
  }
}

bool HttpConnection::HasData(double timeout_s) {
  if (buffer_.size() > 0) return true;
  return socket_.WaitReadable(Ms(timeout_s), false, [] { return false; }) == serve::DeadlineSocket::Wait::kReady;
}

bool HttpConnection::ClosedByServer(double timeout_s) {
  socket_.SetReadLimits(Clock::now() + Ms(timeout_s), Ms(timeout_s));
  buffer_.consume(buffer_.size());
  char sink[4096];
  while (true) {
    beast::error_code ec;
    socket_.read_some(net::buffer(sink), ec);
    if (ec == beast::error::timeout) return false;
    if (ec) return true;  // eof or reset
  }
}

std::optional<HttpResponse> Fetch(int port, const std::string& method, const std::string& target,
                                  const std::string& body, const Headers& headers, double timeout_s) {
  auto c = HttpConnection::Open(port);
  if (!c || !c->SendRequest(method, target, body, headers)) return std::nullopt;
  return c->Read(timeout_s);
}

std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace deepscan::testing
