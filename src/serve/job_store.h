// serve::JobStore: the scan jobs of several `deepscan serve` replicas in one shared folder
// (`--job-dir`), so that any replica answers GET /v1/jobs/{id} and a job of a replica that died
// is scanned by another. Plain files only: works on one host and on a shared volume (NFS, a
// Kubernetes ReadWriteMany volume); no server to run. docs/serve.md, "Job store".
//
// In:  a folder (made when missing) and a lease length; uploads made in upload_dir().
// Out: one folder per job, DIR/jobs/<id>/, holding
//        video        the upload (moved in by rename; deleted once the job finished)
//        state.json   {"id", "state", "progress", "name", "bytes", "created", "updated", "owner",
//                      "attempt", "report" (done) | "error" {code, message} (failed)}
//        claim.<K>    the K-th claim on the job: made with O_CREAT|O_EXCL by the replica that owns
//                     attempt K; its mtime is that owner's lease, renewed by Renew/Update
//      DIR/active/<id> marks the jobs not finished yet (so finding orphans lists only those), and
//      DIR/incoming/<replica>/ holds this replica's uploads being read and jobs being created.
// How: Create publishes a job already claimed by its maker (claim.1): every job always has one
//      owner, which scans it. A claim is exclusive because only one O_EXCL create of a name
//      succeeds, on every replica of every host. A job whose newest claim.K is older than the
//      lease (its owner was killed) is an orphan: Reclaim makes claim.<K+1> (again O_EXCL: one
//      replica wins) and the winner scans it from the start. An owner that finds claim.<K+1>
//      has lost the job (it stalled past its lease) and writes nothing more for it. state.json is
//      written to a temporary file and renamed over, so readers see one whole version. Any
//      replica may delete finished jobs past their time (Collect).
// Ids are checked (exactly 32 lowercase hex digits) before any path is made from them.
// Clocks: leases compare wall-clock times written by one host with another's clock: keep the
//      hosts' clocks within a fraction of the lease (NTP).
// Threading: thread-safe (no mutable state besides the files); many JobStore objects, in one
//      process or many, may use the same folder at once.
#ifndef DEEPSCAN_SERVE_JOB_STORE_H_
#define DEEPSCAN_SERVE_JOB_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "deepscan/status.h"

namespace deepscan::serve {

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

// One job as the store keeps it (state.json).
struct JobRecord {
  JobView job;
  double created_s = 0;  // Unix time the job was made
  double updated_s = 0;  // Unix time of this write
  std::string owner;     // the replica that wrote it (JobStore::replica())
  int attempt = 0;       // the claim it was written under (1 = the replica that accepted the upload)
};

// The right to scan one job: attempt `attempt` of job `id`.
struct JobClaim {
  std::string id;
  int attempt = 0;
};

class JobStore {
 public:
  // Opens the store in `dir` (made with jobs/, active/ and incoming/ when missing) as a new
  // replica with a random name, and makes that replica's upload folder. Leases last `lease_s`.
  // Errors: kInvalidArgument (empty dir, lease_s <= 0), kIoError (folders cannot be made).
  static Result<std::unique_ptr<JobStore>> Open(const std::string& dir, double lease_s);

  const std::string& replica() const { return replica_; }        // "<host>-<pid>-<8 hex>"
  const std::string& upload_dir() const { return upload_dir_; }  // DIR/incoming/<replica>
  double lease_s() const { return lease_s_; }

  // Publishes job `id` (a fresh NewJobId()), queued and claimed by this replica (attempt 1):
  // moves `upload` (a file in upload_dir(), so rename(2) suffices) into it. Takes the upload in
  // every case: on failure it is deleted. Errors: kInvalidArgument (bad id), kIoError.
  Result<JobClaim> Create(const std::string& id, const std::string& upload, const std::string& name, int64_t bytes);
  // DIR/jobs/<id>/video (for a valid id).
  std::string VideoPath(const std::string& id) const;

  // The job's state. Errors: kInvalidArgument (not a job id: nothing is looked up), kNotFound
  // (no such job, or it was collected), kIoError (unreadable state).
  Result<JobRecord> Read(std::string_view id) const;

  // The owner of `claim` writes the job's state (stamped with this replica and the attempt) and
  // renews its lease. Returns false, writing nothing, when the job was lost: a newer claim exists
  // or another attempt already finished it.
  bool Update(const JobClaim& claim, JobRecord record);
  // As Update with a final state (kDone or kFailed); then deletes the video and the job's
  // active mark. False when lost (the video is left to the job's new owner).
  bool Finish(const JobClaim& claim, JobRecord record);
  // Renews the lease only. False when lost.
  bool Renew(const JobClaim& claim);
  // Gives the job up: its lease expires now, so another replica reclaims it at once.
  void Release(const JobClaim& claim);
  // Marks this replica alive (its upload folder's mtime), so no other replica collects it.
  void Heartbeat();

  // Unfinished jobs whose newest claim's lease expired (their owner stopped renewing).
  std::vector<std::string> Orphans() const;
  // Claims orphan `id` (attempt K+1) and sets it queued under this replica; returns the claim and
  // the job's state. nullopt when its lease is fresh, another replica won the claim, or the job
  // turns out finished (its active mark is then removed).
  std::optional<std::pair<JobClaim, JobRecord>> Reclaim(const std::string& id);

  // Deletes finished jobs older than `keep_s` and the oldest beyond the newest `max_kept`
  // (counted over the whole store), upload folders of replicas silent for 10 leases (at least
  // a minute), and stale marks. Returns how many jobs it deleted.
  size_t Collect(double keep_s, size_t max_kept);

 private:
  JobStore(std::string dir, double lease_s);
  std::string JobDir(std::string_view id) const;
  std::string ClaimPath(std::string_view id, int attempt) const;
  int NewestClaim(std::string_view id) const;  // K of the newest claim.K; 0 when none
  bool Lost(const JobClaim& claim) const;
  bool Touch(const JobClaim& claim, double when_s);
  Status WriteState(const JobRecord& record, bool durable);

  const std::string dir_;
  const double lease_s_;
  std::string replica_;
  std::string upload_dir_;
};

}  // namespace deepscan::serve

#endif  // DEEPSCAN_SERVE_JOB_STORE_H_
