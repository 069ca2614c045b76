// queue::RedisConnection: one blocking connection to Redis (hiredis), with replies copied into
// plain structs so that no hiredis type leaves this file.
//
// In:  a RedisUrl (host, port, db, credentials) and a connect timeout.
// Out: Reply trees for commands given as argument vectors (binary-safe: no format strings, so
//      no quoting or injection through paths or names).
// Errors: a transport failure (refused, reset, timed out, protocol error) returns kIoError and
//      marks the connection broken(): every later call fails at once until the caller makes a
//      new connection (see Reconnecting in work_queue.h). A Redis error reply ("-ERR ...",
//      "-BUSYGROUP ...") is not a transport failure: it is a Reply of type kError.
// Threading: one thread at a time per connection (hiredis contexts are not thread-safe); use
//      one connection per thread.
#ifndef DEEPSCAN_QUEUE_REDIS_CONNECTION_H_
#define DEEPSCAN_QUEUE_REDIS_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "deepscan/status.h"
#include "queue/redis_url.h"

struct redisContext;  // hiredis

namespace deepscan::queue {

struct Reply {
  enum class Type { kNil, kString, kStatus, kError, kInteger, kArray };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  int64_t integer = 0;
  std::vector<Reply> elements;  // kArray

  bool nil() const { return type == Type::kNil; }
  bool error() const { return type == Type::kError; }
  bool array() const { return type == Type::kArray; }
  bool text() const { return type == Type::kString || type == Type::kStatus; }
};

class RedisConnection {
 public:
  // Connects (within `timeout_s`), then AUTH (when the URL has a password) and SELECT (db != 0).
  // Each command's socket reads and writes time out after `io_timeout_s` (give blocking reads,
  // XREADGROUP BLOCK, at least a second less). Errors: kIoError ("cannot reach redis at
  // HOST:PORT: Connection refused"; AUTH or SELECT refused, with Redis' message), kNotSupported
  // (a TLS URL).
  static Result<std::unique_ptr<RedisConnection>> Connect(const RedisUrl& url, double timeout_s,
                                                          double io_timeout_s = 30);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Sends one command and reads its reply. Errors: kIoError (transport; broken() is then true).
  Result<Reply> Command(const std::vector<std::string>& args);
  // Sends every command, then reads every reply (one round trip). Errors as Command.
  Result<std::vector<Reply>> Pipeline(const std::vector<std::vector<std::string>>& commands);
  // MULTI, the commands, EXEC as one pipeline: the commands run atomically. Returns EXEC's replies
  // (one per command). Errors: kIoError (transport, or Redis refused to queue a command).
  Result<std::vector<Reply>> Transaction(const std::vector<std::vector<std::string>>& commands);

  bool broken() const { return broken_; }
  const RedisUrl& url() const { return url_; }

 private:
  RedisConnection() = default;
  Status Fail(const std::string& what);

  redisContext* ctx_ = nullptr;
  RedisUrl url_;
  bool broken_ = false;
};

}  // namespace deepscan::queue

#endif  // DEEPSCAN_QUEUE_REDIS_CONNECTION_H_
