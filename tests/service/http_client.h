// A small blocking HTTP/1.1 client for the service tests: well-formed requests through Beast,
// and raw bytes for the malformed, slow and truncated ones. Every read is bounded by a timeout
// (serve::DeadlineSocket), so a server that hangs fails the test instead of hanging it.
#ifndef DEEPSCAN_TESTS_SERVICE_HTTP_CLIENT_H_
#define DEEPSCAN_TESTS_SERVICE_HTTP_CLIENT_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/core/flat_buffer.hpp>

#include "serve/deadline_socket.h"

namespace deepscan::testing {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  bool keep_alive = false;
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
};

using Headers = std::vector<std::pair<std::string, std::string>>;

class HttpConnection {
 public:
  // Connects to 127.0.0.1:port; nullptr when the connection is refused.
  // A connection to 127.0.0.1:port, from the loopback address `from` when given (127.0.0.2, ...).
  static std::unique_ptr<HttpConnection> Open(int port, const std::string& from = "");

  // Sends raw bytes; false when the server closed the connection.
  bool Send(std::string_view bytes);
  // Sends one well-formed request (Content-Length set from `body` unless given in `headers`).
  bool SendRequest(const std::string& method, const std::string& target, const std::string& body = "",
                   const Headers& headers = {});
  // Reads one response; nullopt on timeout or when the server closed first.
  std::optional<HttpResponse> Read(double timeout_s = 60);
  // Every byte the server sends until it closes the connection (or `timeout_s` passes).
  std::string ReadUntilClosed(double timeout_s);
  // True when the server has sent something (or closed) within `timeout_s`.
  bool HasData(double timeout_s);
  // True when the server closes the connection within `timeout_s` (discarding what it sends).
  bool ClosedByServer(double timeout_s);

 private:
  explicit HttpConnection(boost::asio::ip::tcp::socket s) : socket_(std::move(s), -1) {}
  serve::DeadlineSocket socket_;
  boost::beast::flat_buffer buffer_;
};

// One request on a fresh connection.
std::optional<HttpResponse> Fetch(int port, const std::string& method, const std::string& target,
                                  const std::string& body = "", const Headers& headers = {}, double timeout_s = 60);

std::string ReadFileBytes(const std::string& path);

}  // namespace deepscan::testing

#endif  // DEEPSCAN_TESTS_SERVICE_HTTP_CLIENT_H_
