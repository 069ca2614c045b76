// queue::Worker: one consumer of the work queue: takes entries, scans them with the normal
// pipeline (a deepscan::Scanner, the same one `deepscan scan` uses), stores the results and
// acknowledges. `deepscan worker` runs one; `deepscan serve --queue` runs one per scan worker.
//
// Basic usage:
//   auto scanner = deepscan::Scanner::Create(scan_options);
//   queue::WorkerOptions wo;  wo.queue.url = "redis://10.0.0.5:6379/0";
//   auto worker = queue::Worker::Create(scanner->get(), wo);   // connects: fails fast when unreachable
//   std::thread t([&] { (*worker)->Run(); });  ...  (*worker)->Stop();  t.join();
//
// In:  entries of the queue (QueueOptions::name) through consumer group "workers".
// Out: one outcome per entry (work_queue.h): the result stored under its key (content hash +
//      configuration: pipeline::ResultKey; a URL is keyed by its text), or, after
//      max_attempts deliveries, a dead letter with the last error.
// How: per loop: a dead worker's idle entry first (Reclaim), else a new one (ReadNew, blocking
//      for block_s). A known key is answered from N:results without a scan (a scanner that keeps
//      face crops, ScanOptions::report_crops, has keys of its own: its results hold the crops). While it scans, a
//      keeper thread (its own connection) touches the entry every heartbeat_s so that no other
//      worker takes it, and writes the worker's heartbeat for `deepscan status`. Redis going
//      away never ends Run: the worker reconnects with exponential back-off (0.1 s doubling to
//      max_backoff_s) and stores a finished result once Redis is back.
// Stop: finishes the video being scanned, stores it, acknowledges it, then Run returns. An
//      entry a worker holds when it is killed stays pending and is claimed by another worker
//      after claim_idle_s.
// Threading: Run on one thread; Stop and stats() from any thread (Stop is async-signal-safe).
//      The Scanner is used only by Run's thread.
#ifndef DEEPSCAN_QUEUE_WORKER_H_
#define DEEPSCAN_QUEUE_WORKER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "deepscan/scanner.h"
#include "deepscan/status.h"
#include "queue/work_queue.h"

namespace deepscan::queue {

struct WorkerOptions {
  QueueOptions queue;
  std::string consumer;        // name in the group; "" = "<host>-<pid>-<4 hex>"
  double block_s = 1;          // longest wait for a new entry (also how soon Stop is noticed when idle)
  double heartbeat_s = 2;      // touch and heartbeat period (at most claim_idle_s / 4)
  double max_backoff_s = 5;    // longest pause between reconnection attempts
  bool exit_when_empty = false;  // return from Run once nothing waits or runs anywhere in the queue
  // Serve uploads (`deepscan serve --queue`): an entry of a serve job whose video is exactly
  // `<upload_dir>/<job id>` has that file deleted once the entry is finished (done or
  // dead-lettered; not while it may be retried). No other file is ever deleted, whatever the
  // entries say. "" = delete nothing.
  std::string upload_dir;
};

// Counters for the worker's Prometheus metrics (deepscan worker --metrics-port).
struct WorkerStats {
  std::atomic<int64_t> scanned{0};     // entries scanned and stored
  std::atomic<int64_t> cached{0};      // entries answered from a stored result (same content)
  std::atomic<int64_t> duplicates{0};  // scans whose result another worker had stored first
  std::atomic<int64_t> retried{0};     // failed scans offered again
  std::atomic<int64_t> dead{0};        // entries dead-lettered
  std::atomic<int64_t> reclaimed{0};   // entries taken over from another worker
  std::atomic<int64_t> reconnects{0};  // successful reconnections after a lost connection
  std::atomic<double> scan_seconds{0};  // wall time spent scanning
  std::atomic<int> busy{0};             // 1 while scanning
  std::atomic<int> connected{0};        // 1 while the main connection is up
};

class Worker {
 public:
  // Connects (Redis must be reachable now) and prepares the result keys of `scanner`'s
  // configuration (reads the model files once). `scanner` must outlive the worker.
  // Errors: as WorkQueue::Open; kInvalidModel (a model file cannot be read for the key).
  static Result<std::unique_ptr<Worker>> Create(Scanner* scanner, const WorkerOptions& options);
  ~Worker();

  // Takes and scans entries until Stop() (or, with exit_when_empty, until the queue is empty).
  // Returns OK; kIoError only when the connection is lost for good while stopping.
  Status Run();
  void Stop() { stop_.store(true); }
  bool stopping() const { return stop_.load(); }

  const std::string& consumer() const { return consumer_; }
  const WorkerStats& stats() const { return stats_; }

  // Called after each entry's outcome was stored (tests, serve): entry, and the status of its
  // scan (OK for a result, the error for a retry or dead letter).
  std::function<void(const VideoEntry&, const Status&)> on_outcome;
  // Called with each verdict this worker scanned (OK or not), before its outcome is stored (serve's
  // metrics). Not called for entries answered from a stored result.
  std::function<void(const VideoEntry&, const VideoVerdict&)> on_verdict;

 private:
  Worker(Scanner* scanner, WorkerOptions options);
  void Process(const Delivery& d);
  // Runs `op` until it succeeds, reconnecting with back-off; gives up when stopping and the
  // connection stays down for 10 s more. Returns the last status.
  Status Persist(const std::function<Status()>& op);
  bool ReconnectWithBackoff(double give_up_after_s);
  bool Empty();
  void Keeper();
  void SetState(const std::string& state, const std::string& video);
  WorkerInfo Info();
  bool SleepUnlessStopped(double seconds);
  void DropUpload(const VideoEntry& e);  // WorkerOptions::upload_dir

  Scanner* scanner_;
  WorkerOptions options_;
  std::string consumer_;
  std::string config_hash_;
  std::unique_ptr<WorkQueue> queue_;
  WorkerStats stats_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> keeper_stop_{false};
  std::atomic<double> progress_{0};

  std::mutex mu_;            // guards the fields below (shared with the keeper thread)
  std::string state_ = "idle";
  std::string video_;        // being scanned
  std::string entry_;        // the entry being scanned ("" = none): the keeper touches it
  int64_t done_ = 0, failed_ = 0;
  double started_at_ = 0;
};

}  // namespace deepscan::queue

#endif  // DEEPSCAN_QUEUE_WORKER_H_
