// serve::ScanJobs: the embedded scan jobs of `deepscan serve` (serve/jobs.h, the default when
// there is no --queue): a bounded in-memory queue of uploaded videos and a fixed set of workers,
// each with its own Scanner (a Scanner serves one call at a time).
//
// In:  uploaded files (Submit takes ownership: the file is deleted once scanned).
// Out: per job id, its state (serve/jobs.h), kept after the end for `JobsOptions::keep_s` or
//      until `max_kept` newer jobs have finished.
// How: Reserve counts the uploads being read against max_queued; Submit queues the job; workers
//      take jobs first in, first out. A job lives in this process only: replicas that must
//      answer for each other's jobs, or survive each other's death, use --queue (queue_jobs.h).
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

#include "deepscan/options.h"
#include "deepscan/scanner.h"
#include "deepscan/status.h"
#include "serve/jobs.h"
#include "serve/service_metrics.h"

namespace deepscan::serve {

class ScanJobs final : public Jobs {
 public:
  // Loads one Scanner per worker and starts the workers. `metrics` must outlive this object.
  // Errors: those of Scanner::Create (kInvalidModel, kNotSupported, kInvalidArgument).
  static Result<std::unique_ptr<ScanJobs>> Create(const ScanOptions& scan, const JobsOptions& options,
                                                  ServiceMetrics* metrics);
  // Stops the workers after the job each is scanning (queued jobs are not scanned, their uploads
  // deleted), and joins.
  ~ScanJobs() override;

  std::optional<Slot> Reserve() override;
  Result<std::string> Submit(Slot slot, std::string file, std::string name, int64_t bytes) override;
  Result<std::optional<JobView>> Get(const std::string& id) const override;
  Result<std::optional<JobView>> Wait(const std::string& id) const override;
  bool Drain(std::chrono::steady_clock::time_point deadline) override;
  bool Full() const override;
  size_t queued() const override;   // submitted and reserved, not started
  size_t running() const override;  // being scanned
  int workers() const override { return static_cast<int>(scanners_.size()); }
  const ModelInfo& model() const override { return model_; }

 private:
  struct Job;
  ScanJobs(const ScanOptions& scan, const JobsOptions& options, ServiceMetrics* metrics);
  void Unreserve() override;
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
  mutable std::condition_variable work_cv_;                     // a job queued, or stopping
  mutable std::condition_variable done_cv_;                     // a job finished, or a place was given back
  std::unordered_map<std::string, std::shared_ptr<Job>> jobs_;  // every job remembered
  std::deque<std::shared_ptr<Job>> queue_;                      // submitted, not started
  std::deque<std::shared_ptr<Job>> finished_;                   // in finishing order, for forgetting
  size_t reserved_ = 0;
  size_t running_ = 0;
  bool draining_ = false;
  bool stopping_ = false;
};

}  // namespace deepscan::serve

#endif  // DEEPSCAN_SERVE_SCAN_JOBS_H_
