// serve/request_parse: the pieces of an HTTP request the server interprets itself, after
// Boost.Beast has parsed the message: the target (path and query string), job ids, API keys.
//
// In:  raw bytes from the request line and header fields, as the client sent them (untrusted).
// Out: validated values, or nullopt / false for anything malformed. Nothing here touches the
//      filesystem: a job id is a lookup key only, and it is accepted only as exactly 32
//      lowercase hexadecimal digits, so no spelling of "..", "/" or "%2F" can reach past it.
// Threading: pure functions. Fuzzed by fuzz/serve_request_fuzz.cc.
#ifndef DEEPSCAN_SERVE_REQUEST_PARSE_H_
#define DEEPSCAN_SERVE_REQUEST_PARSE_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace deepscan::serve {

struct Target {
  std::string_view path;   // starts with '/'; never percent-decoded (routes compare raw bytes)
  std::string_view query;  // after '?', without it; empty when absent
};

// Splits an origin-form request target ("/v1/scan?wait=false"). Fails for anything else
// (absolute-form "http://h/x", "*", an empty target, bytes below 0x21 or 0x7f and above).
std::optional<Target> SplitTarget(std::string_view target);

// Decodes %XX escapes and '+' (as a space, the form encoding). Fails on a truncated or
// non-hexadecimal escape and on a NUL, raw or decoded.
std::optional<std::string> PercentDecode(std::string_view s);

// Parses "a=1&b=x%20y&c" into {a: "1", b: "x y", c: ""}. The first occurrence of a key wins;
// empty pieces ("a=1&&b=2") are skipped. Fails when a key or value does not decode, or when
// there are more than `max_params` parameters.
std::optional<std::map<std::string, std::string>> ParseQuery(std::string_view query, size_t max_params = 32);

// "true" / "1" / "yes" -> true, "false" / "0" / "no" -> false (ASCII case-insensitive).
std::optional<bool> ParseBool(std::string_view s);

// A job id: 128 random bits as exactly 32 lowercase hexadecimal digits.
inline constexpr size_t kJobIdLength = 32;
bool IsValidJobId(std::string_view id);

// The job id of "/v1/jobs/<id>" (the path only, no query). nullopt when `path` is not under
// "/v1/jobs/" at all; an empty string_view when it is but what follows is not a valid id.
std::optional<std::string_view> JobIdFromPath(std::string_view path);

// The API key a request presents: "Authorization: Bearer <key>" (scheme case-insensitive,
// surrounding spaces ignored) or, when that header is absent, "X-API-Key: <key>". nullopt when
// neither is present or the Authorization header is not a Bearer credential.
std::optional<std::string> PresentedApiKey(std::string_view authorization, bool has_authorization,
                                           std::string_view x_api_key, bool has_x_api_key);

// Compares `a` and `b` in time that depends only on their lengths, not on where they differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// True when `presented` equals one of `keys`. Every key is compared (no early exit), each in
// constant time, so timing reveals neither which key nor how much of one matched.
bool MatchesAnyKey(std::string_view presented, const std::vector<std::string>& keys);

// Reads API keys from the text of a key file: one per line, surrounding whitespace trimmed,
// empty lines and lines starting with '#' skipped.
std::vector<std::string> ParseKeyFile(std::string_view text);

// The media type of a Content-Type value, lowercased, without parameters:
// "Video/MP4; codecs=avc1" -> "video/mp4".
std::string MediaType(std::string_view content_type);

}  // namespace deepscan::serve

#endif  // DEEPSCAN_SERVE_REQUEST_PARSE_H_
