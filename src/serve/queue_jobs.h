// serve::QueueJobs: the scan jobs of `deepscan serve --queue redis://…` (serve/jobs.h): every
// replica given the same Redis and queue name shares one job queue, so any replica answers
// GET /v1/jobs/{id} for any job, and a replica's jobs finish elsewhere when it is killed.
// docs/serve.md, "Replicas sharing jobs"; docs/queue.md for the queue itself.
//
// In:  uploads, written in upload_dir() (= BLOB/incoming/<replica>/, on the blob folder's
//      filesystem); the blob folder (`--blob-dir`) must be storage that every replica sees at the
//      same path (one host's disk, NFS, a ReadWriteMany volume).
// Out: per job: the upload at BLOB/<job id> until its job is finished, one entry of the work
//      queue (queue/work_queue.h: VideoEntry with `job`, `name`, `bytes`), and its outcome there
//      (the result, under its content key, or the failure); JobView built from them.
// How: Submit moves the upload to BLOB/<id> (rename) and adds the entry (with the job index, one
//      Lua call). This replica's `workers` scan entries through the consumer group like any
//      `deepscan worker` (queue/worker.h): a job is taken by whichever replica's worker is free;
//      a killed worker's entry is claimed by another after `claim_idle_s`; a video that fails
//      `max_attempts` times is dead-lettered (the job fails with its error). The worker that
//      finishes a job deletes its upload (WorkerOptions::upload_dir); a keeper sweeps uploads of
//      finished jobs whose deletion was cut short (a replica killed between the two) every 60 s.
//      Get reads the job from Redis (two or three round trips on a pooled connection); finished
//      jobs are cached here (they never change), at most `max_kept` of them. The queue bound:
//      Reserve refuses (503) when the entries no worker has taken yet (the group's lag, read
//      every 0.5 s, plus this replica's submissions since) and this replica's uploads in flight
//      reach `max_queued`. Entries of `deepscan submit` in the same queue count too: give
//      serve a queue name of its own unless the replicas should also work through a corpus.
// Drain: stops granting places, waits for the uploads being read and the clients waiting inline
//      (?wait=true) on a job, then stops the workers after their current video. Jobs still
//      queued stay in Redis: another replica (or this one, restarted) scans them.
// Redis down: Submit and Get fail with kIoError (the Api answers 503); the workers reconnect
//      with back-off and store what they finished once Redis is back.
// Threading: every method is thread-safe; Get and Submit block on the network (get_blocks()).
#ifndef DEEPSCAN_SERVE_QUEUE_JOBS_H_
#define DEEPSCAN_SERVE_QUEUE_JOBS_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "deepscan/scanner.h"
#include "queue/work_queue.h"
#include "queue/worker.h"
#include "serve/jobs.h"
#include "serve/metrics.h"

namespace deepscan::serve {

class QueueJobs final : public Jobs {
 public:
  // Makes the blob folder (and this replica's incoming folder), connects to Redis (it must be
  // reachable now), loads one Scanner per worker and starts the workers. `metrics` must outlive
  // this object. Errors: kInvalidArgument (no blob folder, bad options or URL), kIoError (Redis
  // unreachable or refusing, the folder cannot be made), those of Scanner::Create.
  static Result<std::unique_ptr<QueueJobs>> Create(const ScanOptions& scan, const JobsOptions& options,
                                                   ServiceMetrics* metrics);
  // Stops the workers after their current video and joins; removes this replica's incoming folder.
  ~QueueJobs() override;

  std::optional<Slot> Reserve() override;
  Result<std::string> Submit(Slot slot, std::string file, std::string name, int64_t bytes) override;
  Result<std::optional<JobView>> Get(const std::string& id) const override;
  Result<std::optional<JobView>> Wait(const std::string& id) const override;
  bool Drain(std::chrono::steady_clock::time_point deadline) override;
  bool Full() const override;
  size_t queued() const override;   // entries no worker has taken (as last read) + uploads being read here
  size_t running() const override;  // entries this replica's workers are scanning
  int workers() const override { return static_cast<int>(workers_.size()); }
  const ModelInfo& model() const override { return model_; }
  std::string upload_dir() const override { return incoming_; }
  bool get_blocks() const override { return true; }

  // Counters of this replica's workers (deepscan_job_queue_events_total): reclaimed (taken over
  // from a worker that stopped), retried, dead (dead-lettered), cached (answered from a stored
  // result of the same content), duplicates, reconnects.
  std::vector<metrics::Registry::LabeledValue> Events() const;
  bool connected() const { return connected_.load(); }  // the keeper's last round reached Redis
  bool healthy() const override { return connected(); }

 private:
  QueueJobs(const ScanOptions& scan, const JobsOptions& options, ServiceMetrics* metrics);
  void Unreserve() override;
  void Keeper();       // refreshes the backlog every 0.5 s, sweeps finished uploads every 60 s
  void SweepUploads(queue::WorkQueue* q);
  // A connection from the pool (made when none is idle); handed back with Return.
  Result<std::unique_ptr<queue::WorkQueue>> Borrow() const;
  void Return(std::unique_ptr<queue::WorkQueue> q) const;
  Result<std::optional<JobView>> Read(const std::string& id) const;  // Get without the cache
  void Remember(const JobView& v) const;                              // a finished job, into the cache

  const ScanOptions scan_options_;
  JobsOptions options_;  // blob_dir made absolute by Create
  queue::QueueOptions queue_options_;
  ServiceMetrics* metrics_;
  ModelInfo model_;
  std::string incoming_;  // BLOB/incoming/<replica>
  std::vector<std::unique_ptr<Scanner>> scanners_;
  std::vector<std::unique_ptr<queue::Worker>> workers_;
  std::vector<std::thread> threads_;
  std::thread keeper_;
  std::atomic<bool> connected_{true};

  mutable std::mutex pool_mu_;
  mutable std::vector<std::unique_ptr<queue::WorkQueue>> pool_;  // idle connections

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;  // a local outcome, a place given back, a waiter left, stopping
  size_t reserved_ = 0;                 // places granted, uploads not submitted yet
  int64_t backlog_ = 0;                 // entries no worker has taken, as last read (+ submitted since)
  mutable int waiters_ = 0;             // clients in Wait
  bool draining_ = false;
  bool stopping_ = false;
  mutable std::unordered_map<std::string, JobView> cache_;  // finished jobs
  mutable std::deque<std::string> cache_order_;
};

}  // namespace deepscan::serve

#endif  // DEEPSCAN_SERVE_QUEUE_JOBS_H_
