#include "queue/redis_url.h"

#include <charconv>

namespace deepscan::queue {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `in`; false on a malformed escape or a decoded NUL.
bool PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = HexDigit(in[i + 1]), lo = HexDigit(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    char c = static_cast<char>(hi * 16 + lo);
    if (c == '\0') return false;
    out->push_back(c);
    i += 2;
  }
  return true;
}

bool ParseInt(std::string_view s, int lo, int hi, int* out) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  int v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool HostCharOk(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_';
}

}  // namespace

bool TlsSupported() { return false; }

Result<RedisUrl> ParseRedisUrl(std::string_view url) {
  auto bad = [](const std::string& why) {
    return Status::InvalidArgument("bad queue URL (" + why +
                                   "); expected redis://[[user]:password@]host[:port][/db]");
  };
  if (url.size() > 4096) return bad("longer than 4096 characters");
  RedisUrl out;
  std::string_view rest;
  if (url.substr(0, 8) == "redis://") {
    rest = url.substr(8);
  } else if (url.substr(0, 9) == "rediss://") {
    return Status::NotSupported(
        "rediss:// (TLS) is not supported by this build: Debian's libhiredis-dev has no hiredis_ssl; reach Redis "
        "over a private network or a TLS tunnel (stunnel, spiped) and use redis:// (docs/queue.md)");
  } else {
    return bad("it must start with redis://");
  }
  for (char c : rest) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return bad("control character or space");
  }
  if (rest.find('?') != std::string_view::npos) return bad("query parameters are not supported");
  if (rest.find('#') != std::string_view::npos) return bad("a fragment is not supported");
  // Credentials: everything before the last '@' (a password may hold '@' only percent-encoded,
  // but a raw one is taken as part of it too).
  size_t at = rest.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view cred = rest.substr(0, at);
    rest = rest.substr(at + 1);
    size_t colon = cred.find(':');
    std::string_view user = colon == std::string_view::npos ? std::string_view() : cred.substr(0, colon);
    std::string_view pass = colon == std::string_view::npos ? cred : cred.substr(colon + 1);
    if (!PercentDecode(user, &out.user)) return bad("malformed %-escape in the user name");
    if (!PercentDecode(pass, &out.password)) return bad("malformed %-escape in the password");
    if (out.password.empty()) return bad("'@' without a password");
  }
  // Authority and path.
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  std::string_view host, port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unclosed '[' in the host");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("junk after the IPv6 address");
      port = after.substr(1);
      if (port.empty()) return bad("empty port");
    }
    if (host.empty()) return bad("empty host");
    for (char c : host) {
      if (HexDigit(c) < 0 && c != ':' && c != '.') return bad("not an IPv6 address in brackets");
    }
  } else {
    size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return bad("empty port");
    }
    if (host.empty()) return bad("no host");
    if (host.size() > 253) return bad("host name too long");
    for (char c : host) {
      if (!HostCharOk(c)) return bad("invalid character in the host");
    }
  }
  out.host = std::string(host);
  if (!port.empty() && !ParseInt(port, 1, 65535, &out.port)) return bad("port must be a number in 1..65535");
  if (!path.empty() && !ParseInt(path, 0, 1000000, &out.db)) return bad("the path must be a database number");
  return out;
}

std::string Redacted(const RedisUrl& url) {
  std::string s = url.tls ? "rediss://" : "redis://";
  if (!url.password.empty()) s += url.user + ":***@";
  bool v6 = url.host.find(':') != std::string::npos;
  s += v6 ? "[" + url.host + "]" : url.host;
  s += ":" + std::to_string(url.port) + "/" + std::to_string(url.db);
  return s;
}

}  // namespace deepscan::queue
