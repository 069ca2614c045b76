// queue::RedisUrl: where the work queue's Redis is and how to log in, from one URL.
//
//   redis://[[user]:password@]host[:port][/db]      e.g. redis://127.0.0.1:6379/0
//                                                        redis://:s3cret@queue.internal:6380/2
//   rediss://...                                     TLS: kNotSupported in this build (Debian's
//                                                    libhiredis-dev 0.14 ships no hiredis_ssl)
// Host: a name, an IPv4 address or an [IPv6] literal in brackets. Port 1..65535 (default 6379),
// db 0..15 by default in Redis (we accept 0..1000000; Redis refuses a db it lacks). User and
// password may be percent-encoded (%40 for '@', %3A for ':'). Nothing else (no query, no
// fragment, no unix sockets) is accepted: a URL we cannot fully honour is an error, never
// silently half-used.
// Threading: pure functions.
#ifndef DEEPSCAN_QUEUE_REDIS_URL_H_
#define DEEPSCAN_QUEUE_REDIS_URL_H_

#include <string>
#include <string_view>

#include "deepscan/status.h"

namespace deepscan::queue {

struct RedisUrl {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  std::string user;      // "" = the default user (AUTH with the password only)
  std::string password;  // "" = no AUTH
  bool tls = false;      // rediss://
};

// Parses `url`. Errors: kInvalidArgument (names what is wrong, never echoes the password),
// kNotSupported (rediss:// in a build without TLS).
Result<RedisUrl> ParseRedisUrl(std::string_view url);

// The URL again with the password replaced by "***" (for logs and status output).
std::string Redacted(const RedisUrl& url);

// True when this build can speak TLS to Redis (false: Debian's hiredis has no hiredis_ssl).
bool TlsSupported();

}  // namespace deepscan::queue

#endif  // DEEPSCAN_QUEUE_REDIS_URL_H_
