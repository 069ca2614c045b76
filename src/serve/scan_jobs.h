// serve::ScanJobs: the scan jobs of `deepscan serve`: a bounded queue of uploaded videos and a
// fixed set of workers, each with its own Scanner (a Scanner serves one call at a time).
//
// In:  uploaded files (Submit takes ownership: the file is deleted once scanned).
// Out: per job id, its state (queued, running with progress, done with the scan report, failed
//      with the error), kept after the end for `JobsOptions::keep_s` or until `max_kept` newer
//      jobs have finished.
// How: the HTTP thread reserves a queue place (Reserve) BEFORE reading an upload, so a full queue
//      is refused (503) without reading a byte of the body; Submit turns the place into a job.
//      Workers take jobs first in, first out. The result is the whole `deepscan scan --format
//      json` report of that one video (report::Render), so clients parse one schema.
// Threading: every method is thread-safe. One mutex guards the job table and the queue (held
//      for bookkeeping only, never during a scan); each worker thread scans with its own Scanner.
#ifndef DEEPSCAN_SERVE_SCAN_JOBS_H_
#define DEEPSCAN_SERVE_SCAN_JOBS_H_

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "deepscan/options.h"
#include "deepscan/scanner.h"
#include "deepscan/status.h"
#include "serve/service_metrics.h"

namespace deepscan::serve {

struct JobsOptions {
  int workers = 1;         // scans at once, each with its own Scanner (models loaded per worker)
  size_t max_queued = 16;  // jobs waiting for a worker, uploads being read included
  size_t max_kept = 1000;  // finished jobs remembered for GET /v1/jobs/{id}
  double keep_s = 3600;    // and for at most this long after they finished
};

enum class JobState { kQueued, kRunning, kDone, kFailed };
const char* JobStateName(JobState s);  // "queued", "running", "done", "failed"

// A copy of one job's state.
struct JobView {
  std::string id;
  JobState state = JobState::kQueued;
  double progress = 0;                           // 0..1 of the scan
  std::string name;                              // the client's name for the upload (the report's `path`)
  int64_t bytes = 0;                             // upload size
  std::shared_ptr<const nlohmann::json> report;  // kDone: the scan report (one video)
  Status error;                                  // kFailed: why
};

// 128 random bits from the system's entropy source as 32 lowercase hexadecimal digits.
std::string NewJobId();

class ScanJobs {
 public:
  // Loads one Scanner per worker and starts the workers. `metrics` must outlive this object.
  // Errors: those of Scanner::Create (kInvalidModel, kNotSupported, kInvalidArgument).
  static Result<std::unique_ptr<ScanJobs>> Create(const ScanOptions& scan, const JobsOptions& options,
                                                  ServiceMetrics* metrics);
  // Stops the workers after the job each is scanning (queued jobs are not scanned), and joins.
  ~ScanJobs();

  // A reserved place in the queue. Released by its destructor unless Submit consumed it.
  class Slot {
   public:
    Slot(Slot&& other) noexcept : jobs_(other.jobs_) { other.jobs_ = nullptr; }
    Slot& operator=(Slot&&) = delete;
    ~Slot();

   private:
    friend class ScanJobs;
    explicit Slot(ScanJobs* jobs) : jobs_(jobs) {}
    ScanJobs* jobs_;
  };
  // A place for one more job; nullopt when max_queued jobs wait already or draining began.
  std::optional<Slot> Reserve();
  // Queues a scan of `file` (deleted after the scan) in the place `slot` reserved; returns the
  // job id. Always succeeds, also while draining (the place was granted before).
  std::string Submit(Slot slot, std::string file, std::string name, int64_t bytes);

  // The job's state; nullopt for an unknown (or forgotten) id.
  std::optional<JobView> Get(const std::string& id) const;
  // Blocks until the job is done or failed and returns it; nullopt for an unknown id.
  std::optional<JobView> Wait(const std::string& id) const;

  // Stops granting places and waits until every accepted job finished, at most until `deadline`.
  // Returns true when all did.
  bool Drain(std::chrono::steady_clock::time_point deadline);

  bool Full() const;       // Reserve would fail because the queue is full
  size_t queued() const;   // submitted and reserved, not started
  size_t running() const;  // being scanned
  int workers() const { return static_cast<int>(scanners_.size()); }
  const ModelInfo& model() const { return model_; }

 private:
  struct Job;
  ScanJobs(const ScanOptions& scan, const JobsOptions& options, ServiceMetrics* metrics);
  void Worker(Scanner* scanner);
  void Finish(Job* job, VideoVerdict verdict);
  void ForgetOldLocked();
  static JobView ViewLocked(const Job& job);

  const ScanOptions scan_options_;
  const JobsOptions options_;
  ServiceMetrics* metrics_;
  ModelInfo model_;
  std::vector<std::unique_ptr<Scanner>> scanners_;
  std::vector<std::thread> threads_;

  mutable std::mutex mu_;
  mutable std::condition_variable work_cv_;  // a job queued, or stopping
  mutable std::condition_variable done_cv_;  // a job finished
  std::unordered_map<std::string, std::shared_ptr<Job>> jobs_;
  std::deque<std::shared_ptr<Job>> queue_;     // submitted, not started
  std::deque<std::shared_ptr<Job>> finished_;  // in finishing order, for forgetting
  size_t reserved_ = 0;
  size_t running_ = 0;
  bool draining_ = false;
  bool stopping_ = false;
};

}  // namespace deepscan::serve

#endif  // DEEPSCAN_SERVE_SCAN_JOBS_H_
