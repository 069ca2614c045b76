#include "queue/redis_connection.h"

#include <hiredis.h>

#include <cmath>

namespace deepscan::queue {
namespace {

timeval ToTimeval(double s) {
  if (!(s > 0)) s = 0.001;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(std::floor(s));
  tv.tv_usec = static_cast<suseconds_t>((s - std::floor(s)) * 1e6);
  return tv;
}

Reply Convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
      break;
    default:
      out.type = Reply::Type::kNil;
  }
  return out;
}

// Appends one command to the context's output buffer.
bool Append(redisContext* ctx, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  return redisAppendCommandArgv(ctx, static_cast<int>(args.size()), argv.data(), lens.data()) == REDIS_OK;
}

}  // namespace

Result<std::unique_ptr<RedisConnection>> RedisConnection::Connect(const RedisUrl& url, double timeout_s,
                                                                  double io_timeout_s) {
  if (url.tls) return Status::NotSupported("TLS to Redis is not supported by this build");
  auto conn = std::unique_ptr<RedisConnection>(new RedisConnection());
  conn->url_ = url;
  const std::string where = url.host + ":" + std::to_string(url.port);
  conn->ctx_ = redisConnectWithTimeout(url.host.c_str(), url.port, ToTimeval(timeout_s));
  if (conn->ctx_ == nullptr) return Status::IoError("cannot reach redis at " + where + ": out of memory");
  if (conn->ctx_->err) {
    return Status::IoError("cannot reach redis at " + where + ": " + conn->ctx_->errstr);
  }
  redisSetTimeout(conn->ctx_, ToTimeval(io_timeout_s));
  redisEnableKeepAlive(conn->ctx_);
  if (!url.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!url.user.empty()) auth.push_back(url.user);
    auth.push_back(url.password);
    Result<Reply> r = conn->Command(auth);
    if (!r.ok()) return Status::IoError("cannot reach redis at " + where + ": " + r.status().message());
    if (r->error()) return Status::IoError("redis at " + where + " refused the login: " + r->str);
  }
  if (url.db != 0) {
    Result<Reply> r = conn->Command({"SELECT", std::to_string(url.db)});
    if (!r.ok()) return Status::IoError("cannot reach redis at " + where + ": " + r.status().message());
    if (r->error()) return Status::IoError("redis at " + where + " refused database " + std::to_string(url.db) +
                                           ": " + r->str);
  }
  // A server that wants a password we did not give answers every command with NOAUTH: say so now.
  Result<Reply> ping = conn->Command({"PING"});
  if (!ping.ok()) return Status::IoError("cannot reach redis at " + where + ": " + ping.status().message());
  if (ping->error()) return Status::IoError("redis at " + where + " refused the connection: " + ping->str);
  return conn;
}

RedisConnection::~RedisConnection() {
  if (ctx_ != nullptr) redisFree(ctx_);
}

Status RedisConnection::Fail(const std::string& what) {
  broken_ = true;
  std::string why = ctx_ != nullptr && ctx_->err ? ctx_->errstr : "connection lost";
  if (why.empty()) why = "connection lost";
  return Status::IoError("redis at " + url_.host + ":" + std::to_string(url_.port) + ": " + what + ": " + why);
}

Result<Reply> RedisConnection::Command(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(std::vector<Reply> replies, Pipeline({args}));
  return std::move(replies.front());
}

Result<std::vector<Reply>> RedisConnection::Pipeline(const std::vector<std::vector<std::string>>& commands) {
  if (broken_) return Status::IoError("redis connection is broken (reconnect)");
  for (const auto& c : commands) {
    if (c.empty()) return Status::InvalidArgument("empty redis command");
    if (!Append(ctx_, c)) return Fail("cannot send " + c.front());
  }
  std::vector<Reply> out;
  out.reserve(commands.size());
  for (const auto& c : commands) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) return Fail(c.front());
    auto* r = static_cast<redisReply*>(raw);
    out.push_back(Convert(r));
    freeReplyObject(r);
  }
  return out;
}

Result<std::vector<Reply>> RedisConnection::Transaction(const std::vector<std::vector<std::string>>& commands) {
  std::vector<std::vector<std::string>> all;
  all.reserve(commands.size() + 2);
  all.push_back({"MULTI"});
  all.insert(all.end(), commands.begin(), commands.end());
  all.push_back({"EXEC"});
  ASSIGN_OR_RETURN(std::vector<Reply> replies, Pipeline(all));
  for (size_t i = 0; i + 1 < replies.size(); ++i) {
    if (replies[i].error()) return Status::IoError("redis refused " + all[i].front() + ": " + replies[i].str);
  }
  Reply& exec = replies.back();
  if (exec.error()) return Status::IoError("redis refused the transaction: " + exec.str);
  if (!exec.array()) return Status::IoError("redis aborted the transaction");
  return std::move(exec.elements);
}

}  // namespace deepscan::queue
