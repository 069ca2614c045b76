// serve::Jobs: where `deepscan serve` sends its scans: the contract both job backends keep, so
// the Api does not know which one it talks to.
//
//   ScanJobs  (serve/scan_jobs.h)   embedded, the default: a bounded in-memory queue and this
//                                   replica's scan workers; nothing to run beside the server.
//   QueueJobs (serve/queue_jobs.h)  `--queue redis://…`: jobs are entries of the Redis Streams
//                                   work queue (queue/work_queue.h) shared by every replica (and
//                                   by `deepscan worker`s); any replica answers for any job, and a
//                                   killed replica's jobs finish elsewhere.
//
// In:  uploaded files (Submit takes ownership), written in upload_dir().
// Out: per job id its JobView: queued, running (with progress), done (the whole
//      `deepscan scan --format json` report of that one video, and the face crops when kept), or
//      failed (the error). Ids are 128 random bits as 32 lowercase hex digits (NewJobId).
// How: the HTTP layer reserves a place (Reserve) BEFORE reading an upload, so a full queue is
//      refused (503) without reading a byte of the body; Submit turns the place into a job; a
//      Slot dropped unused gives its place back.
// Threading: every method is thread-safe. Full(), queued(), running() never block (they are read
//      on the server's I/O threads); Get() blocks on the network when get_blocks() says so.
#ifndef DEEPSCAN_SERVE_JOBS_H_
#define DEEPSCAN_SERVE_JOBS_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "deepscan/options.h"
#include "deepscan/status.h"
#include "deepscan/verdict.h"
#include "serve/service_metrics.h"

namespace deepscan::serve {

enum class JobState { kQueued, kRunning, kDone, kFailed };
const char* JobStateName(JobState s);  // "queued", "running", "done", "failed"
inline bool IsFinished(JobState s) { return s == JobState::kDone || s == JobState::kFailed; }

// A copy of one job's state.
struct JobView {
  std::string id;
  JobState state = JobState::kQueued;
  double progress = 0;                           // 0..1 of the scan
  std::string name;                              // the client's name for the upload (the report's `path`)
  int64_t bytes = 0;                             // upload size
  std::shared_ptr<const nlohmann::json> report;  // kDone: the scan report (one video)
  std::shared_ptr<const std::vector<FaceCrop>> crops;  // kDone: the face crops kept (--report-crops), or null
  Status error;                                  // kFailed: why
};

struct JobsOptions {
  int workers = 1;            // scans at once, each with its own Scanner (models loaded per worker)
  size_t max_queued = 16;     // jobs waiting for a worker, uploads being read included
  size_t max_kept = 1000;     // finished jobs remembered for GET /v1/jobs/{id} (in memory; queue: cached)
  double keep_s = 3600;       // and for at most this long after they finished (in memory)
  std::string variant = "a";  // the A/B variant these jobs serve: the `variant` label of deepscan_variant_*
  // --queue: the Redis Streams work queue (serve/queue_jobs.h); "" = embedded (serve/scan_jobs.h).
  std::string queue_url;
  std::string queue_name = "deepscan-serve";  // key prefix in Redis (variant b appends "-b")
  std::string blob_dir;                       // uploads, on storage every replica and worker sees
  double claim_idle_s = 30;                   // a job untouched this long is taken over by another worker
  int max_attempts = 3;                       // deliveries before a job fails for good
};

// 128 random bits from the system's entropy source as 32 lowercase hexadecimal digits.
std::string NewJobId();

class Jobs {
 public:
  virtual ~Jobs() = default;

  // A reserved place in the queue. Released by its destructor unless Submit consumed it.
  class Slot {
   public:
    Slot(Slot&& other) noexcept : jobs_(other.jobs_) { other.jobs_ = nullptr; }
    Slot& operator=(Slot&&) = delete;
    ~Slot() {
      if (jobs_ != nullptr) jobs_->Unreserve();
    }

   private:
    friend class Jobs;
    explicit Slot(Jobs* jobs) : jobs_(jobs) {}
    Jobs* jobs_;
  };

  // A place for one more job; nullopt when the queue is full or draining began.
  virtual std::optional<Slot> Reserve() = 0;
  // Queues a scan of `file` (a file in upload_dir(), owned from now on) in the place `slot`
  // reserved; returns the job id. Succeeds also while draining (the place was granted before).
  // Errors (the file is deleted, the place given back): kIoError (the queue is unreachable).
  virtual Result<std::string> Submit(Slot slot, std::string file, std::string name, int64_t bytes) = 0;

  // The job's state; nullopt for an unknown (or forgotten) id. Errors: kIoError (the queue is
  // unreachable: the job may well exist).
  virtual Result<std::optional<JobView>> Get(const std::string& id) const = 0;
  // Blocks until the job is done or failed and returns it; nullopt for an unknown id.
  // Errors: kIoError (the queue stayed unreachable, or the server stopped while it waited).
  virtual Result<std::optional<JobView>> Wait(const std::string& id) const = 0;

  // Stops granting places and waits until every job this replica accepted and still answers
  // for is finished (embedded), or handed to the shared queue and no client waits inline on it
  // (queue), at most until `deadline`. Returns true when all were.
  virtual bool Drain(std::chrono::steady_clock::time_point deadline) = 0;

  virtual bool Full() const = 0;       // Reserve would fail because the queue is full
  virtual size_t queued() const = 0;   // waiting for a worker (uploads being read included)
  virtual size_t running() const = 0;  // being scanned by this replica's workers
  virtual int workers() const = 0;
  virtual const ModelInfo& model() const = 0;
  // Where uploads must be written (Submit moves them by rename); "" = anywhere (the server's own
  // private folder).
  virtual std::string upload_dir() const { return std::string(); }
  // Whether the backend can take and answer jobs now (--queue: Redis answered the last check,
  // at most 0.5 s ago); /readyz is 503 while it cannot.
  virtual bool healthy() const { return true; }
  // Get() makes network round trips (answer /v1/jobs/{id} on a request thread, not an I/O thread).
  virtual bool get_blocks() const { return false; }

 protected:
  Slot MakeSlot() { return Slot(this); }
  static void Consume(Slot* slot) { slot->jobs_ = nullptr; }  // the place became a job
  virtual void Unreserve() = 0;                              // a Slot given back unused
};

// --- What both backends do the same way with a finished scan.

// Counts a finished scan in the service metrics: jobs by status, stage seconds, faces, the A/B
// variant's requests, verdicts, score and latency (`latency_s`: from submission to the end).
void CountScan(ServiceMetrics* metrics, const std::string& variant, const VideoVerdict& v, double latency_s);

// The report of one scanned upload, as the CLI writes it (report::Render, parsed back: one
// schema for clients): path = the client's `name`, and the server's own file name (`file`)
// replaced by `name` in warnings and errors. A failed scan gives its error instead (message
// redacted likewise). The verdict's crops are moved into `*crops` (null when there are none).
struct JobOutcome {
  std::shared_ptr<const nlohmann::json> report;  // null when failed
  std::shared_ptr<const std::vector<FaceCrop>> crops;
  Status error;
};
JobOutcome OutcomeOfScan(VideoVerdict v, const std::string& file, const std::string& name, const ModelInfo& model,
                         const ScanOptions& options);

}  // namespace deepscan::serve

#endif  // DEEPSCAN_SERVE_JOBS_H_
