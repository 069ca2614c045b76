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
//      With `JobsOptions::job_dir`, jobs live in a JobStore shared by every replica given that
//      folder (serve/job_store.h): Submit publishes the job there (claimed by this replica), Get
//      reads any replica's job from it, and a keeper thread renews the leases of this replica's
//      jobs every min(1 s, lease/5) (running jobs' progress is written then too), reclaims
//      orphans of dead replicas while the queue has room (they are scanned again from the start)
//      and deletes expired jobs every 30 s. Without it, jobs are an in-memory table.
// Threading: every method is thread-safe. One mutex guards the job table and the queue (held
//      for bookkeeping only, never during a scan or a store write); each worker thread scans with
//      its own Scanner.
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
#include "serve/job_store.h"
#include "serve/service_metrics.h"

namespace deepscan::serve {

struct JobsOptions {
  int workers = 1;         // scans at once, each with its own Scanner (models loaded per worker)
  size_t max_queued = 16;  // jobs waiting for a worker, uploads being read included
  size_t max_kept = 1000;  // finished jobs remembered for GET /v1/jobs/{id}
  double keep_s = 3600;    // and for at most this long after they finished
  std::string job_dir;     // a job store shared by replicas (serve/job_store.h); "" = in memory
  double lease_s = 10;     // with job_dir: a replica silent this long loses its jobs to the others
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
  // Queued jobs' uploads are deleted; with a store they are released to the other replicas.
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
  // job id. Succeeds also while draining (the place was granted before). Fails only with a job
  // store (kIoError: the job could not be written; `file` is deleted, the place given back).
  Result<std::string> Submit(Slot slot, std::string file, std::string name, int64_t bytes);

  // The job's state; nullopt for an unknown (or forgotten) id. With a store: any replica's job.
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
  // With a job store: the folder where uploads must be written (on the store's filesystem, so
  // Submit moves them in by rename); "" without one.
  std::string upload_dir() const { return store_ ? store_->upload_dir() : std::string(); }

 private:
  struct Job;
  ScanJobs(const ScanOptions& scan, const JobsOptions& options, ServiceMetrics* metrics);
  void Worker(Scanner* scanner);
  void Keeper();                                             // with a store: leases, orphans, collection
  void RenewHeld();                                          // Keeper: one round of leases and progress
  void ReclaimOrphans();                                     // Keeper: take over dead replicas' jobs
  void DropLostLocked(Job* job);                             // a newer claim took the job
  JobRecord RecordOf(const Job& job, JobState state) const;  // the job's state.json (store)
  void Finish(Job* job, VideoVerdict verdict);
  void ForgetOldLocked();
  static JobView ViewLocked(const Job& job);

  const ScanOptions scan_options_;
  const JobsOptions options_;
  ServiceMetrics* metrics_;
  ModelInfo model_;
  std::vector<std::unique_ptr<Scanner>> scanners_;
  std::vector<std::thread> threads_;
  std::unique_ptr<JobStore> store_;  // null: jobs in memory only
  std::thread keeper_;

  mutable std::mutex mu_;
  mutable std::condition_variable work_cv_;                     // a job queued, or stopping
  mutable std::condition_variable done_cv_;                     // a job finished (or, with a store, was lost)
  std::condition_variable stop_cv_;                             // stopping (wakes the keeper)
  std::unordered_map<std::string, std::shared_ptr<Job>> jobs_;  // with a store: this replica's unfinished ones
  std::deque<std::shared_ptr<Job>> queue_;                      // submitted, not started
  std::deque<std::shared_ptr<Job>> finished_;                   // in finishing order, for forgetting
  size_t reserved_ = 0;
  size_t running_ = 0;
  bool draining_ = false;
  bool stopping_ = false;
};

}  // namespace deepscan::serve

#endif  // DEEPSCAN_SERVE_SCAN_JOBS_H_
