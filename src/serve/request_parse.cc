#include "serve/request_parse.h"

#include <cstdint>

namespace deepscan::serve {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

std::optional<Target> SplitTarget(std::string_view target) {
  if (target.empty() || target.front() != '/') return std::nullopt;
  for (char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return std::nullopt;
  }
  Target t;
  const size_t q = target.find('?');
  t.path = target.substr(0, q);
  if (q != std::string_view::npos) t.query = target.substr(q + 1);
  // A fragment is never sent by a conforming client; drop it rather than route on it.
  if (size_t h = t.query.find('#'); h != std::string_view::npos) t.query = t.query.substr(0, h);
  if (q == std::string_view::npos) {
    if (size_t h = t.path.find('#'); h != std::string_view::npos) t.path = t.path.substr(0, h);
  }
  return t;
}

std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      const char decoded = static_cast<char>(hi * 16 + lo);
      if (decoded == '\0') return std::nullopt;
      out += decoded;
      i += 2;
    } else if (c == '\0') {
      return std::nullopt;
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::map<std::string, std::string>> ParseQuery(std::string_view query, size_t max_params) {
  std::map<std::string, std::string> out;
  size_t count = 0;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view piece = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (piece.empty()) continue;
    if (++count > max_params) return std::nullopt;
    const size_t eq = piece.find('=');
    std::optional<std::string> key = PercentDecode(piece.substr(0, eq));
    std::optional<std::string> value =
        PercentDecode(eq == std::string_view::npos ? std::string_view() : piece.substr(eq + 1));
    if (!key || !value) return std::nullopt;
    out.emplace(std::move(*key), std::move(*value));  // the first occurrence wins
  }
  return out;
}

std::optional<bool> ParseBool(std::string_view s) {
  if (EqualsIgnoreCase(s, "true") || s == "1" || EqualsIgnoreCase(s, "yes")) return true;
  if (EqualsIgnoreCase(s, "false") || s == "0" || EqualsIgnoreCase(s, "no")) return false;
  return std::nullopt;
}

bool IsValidJobId(std::string_view id) {
  if (id.size() != kJobIdLength) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::optional<std::string_view> JobIdFromPath(std::string_view path) {
  constexpr std::string_view kPrefix = "/v1/jobs/";
  if (path.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  std::string_view id = path.substr(kPrefix.size());
  if (!IsValidJobId(id)) return std::string_view();
  return id;
}

std::optional<std::string> PresentedApiKey(std::string_view authorization, bool has_authorization,
                                           std::string_view x_api_key, bool has_x_api_key) {
  if (has_authorization) {
    std::string_view v = Trim(authorization);
    constexpr std::string_view kScheme = "bearer";
    if (v.size() <= kScheme.size() || !EqualsIgnoreCase(v.substr(0, kScheme.size()), kScheme)) return std::nullopt;
    const char sep = v[kScheme.size()];
    if (sep != ' ' && sep != '\t') return std::nullopt;
    std::string_view token = Trim(v.substr(kScheme.size()));
    if (token.empty()) return std::nullopt;
    return std::string(token);
  }
  if (has_x_api_key) {
    std::string_view token = Trim(x_api_key);
    if (token.empty()) return std::nullopt;
    return std::string(token);
  }
  return std::nullopt;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // Walk the longer of the two so the time depends on the lengths only; a length mismatch
  // still fails at the end.
  const size_t n = a.size() > b.size() ? a.size() : b.size();
  volatile unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = diff | static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

bool MatchesAnyKey(std::string_view presented, const std::vector<std::string>& keys) {
  bool any = false;
  for (const std::string& k : keys) any = ConstantTimeEquals(presented, k) || any;  // no short circuit
  return any;
}

std::vector<std::string> ParseKeyFile(std::string_view text) {
  std::vector<std::string> keys;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = Trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty() || line.front() == '#') continue;
    keys.emplace_back(line);
  }
  return keys;
}

std::string MediaType(std::string_view content_type) {
  std::string_view v = Trim(content_type.substr(0, content_type.find(';')));
  std::string out(v);
  for (char& c : out) c = Lower(c);
  return out;
}

}  // namespace deepscan::serve
