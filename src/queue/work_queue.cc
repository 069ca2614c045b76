#include "queue/work_queue.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

namespace deepscan::queue {
namespace {

using nlohmann::json;

// Touch: reset the idle time of an entry we still own, and store its progress.
constexpr const char* kTouchScript = R"lua(
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 1 and p[1][2] == ARGV[3] then
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID')
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
  return 1
end
return 0
)lua";

// Retry: remember the failure; make the entry claimable after the retry delay (if still ours).
constexpr const char* kRetryScript = R"lua(
redis.call('HSET', KEYS[2], ARGV[2], ARGV[5])
redis.call('HINCRBY', KEYS[3], 'retried', 1)
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 1 and p[1][2] == ARGV[3] then
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'IDLE', ARGV[4], 'JUSTID')
  return 1
end
return 0
)lua";

// Submit of a serve job: the entry and its job index together.
constexpr const char* kSubmitJobScript = R"lua(
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('HSET', KEYS[2], ARGV[1], id)
redis.call('HINCRBY', KEYS[3], 'submitted', 1)
return id
)lua";

Status Refused(const std::string& what, const Reply& r) {
  return Status::IoError("redis refused " + what + ": " + r.str);
}

std::string Ms(double s) { return std::to_string(static_cast<int64_t>(std::llround(std::max(0.0, s) * 1000.0))); }

std::string Fixed(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

// Orders "<ms>-<seq>" ids numerically.
bool EntryLess(const std::string& a, const std::string& b) {
  auto split = [](const std::string& id) {
    size_t d = id.find('-');
    return std::make_pair(std::stoull(id.substr(0, d)), std::stoull(id.substr(d + 1)));
  };
  if (!ValidEntryId(a) || !ValidEntryId(b)) return a < b;
  return split(a) < split(b);
}

// [id, [field, value, ...]] -> Delivery (malformed when the fields do not decode).
std::optional<Delivery> ToDelivery(const Reply& item) {
  if (!item.array() || item.elements.size() != 2 || !item.elements[0].text()) return std::nullopt;
  Delivery d;
  d.entry.id = item.elements[0].str;
  std::vector<std::string> fields;
  if (item.elements[1].array()) {
    for (const Reply& f : item.elements[1].elements) fields.push_back(f.str);
  }
  Result<VideoEntry> e = DecodeEntry(d.entry.id, fields);
  if (e.ok()) {
    d.entry = std::move(*e);
  } else {
    d.malformed = e.status();
  }
  return d;
}

// A flat [k, v, k, v] reply as a map.
std::map<std::string, Reply> Pairs(const Reply& r) {
  std::map<std::string, Reply> out;
  if (!r.array()) return out;
  for (size_t i = 0; i + 1 < r.elements.size(); i += 2) out[r.elements[i].str] = r.elements[i + 1];
  return out;
}

int64_t ToInt(const Reply& r) {
  if (r.type == Reply::Type::kInteger) return r.integer;
  if (r.text()) {
    try {
      return std::stoll(r.str);
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

// The workers group's pending count and lag from an XINFO GROUPS reply; false when Redis gave no
// lag (it cannot, after entries were deleted from the stream): the caller then estimates it.
bool GroupCounts(const Reply& groups, int64_t* pending, int64_t* lag) {
  if (!groups.array()) return false;
  bool have_lag = false;
  for (const Reply& g : groups.elements) {
    auto f = Pairs(g);
    if (f["name"].str != kGroup) continue;
    *pending = ToInt(f["pending"]);
    if (f.count("lag") && f["lag"].type == Reply::Type::kInteger) {
      *lag = f["lag"].integer;
      have_lag = true;
    }
  }
  return have_lag;
}

}  // namespace

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Result<std::unique_ptr<WorkQueue>> WorkQueue::Open(const QueueOptions& options) {
  if (options.name.empty() || options.name.size() > 200) {
    return Status::InvalidArgument("queue name must have 1..200 characters");
  }
  if (!(options.claim_idle_s > 0)) return Status::InvalidArgument("claim idle time must be positive");
  if (options.max_attempts < 1) return Status::InvalidArgument("max attempts must be at least 1");
  if (!(options.retry_delay_s >= 0) || options.retry_delay_s > options.claim_idle_s) {
    return Status::InvalidArgument("retry delay must be in [0, claim idle time]");
  }
  ASSIGN_OR_RETURN(RedisUrl url, ParseRedisUrl(options.url));
  auto q = std::unique_ptr<WorkQueue>(new WorkQueue(options, url));
  RETURN_IF_ERROR(q->Reconnect());
  return q;
}

Status WorkQueue::Reconnect() {
  conn_.reset();
  // Reads time out well after the longest blocking read (ReadNew blocks for seconds at most).
  ASSIGN_OR_RETURN(conn_, RedisConnection::Connect(url_, options_.connect_timeout_s, 30));
  Status s = EnsureGroup();
  if (!s.ok()) conn_.reset();
  return s;
}

Status WorkQueue::EnsureGroup() {
  ASSIGN_OR_RETURN(Reply r, Run({"XGROUP", "CREATE", Key("videos"), kGroup, "0", "MKSTREAM"}));
  if (r.error() && r.str.rfind("BUSYGROUP", 0) != 0) return Refused("XGROUP CREATE", r);
  return Status::Ok();
}

Result<Reply> WorkQueue::Run(const std::vector<std::string>& args) {
  if (conn_ == nullptr) return Status::IoError("not connected to redis at " + url_.host + ":" + std::to_string(url_.port));
  return conn_->Command(args);
}

Result<std::vector<std::string>> WorkQueue::Submit(const std::vector<VideoEntry>& entries) {
  std::vector<std::string> ids;
  ids.reserve(entries.size());
  constexpr size_t kRound = 512;
  for (size_t start = 0; start < entries.size(); start += kRound) {
    std::vector<std::vector<std::string>> cmds;
    size_t end = std::min(entries.size(), start + kRound);
    for (size_t i = start; i < end; ++i) {
      const VideoEntry& e = entries[i];
      std::vector<std::string> fields = EncodeEntry(e);
      Result<VideoEntry> check = DecodeEntry("0-1", fields);
      if (!check.ok()) return Status::InvalidArgument("cannot submit " + e.video.substr(0, 200) + ": " + check.status().message());
      std::vector<std::string> cmd;
      if (e.job.empty()) {
        cmd = {"XADD", Key("videos"), "*"};
        cmd.insert(cmd.end(), fields.begin(), fields.end());
      } else {
        cmd = {"EVAL", kSubmitJobScript, "3", Key("videos"), Key("jobs"), Key("stats"), e.job};
        cmd.insert(cmd.end(), fields.begin(), fields.end());
      }
      cmds.push_back(std::move(cmd));
    }
    size_t plain = 0;
    for (size_t i = start; i < end; ++i) plain += entries[i].job.empty() ? 1 : 0;
    if (plain > 0) cmds.push_back({"HINCRBY", Key("stats"), "submitted", std::to_string(plain)});
    if (conn_ == nullptr) return Status::IoError("not connected to redis");
    ASSIGN_OR_RETURN(std::vector<Reply> replies, conn_->Pipeline(cmds));
    for (size_t i = 0; i < end - start; ++i) {
      if (replies[i].error() || !replies[i].text()) return Refused("XADD", replies[i]);
      ids.push_back(replies[i].str);
    }
  }
  return ids;
}

Result<int> WorkQueue::DeliveriesOf(const std::string& entry_id) {
  ASSIGN_OR_RETURN(Reply r, Run({"XPENDING", Key("videos"), kGroup, entry_id, entry_id, "1"}));
  if (r.error()) return Refused("XPENDING", r);
  if (!r.array() || r.elements.empty() || !r.elements[0].array() || r.elements[0].elements.size() < 4) return 0;
  return static_cast<int>(ToInt(r.elements[0].elements[3]));
}

Result<std::optional<Delivery>> WorkQueue::Reclaim(const std::string& consumer) {
  ASSIGN_OR_RETURN(Reply r, Run({"XAUTOCLAIM", Key("videos"), kGroup, consumer, Ms(options_.claim_idle_s),
                                 reclaim_cursor_, "COUNT", "1"}));
  if (r.error()) {
    if (r.str.rfind("NOGROUP", 0) == 0) {
      RETURN_IF_ERROR(EnsureGroup());
      return std::optional<Delivery>();
    }
    return Refused("XAUTOCLAIM", r);
  }
  if (!r.array() || r.elements.size() < 2) return Status::IoError("unexpected XAUTOCLAIM reply");
  reclaim_cursor_ = r.elements[0].text() ? r.elements[0].str : "0-0";
  for (const Reply& item : r.elements[1].elements) {
    std::optional<Delivery> d = ToDelivery(item);
    if (!d) continue;  // deleted from the stream (Redis 6.2 answers nil for those)
    ASSIGN_OR_RETURN(d->deliveries, DeliveriesOf(d->entry.id));
    if (d->deliveries < 1) d->deliveries = 1;
    ASSIGN_OR_RETURN(Reply retry, Run({"HEXISTS", Key("errors"), d->entry.id}));
    d->taken_over = retry.integer == 0;
    if (d->taken_over) Run({"HINCRBY", Key("stats"), "reclaimed", "1"});
    return d;
  }
  return std::optional<Delivery>();
}

Result<std::optional<Delivery>> WorkQueue::ReadNew(const std::string& consumer, double block_s) {
  ASSIGN_OR_RETURN(Reply r, Run({"XREADGROUP", "GROUP", kGroup, consumer, "COUNT", "1", "BLOCK",
                                 Ms(std::max(0.001, block_s)), "STREAMS", Key("videos"), ">"}));
  if (r.error()) {
    if (r.str.rfind("NOGROUP", 0) == 0) {
      RETURN_IF_ERROR(EnsureGroup());
      return std::optional<Delivery>();
    }
    return Refused("XREADGROUP", r);
  }
  if (r.nil() || !r.array() || r.elements.empty()) return std::optional<Delivery>();
  const Reply& stream = r.elements[0];
  if (!stream.array() || stream.elements.size() != 2 || !stream.elements[1].array()) {
    return Status::IoError("unexpected XREADGROUP reply");
  }
  for (const Reply& item : stream.elements[1].elements) {
    std::optional<Delivery> d = ToDelivery(item);
    if (d) return d;
  }
  return std::optional<Delivery>();
}

Result<bool> WorkQueue::Touch(const std::string& consumer, const std::string& entry_id, double progress) {
  ASSIGN_OR_RETURN(Reply r, Run({"EVAL", kTouchScript, "2", Key("videos"), Key("progress"), kGroup, entry_id, consumer,
                                 Fixed(progress)}));
  if (r.error()) return Refused("the touch script", r);
  return r.integer == 1;
}

Result<std::optional<ResultRecord>> WorkQueue::FindResult(const std::string& key) {
  ASSIGN_OR_RETURN(Reply r, Run({"HGET", Key("results"), key}));
  if (r.error()) return Refused("HGET", r);
  if (!r.text()) return std::optional<ResultRecord>();
  Result<ResultRecord> rec = DecodeResult(r.str);
  if (!rec.ok() || rec->key != key) return std::optional<ResultRecord>();
  return std::optional<ResultRecord>(std::move(*rec));
}

Status WorkQueue::Complete(const Delivery& d, const ResultRecord& result, bool cached, bool* duplicate) {
  DoneRecord done;
  done.key = result.key;
  done.video = d.entry.video;
  done.name = d.entry.name;
  done.worker = result.worker;
  done.finished_at = UnixNow();
  done.cached = cached;
  std::vector<std::vector<std::string>> cmds;
  if (!cached) cmds.push_back({"HSETNX", Key("results"), result.key, EncodeResult(result)});
  cmds.push_back({"HSETNX", Key("done"), d.entry.id, EncodeDone(done)});
  cmds.push_back({"ZADD", Key("timeline"), Fixed(done.finished_at), d.entry.id});
  cmds.push_back({"HDEL", Key("errors"), d.entry.id});
  cmds.push_back({"HDEL", Key("progress"), d.entry.id});
  cmds.push_back({"HINCRBY", Key("stats"), cached ? "cached" : "scanned", "1"});
  cmds.push_back({"XACK", Key("videos"), kGroup, d.entry.id});
  if (conn_ == nullptr) return Status::IoError("not connected to redis");
  ASSIGN_OR_RETURN(std::vector<Reply> replies, conn_->Transaction(cmds));
  bool dup = !cached && !replies.empty() && replies[0].integer == 0;
  if (duplicate != nullptr) *duplicate = dup;
  if (dup) Run({"HINCRBY", Key("stats"), "duplicates", "1"});
  return Status::Ok();
}

Status WorkQueue::Retry(const std::string& consumer, const FailureRecord& failure) {
  double idle = std::max(0.0, options_.claim_idle_s - options_.retry_delay_s);
  ASSIGN_OR_RETURN(Reply r, Run({"EVAL", kRetryScript, "3", Key("videos"), Key("errors"), Key("stats"), kGroup,
                                 failure.entry, consumer, Ms(idle), EncodeFailure(failure)}));
  if (r.error()) return Refused("the retry script", r);
  return Status::Ok();
}

Result<std::optional<FailureRecord>> WorkQueue::LastFailure(const std::string& entry_id) {
  ASSIGN_OR_RETURN(Reply r, Run({"HGET", Key("errors"), entry_id}));
  if (r.error()) return Refused("HGET", r);
  if (!r.text()) return std::optional<FailureRecord>();
  Result<FailureRecord> f = DecodeFailure(r.str);
  if (!f.ok()) return std::optional<FailureRecord>();
  return std::optional<FailureRecord>(std::move(*f));
}

Status WorkQueue::DeadLetter(const FailureRecord& f) {
  std::vector<std::vector<std::string>> cmds = {
      {"HSETNX", Key("failed"), f.entry, EncodeFailure(f)},
      {"XADD", Key("dead"), "*", "video", f.video, "entry", f.entry, "code", std::string(CodeName(f.error.code())),
       "message", f.error.message(), "attempts", std::to_string(f.attempts), "worker", f.worker},
      {"ZADD", Key("timeline"), Fixed(f.failed_at), f.entry},
      {"HDEL", Key("errors"), f.entry},
      {"HDEL", Key("progress"), f.entry},
      {"HINCRBY", Key("stats"), "dead", "1"},
      {"XACK", Key("videos"), kGroup, f.entry}};
  if (conn_ == nullptr) return Status::IoError("not connected to redis");
  ASSIGN_OR_RETURN(std::vector<Reply> replies, conn_->Transaction(cmds));
  return Status::Ok();
}

Status WorkQueue::Heartbeat(const WorkerInfo& w) {
  json j = {{"consumer", w.consumer}, {"host", w.host},         {"pid", w.pid},
            {"state", w.state},       {"video", w.video},       {"progress", w.progress},
            {"done", w.done},         {"failed", w.failed},     {"started_at", w.started_at},
            {"updated_at", w.updated_at}, {"heartbeat_s", w.heartbeat_s}};
  ASSIGN_OR_RETURN(Reply r, Run({"HSET", Key("workers"), w.consumer, j.dump(-1, ' ', false, json::error_handler_t::replace)}));
  if (r.error()) return Refused("HSET", r);
  return Status::Ok();
}

Result<int64_t> WorkQueue::Backlog() {
  ASSIGN_OR_RETURN(Reply groups, Run({"XINFO", "GROUPS", Key("videos")}));
  int64_t pending = 0, lag = 0;
  if (GroupCounts(groups, &pending, &lag)) return lag;
  ASSIGN_OR_RETURN(Progress p, ReadProgress());  // no lag from Redis: the estimate from the counts
  return p.waiting;
}

Result<Progress> WorkQueue::ReadProgress() {
  const double now = UnixNow();
  std::vector<std::vector<std::string>> cmds = {
      {"HGETALL", Key("stats")},
      {"HLEN", Key("done")},
      {"HLEN", Key("failed")},
      {"HLEN", Key("results")},
      {"XINFO", "GROUPS", Key("videos")},
      {"XINFO", "CONSUMERS", Key("videos"), kGroup},
      {"HGETALL", Key("workers")},
      {"ZCOUNT", Key("timeline"), Fixed(now - 60), "+inf"},
      {"ZRANGE", Key("timeline"), "0", "0", "WITHSCORES"},
  };
  if (conn_ == nullptr) return Status::IoError("not connected to redis");
  ASSIGN_OR_RETURN(std::vector<Reply> r, conn_->Pipeline(cmds));
  Progress p;
  auto stats = Pairs(r[0]);
  auto stat = [&](const char* k) { return stats.count(k) ? ToInt(stats[k]) : 0; };
  p.submitted = stat("submitted");
  p.scanned = stat("scanned");
  p.cached = stat("cached");
  p.duplicates = stat("duplicates");
  p.retried = stat("retried");
  p.reclaimed = stat("reclaimed");
  p.done = ToInt(r[1]);
  p.failed = ToInt(r[2]);
  p.results = ToInt(r[3]);
  if (!GroupCounts(r[4], &p.running, &p.waiting)) {
    p.waiting = std::max<int64_t>(0, p.submitted - p.done - p.failed - p.running);
  }
  std::map<std::string, std::pair<int64_t, double>> consumers;  // name -> pending, idle
  if (r[5].array()) {
    for (const Reply& c : r[5].elements) {
      auto f = Pairs(c);
      consumers[f["name"].str] = {ToInt(f["pending"]), ToInt(f["idle"]) / 1000.0};
    }
  }
  auto workers = Pairs(r[6]);
  for (auto& [name, value] : workers) {
    Progress::Consumer c;
    json j = json::parse(value.str, nullptr, false);
    c.info.consumer = name;
    if (j.is_object()) {
      c.info.host = j.value("host", "");
      c.info.pid = j.value("pid", 0);
      c.info.state = j.value("state", "");
      c.info.video = j.value("video", "");
      c.info.progress = j.value("progress", 0.0);
      c.info.done = j.value("done", int64_t{0});
      c.info.failed = j.value("failed", int64_t{0});
      c.info.started_at = j.value("started_at", 0.0);
      c.info.updated_at = j.value("updated_at", 0.0);
      c.info.heartbeat_s = j.value("heartbeat_s", 2.0);
    }
    auto it = consumers.find(name);
    if (it != consumers.end()) {
      c.pending = it->second.first;
      c.idle_s = it->second.second;
    }
    c.alive = c.info.state != "stopped" && now - c.info.updated_at < 3 * c.info.heartbeat_s + 1;
    p.workers.push_back(std::move(c));
  }
  // Consumers that never wrote a heartbeat (another version, or died before the first one).
  for (auto& [name, pi] : consumers) {
    if (workers.count(name)) continue;
    Progress::Consumer c;
    c.info.consumer = name;
    c.pending = pi.first;
    c.idle_s = pi.second;
    p.workers.push_back(std::move(c));
  }
  const int64_t last_minute = ToInt(r[7]);
  double first = now;
  if (r[8].array() && r[8].elements.size() == 2) first = std::strtod(r[8].elements[1].str.c_str(), nullptr);
  const double window = std::min(60.0, std::max(1e-3, now - first));
  p.rate_per_s = last_minute / window;
  const int64_t left = p.running + p.waiting;
  if (left == 0) {
    p.eta_s = 0;
  } else if (p.rate_per_s > 0) {
    p.eta_s = left / p.rate_per_s;
  }
  return p;
}

Status WorkQueue::ForEachOutcome(const std::function<void(const Outcome&)>& fn) {
  std::map<std::string, Outcome> all;
  for (const char* which : {"done", "failed"}) {
    std::string cursor = "0";
    do {
      ASSIGN_OR_RETURN(Reply r, Run({"HSCAN", Key(which), cursor, "COUNT", "1000"}));
      if (r.error()) return Refused("HSCAN", r);
      if (!r.array() || r.elements.size() != 2) return Status::IoError("unexpected HSCAN reply");
      cursor = r.elements[0].str;
      auto pairs = Pairs(r.elements[1]);
      for (auto& [entry, value] : pairs) {
        Outcome& o = all[entry];
        o.entry = entry;
        if (which[0] == 'd') {
          Result<DoneRecord> d = DecodeDone(value.str);
          if (d.ok()) o.done = std::move(*d);
        } else {
          Result<FailureRecord> f = DecodeFailure(value.str);
          if (f.ok()) o.failed = std::move(*f);
        }
      }
    } while (cursor != "0");
  }
  std::vector<std::string> order;
  for (auto& [entry, o] : all) order.push_back(entry);
  std::sort(order.begin(), order.end(), EntryLess);
  constexpr size_t kBatch = 500;
  for (size_t start = 0; start < order.size(); start += kBatch) {
    size_t end = std::min(order.size(), start + kBatch);
    std::vector<std::string> cmd = {"HMGET", Key("results")};
    std::vector<Outcome*> with_key;
    for (size_t i = start; i < end; ++i) {
      Outcome& o = all[order[i]];
      if (o.done) {
        cmd.push_back(o.done->key);
        with_key.push_back(&o);
      }
    }
    if (with_key.size() > 0) {
      ASSIGN_OR_RETURN(Reply r, Run(cmd));
      if (r.error()) return Refused("HMGET", r);
      for (size_t i = 0; i < with_key.size() && i < r.elements.size(); ++i) {
        if (!r.elements[i].text()) continue;
        Result<ResultRecord> rec = DecodeResult(r.elements[i].str);
        if (rec.ok()) with_key[i]->result = std::move(*rec);
      }
    }
    for (size_t i = start; i < end; ++i) fn(all[order[i]]);
  }
  return Status::Ok();
}

Result<std::optional<std::string>> WorkQueue::EntryOfJob(const std::string& job) {
  ASSIGN_OR_RETURN(Reply r, Run({"HGET", Key("jobs"), job}));
  if (r.error()) return Refused("HGET", r);
  if (!r.text() || !ValidEntryId(r.str)) return std::optional<std::string>();
  return std::optional<std::string>(r.str);
}

Result<std::optional<JobEntry>> WorkQueue::FindJob(const std::string& job) {
  ASSIGN_OR_RETURN(std::optional<std::string> id, EntryOfJob(job));
  if (!id) return std::optional<JobEntry>();
  if (conn_ == nullptr) return Status::IoError("not connected to redis");
  ASSIGN_OR_RETURN(std::vector<Reply> r,
                   conn_->Pipeline({{"XRANGE", Key("videos"), *id, *id},
                                    {"XPENDING", Key("videos"), kGroup, *id, *id, "1"},
                                    {"HGET", Key("progress"), *id},
                                    {"HGET", Key("done"), *id},
                                    {"HGET", Key("failed"), *id}}));
  JobEntry j;
  j.entry.id = *id;
  j.outcome.entry = *id;
  if (r[0].array() && !r[0].elements.empty()) {
    std::optional<Delivery> d = ToDelivery(r[0].elements[0]);
    if (d && d->malformed.ok()) j.entry = std::move(d->entry);
  }
  const Reply& p = r[1];
  if (p.array() && !p.elements.empty() && p.elements[0].array() && p.elements[0].elements.size() >= 4) {
    j.deliveries = static_cast<int>(ToInt(p.elements[0].elements[3]));
  }
  if (r[2].text()) {
    const double v = std::strtod(r[2].str.c_str(), nullptr);
    j.progress = std::isfinite(v) ? std::clamp(v, 0.0, 1.0) : 0.0;
  }
  if (r[3].text()) {
    Result<DoneRecord> d = DecodeDone(r[3].str);
    if (d.ok()) {
      j.outcome.done = std::move(*d);
      ASSIGN_OR_RETURN(std::optional<ResultRecord> rec, FindResult(j.outcome.done->key));
      j.outcome.result = std::move(rec);
    }
  }
  if (r[4].text()) {
    Result<FailureRecord> f = DecodeFailure(r[4].str);
    if (f.ok()) j.outcome.failed = std::move(*f);
  }
  return std::optional<JobEntry>(std::move(j));
}

Status WorkQueue::Reset() {
  std::vector<std::string> cmd = {"DEL"};
  for (const char* k : {"videos", "results", "done", "failed", "errors", "dead", "jobs", "progress", "workers",
                        "timeline", "stats"}) {
    cmd.push_back(Key(k));
  }
  ASSIGN_OR_RETURN(Reply r, Run(cmd));
  if (r.error()) return Refused("DEL", r);
  return EnsureGroup();
}

}  // namespace deepscan::queue
