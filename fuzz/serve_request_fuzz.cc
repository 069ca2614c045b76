// libFuzzer target: the request parsing `deepscan serve` owns (serve/request_parse.h,
// serve/image_probe.h), fed by Boost.Beast's own parser as in the server. The input is a raw
// HTTP request; its target, Authorization, X-API-Key and Content-Type go through our parsers and
// its body through the image probe; the bytes also as a WebSocket stream message. Invariants: a job id that passes is
// 32 lowercase hex digits (no '.', '/', '%'); a split target starts with '/' and its path holds no '?'; decoded text
// holds no NUL; constant-time comparison agrees with ==; probed images have positive sizes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/beast/http.hpp>

#include "serve/image_probe.h"
#include "serve/request_parse.h"
#include "serve/stream_message.h"

namespace http = boost::beast::http;
using namespace deepscan::serve;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // The pieces on their own, whatever the bytes.
  if (auto t = SplitTarget(input)) {
    if (t->path.empty() || t->path.front() != '/' || t->path.find('?') != std::string_view::npos) __builtin_trap();
    if (auto q = ParseQuery(t->query)) {
      for (const auto& [k, v] : *q) {
        if (k.find('\0') != std::string::npos || v.find('\0') != std::string::npos) __builtin_trap();
      }
    }
    if (auto id = JobIdFromPath(t->path); id && !id->empty()) {
      if (id->size() != kJobIdLength || id->find_first_not_of("0123456789abcdef") != std::string_view::npos) {
        __builtin_trap();
      }
    }
  }
  if (auto d = PercentDecode(input); d && d->find('\0') != std::string::npos) __builtin_trap();
  const size_t half = size / 2;
  if (ConstantTimeEquals(input.substr(0, half), input.substr(half)) != (input.substr(0, half) == input.substr(half))) {
    __builtin_trap();
  }
  ParseKeyFile(input);
  MediaType(input);
  if (auto img = ProbeImage(input); img && (img->width <= 0 || img->height <= 0)) __builtin_trap();
  // A WebSocket stream's messages (serve/stream.h): a frame keeps every byte after its timestamp.
  if (auto f = ParseFrameMessage(input); f.ok()) {
    if (!(f->timestamp_s >= 0) || f->image.size() != size - 8 || f->image.data() != input.data() + 8) __builtin_trap();
  }
  IsEndMessage(input);

  // As the server sees it: Beast parses the header, then our code reads its fields.
  http::request_parser<http::string_body> p;
  p.header_limit(16 * 1024);
  p.body_limit(64 * 1024);
  p.eager(true);
  boost::beast::error_code ec;
  p.put(boost::asio::buffer(data, size), ec);
  if (!p.is_header_done()) return 0;
  const auto& h = p.get();
  if (auto t = SplitTarget(std::string_view(h.target().data(), h.target().size()))) {
    JobIdFromPath(t->path);
    ParseQuery(t->query);
  }
  const auto auth = h.find(http::field::authorization);
  const auto key = h.find("X-API-Key");
  auto presented = PresentedApiKey(
      auth == h.end() ? "" : std::string_view(auth->value().data(), auth->value().size()), auth != h.end(),
      key == h.end() ? "" : std::string_view(key->value().data(), key->value().size()), key != h.end());
  if (presented) MatchesAnyKey(*presented, {"k1", std::string(presented->size(), 'x')});
  MediaType(std::string_view(h[http::field::content_type].data(), h[http::field::content_type].size()));
  if (p.is_done()) ProbeImage(h.body());
  return 0;
}
