// queue::WorkQueue: the distributed work queue on Redis Streams (docs/queue.md). Videos go in
// with `deepscan submit` (or `deepscan serve --queue`), any number of workers on any number of
// machines take them through one consumer group, and results come out keyed by content.
//
// In:  VideoEntry (a path on storage every worker sees, or a URL).
// Out: per entry exactly one outcome: done (a DoneRecord naming a ResultRecord) or failed (a
//      FailureRecord, after max_attempts deliveries), and a dead-letter stream entry per failure.
// Redis keys, for QueueOptions::name = N:
//      N:videos   stream of VideoEntry; consumer group "workers" (made at id 0 with MKSTREAM, so
//                 entries submitted before the first worker are read)
//      N:results  hash  result key -> ResultRecord (HSETNX: the first scan of a content wins)
//      N:done     hash  entry id -> DoneRecord        N:failed  hash  entry id -> FailureRecord
//      N:errors   hash  entry id -> the last FailureRecord of an entry still being retried
//      N:dead     stream of dead-lettered entries (video, entry, code, message, attempts)
//      N:jobs     hash  serve job id -> entry id      N:progress hash entry id -> fraction scanned
//      N:workers  hash  consumer -> WorkerInfo JSON   N:timeline zset entry id -> finish time
//      N:stats    hash  submitted, scanned, cached, duplicates, retried, dead, reclaimed
// How: a worker takes an idle entry of a dead worker first (XAUTOCLAIM, min idle claim_idle_s),
//      else a new one (XREADGROUP ... BLOCK). While it scans, Touch resets the entry's idle time
//      (XCLAIM JUSTID, only while it still owns it: a Lua script), so only the entries of
//      workers that stopped touching (killed, partitioned) are claimed by others. Complete
//      writes the result and the entry's DoneRecord and XACKs in one MULTI/EXEC. A failed scan is
//      recorded (N:errors) and released: its idle time is set so that it is claimable after
//      retry_delay_s; each claim adds a delivery, and an entry delivered more than max_attempts
//      times (a scan failed that often, or workers died on it) is dead-lettered.
// Threading: one WorkQueue is one connection: use it from one thread at a time; make one per
//      thread. Every method returns kIoError on a transport failure; Reconnect() then tries anew.
#ifndef DEEPSCAN_QUEUE_WORK_QUEUE_H_
#define DEEPSCAN_QUEUE_WORK_QUEUE_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "deepscan/status.h"
#include "queue/entry.h"
#include "queue/redis_connection.h"
#include "queue/redis_url.h"

namespace deepscan::queue {

struct QueueOptions {
  std::string url = "redis://127.0.0.1:6379";  // redis://[[user]:password@]host[:port][/db]
  std::string name = "deepscan";               // key prefix: several queues may share one Redis
  double connect_timeout_s = 5;                // per connection attempt
  double claim_idle_s = 60;                    // an entry not touched this long is taken over
  int max_attempts = 3;                        // deliveries before an entry is dead-lettered
  double retry_delay_s = 1;                    // a failed scan is offered again after this
};

// One entry as a worker receives it.
struct Delivery {
  VideoEntry entry;   // entry.id is always set; the other fields when `malformed` is OK
  int deliveries = 1;  // this delivery's number (1 = first)
  Status malformed;    // not OK: the stream fields did not decode (the entry is dead-lettered)
  bool taken_over = false;  // reclaimed from a worker that stopped touching it (not a retry of a failure)
};

// A worker as N:workers shows it (written by the worker's heartbeat).
struct WorkerInfo {
  std::string consumer;  // name in the consumer group
  std::string host;
  int pid = 0;
  std::string state;  // "idle", "scanning", "reconnecting", "stopping", "stopped"
  std::string video;  // the video being scanned ("" when idle)
  double progress = 0;
  int64_t done = 0, failed = 0;
  double started_at = 0, updated_at = 0;  // Unix times
  double heartbeat_s = 2;                 // how often it writes this record
};

// What `deepscan status` shows.
struct Progress {
  int64_t submitted = 0;  // entries ever added (N:stats)
  int64_t done = 0;       // entries with a result
  int64_t failed = 0;     // dead-lettered entries
  int64_t running = 0;    // delivered, not acknowledged (XPENDING)
  int64_t waiting = 0;    // not delivered yet (the group's lag)
  int64_t results = 0;    // distinct results (contents)
  int64_t scanned = 0, cached = 0, duplicates = 0, retried = 0, reclaimed = 0;
  double rate_per_s = 0;  // entries finished per second over the last minute (or since the first)
  double eta_s = -1;      // (running + waiting) / rate; -1 when unknown
  struct Consumer {
    WorkerInfo info;
    int64_t pending = 0;  // entries it holds (XINFO CONSUMERS)
    double idle_s = 0;    // since it last read or touched (XINFO CONSUMERS)
    bool alive = false;   // not stopped, and a heartbeat within 3 periods (+1 s)
  };
  std::vector<Consumer> workers;
};

// One entry's outcome, for export and for serve jobs.
struct Outcome {
  std::string entry;
  std::optional<DoneRecord> done;
  std::optional<ResultRecord> result;  // with done (absent only when the result key is missing)
  std::optional<FailureRecord> failed;
};

// A serve job as the queue holds it (serve/queue_jobs.h).
struct JobEntry {
  VideoEntry entry;     // as submitted (entry.id always set; the rest empty if the stream lost it)
  Outcome outcome;      // done (with its result) or failed, once finished
  int deliveries = 0;   // > 0 while a worker holds it (scanning, or waiting for a retry)
  double progress = 0;  // 0..1, as its worker last touched it
};

class WorkQueue {
 public:
  // Parses the URL, connects and creates the consumer group (when missing). Errors:
  // kInvalidArgument (bad URL or options), kNotSupported (rediss://), kIoError (unreachable,
  // login refused: the message says which, never the password).
  static Result<std::unique_ptr<WorkQueue>> Open(const QueueOptions& options);

  // One new connection attempt (after a kIoError). Errors: as Open.
  Status Reconnect();
  bool connected() const { return conn_ != nullptr && !conn_->broken(); }
  const QueueOptions& options() const { return options_; }
  const RedisUrl& url() const { return url_; }
  std::string Key(const std::string& what) const { return options_.name + ":" + what; }

  // --- producers
  // XADDs every entry (pipelined, 512 a round trip); returns their ids in order. A serve job's
  // entry (job set) is also indexed in N:jobs. Errors: kInvalidArgument (an entry the decoder
  // would refuse), kIoError.
  Result<std::vector<std::string>> Submit(const std::vector<VideoEntry>& entries);

  // --- consumers (a worker is one consumer of the group)
  // An entry idle for claim_idle_s (its worker died or failed it), claimed for `consumer`; nullopt
  // when there is none. Walks the pending list a little per call (XAUTOCLAIM COUNT 1 + cursor).
  Result<std::optional<Delivery>> Reclaim(const std::string& consumer);
  // A new entry for `consumer`, waiting up to block_s for one; nullopt when none came.
  Result<std::optional<Delivery>> ReadNew(const std::string& consumer, double block_s);
  // Resets the entry's idle time while `consumer` owns it; false when another consumer took it
  // (or it was acknowledged). Also stores `progress` (0..1) for status and serve jobs.
  Result<bool> Touch(const std::string& consumer, const std::string& entry_id, double progress);
  // The stored result for `key`, if any (a malformed value counts as none).
  Result<std::optional<ResultRecord>> FindResult(const std::string& key);
  // Stores `result` (unless its key has one: then `duplicate` is set and the stored one stays),
  // the entry's DoneRecord and acknowledges the entry, atomically. An entry already done keeps
  // its first DoneRecord.
  Status Complete(const Delivery& d, const ResultRecord& result, bool cached, bool* duplicate = nullptr);
  // Remembers a failed delivery and offers the entry again after retry_delay_s (while `consumer`
  // still owns it).
  Status Retry(const std::string& consumer, const FailureRecord& failure);
  // The last failure recorded for an entry being retried.
  Result<std::optional<FailureRecord>> LastFailure(const std::string& entry_id);
  // Dead-letters the entry: N:failed, an N:dead stream entry, XACK, atomically.
  Status DeadLetter(const FailureRecord& failure);
  // Writes the worker's heartbeat record.
  Status Heartbeat(const WorkerInfo& info);

  // --- observers
  Result<Progress> ReadProgress();
  // Progress::waiting alone, in one XINFO GROUPS (serve's queue bound reads it every 0.5 s).
  Result<int64_t> Backlog();
  // Calls `fn` for every finished entry (done or failed), in entry order. Errors: kIoError.
  Status ForEachOutcome(const std::function<void(const Outcome&)>& fn);
  // The entry id of serve job `job`; nullopt when unknown.
  Result<std::optional<std::string>> EntryOfJob(const std::string& job);
  // Everything about serve job `job` in two round trips (three when done); nullopt when unknown.
  Result<std::optional<JobEntry>> FindJob(const std::string& job);

  // Deletes every key of this queue (tests, `deepscan status --reset`).
  Status Reset();

 private:
  WorkQueue(QueueOptions options, RedisUrl url) : options_(std::move(options)), url_(std::move(url)) {}
  Status EnsureGroup();
  Result<Reply> Run(const std::vector<std::string>& args);  // a transport error drops the connection
  Result<int> DeliveriesOf(const std::string& entry_id);

  QueueOptions options_;
  RedisUrl url_;
  std::unique_ptr<RedisConnection> conn_;
  std::string reclaim_cursor_ = "0-0";
};

inline constexpr const char* kGroup = "workers";

// Unix time now, in seconds.
double UnixNow();

}  // namespace deepscan::queue

#endif  // DEEPSCAN_QUEUE_WORK_QUEUE_H_
