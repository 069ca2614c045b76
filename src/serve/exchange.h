// serve/exchange: one HTTP request and its response, as the routes (serve/api.h) see them. The
// connection code (serve/server.cc) fills a Request from Boost.Beast's parsed header and reads
// the body only when a route asks for it through BodyReader, so a route can refuse a request
// (401, 413 by Content-Length, 415, 503) before a byte of its body is read.
// Threading: one exchange belongs to one connection at a time (its I/O strand, then the request
// thread that runs the route).
#ifndef DEEPSCAN_SERVE_EXCHANGE_H_
#define DEEPSCAN_SERVE_EXCHANGE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace deepscan::serve {

struct Request {
  std::string method;  // as sent: "GET", "POST", ...
  std::string path;    // origin-form path, not decoded (serve/request_parse.h)
  std::string query;   // raw query string, without '?'
  std::string content_type;
  std::optional<std::string> authorization;  // header values when present
  std::optional<std::string> x_api_key;
  std::optional<std::string> variant;      // X-Deepscan-Variant: the A/B variant the client asks for
  std::optional<uint64_t> content_length;  // none for chunked bodies
  bool has_body = false;                   // Content-Length > 0 or chunked
  bool websocket_upgrade = false;          // a WebSocket opening handshake (Upgrade: websocket, GET)
  std::string remote;                      // peer address, for logs
};

enum class BodyOutcome {
  kOk,
  kTooLarge,    // past the limit (also a chunked body that grows past it): 413
  kTimeout,     // the client paused longer than the read timeout: 408
  kMalformed,   // bad chunked framing: 400
  kClientGone,  // the connection closed mid-body: nothing to answer
  kIoError,     // the server could not store the body: 500
};

class BodyReader {
 public:
  virtual ~BodyReader() = default;
  // Reads the whole body (answering "Expect: 100-continue" first) into `out`.
  virtual BodyOutcome ReadToString(uint64_t limit, std::string* out) = 0;
  // Reads the whole body into the existing file `path` (truncated first); `bytes` gets its size.
  virtual BodyOutcome ReadToFile(const std::string& path, uint64_t limit, uint64_t* bytes) = 0;
};

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // beyond Content-Type/Length, Server
  std::string error_code;                                    // the error body's code (metrics, logs); empty for success
  bool close = false;                                        // close the connection after this response
  bool drop = false;                                         // close without answering: the client is gone
  bool upgrade = false;  // 101: the connection becomes a WebSocket stream (serve/stream.h)
  size_t variant = 0;    // with `upgrade`: the A/B variant that scores the stream
};

// What the connection does with a request once its header is whole (Api::Admit): answer it at
// once, or read its body first (into memory or into a file in the upload folder, at most
// `limit` bytes) and then hand the whole request to a request thread (Api::Handle).
struct Admission {
  std::optional<Response> answer;  // answered from the header: refused, or a route that needs no body
  enum class Body { kNone, kMemory, kFile } body = Body::kNone;
  uint64_t limit = 0;
};

// A JSON body.
Response JsonResponse(int status, const nlohmann::json& body);
// {"error": {"code": code, "message": message}}.
Response ErrorResponse(int status, std::string_view code, std::string_view message);

}  // namespace deepscan::serve

#endif  // DEEPSCAN_SERVE_EXCHANGE_H_
