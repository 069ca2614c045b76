#include "serve/scan_jobs.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <random>

#include "report/report.h"

namespace deepscan::serve {

using Clock = std::chrono::steady_clock;

struct ScanJobs::Job {
  std::string id;
  std::string file;  // the upload; removed once scanned
  std::string name;
  int64_t bytes = 0;
  JobState state = JobState::kQueued;
  std::atomic<double> progress{0};
  Clock::time_point submitted, finished;
  std::shared_ptr<const nlohmann::json> report;
  Status error;
  // With a store:
  JobClaim claim;        // this replica's claim on the job
  double created_s = 0;  // Unix time the job was made (by whichever replica)
  std::mutex write_mu;   // one store write of this job at a time (worker and keeper)
  bool ending = false;   // write_mu: the worker writes the job's end; the keeper leaves it alone
  double written = -1;   // progress last written to the store (keeper thread only)
  bool lost = false;     // mu_: a newer claim took the job: write nothing more for it
};

namespace {

constexpr auto kCollectEvery = std::chrono::seconds(30);

bool IsFinished(JobState s) { return s == JobState::kDone || s == JobState::kFailed; }

}  // namespace

std::string NewJobId() {
  // std::random_device reads the kernel's entropy source (getrandom / /dev/urandom) on Linux.
  static thread_local std::random_device rd;
  std::string id;
  id.reserve(32);
  for (int i = 0; i < 4; ++i) {
    char buf[9];
    std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(rd()));
    id += buf;
  }
  return id;
}

ScanJobs::ScanJobs(const ScanOptions& scan, const JobsOptions& options, ServiceMetrics* metrics)
    : scan_options_(scan), options_(options), metrics_(metrics) {}

Result<std::unique_ptr<ScanJobs>> ScanJobs::Create(const ScanOptions& scan, const JobsOptions& options,
                                                   ServiceMetrics* metrics) {
  if (options.workers < 1) return Status::InvalidArgument("--workers must be at least 1");
  if (options.max_queued < 1) return Status::InvalidArgument("--max-queued must be at least 1");
  std::unique_ptr<ScanJobs> jobs(new ScanJobs(scan, options, metrics));
  if (!options.job_dir.empty()) {  // first: a bad folder should not cost a model load
    ASSIGN_OR_RETURN(jobs->store_, JobStore::Open(options.job_dir, options.lease_s));
    for (const char* event : {"reclaimed", "lost"}) metrics->store_events.With({event});  // 0, not absent
  }
  for (int i = 0; i < options.workers; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<Scanner> s, Scanner::Create(scan));
    jobs->scanners_.push_back(std::move(s));
  }
  jobs->model_ = jobs->scanners_.front()->model();
  for (auto& s : jobs->scanners_) {
    Scanner* scanner = s.get();
    jobs->threads_.emplace_back([j = jobs.get(), scanner] { j->Worker(scanner); });
  }
  if (jobs->store_) jobs->keeper_ = std::thread([j = jobs.get()] { j->Keeper(); });
  return jobs;
}

ScanJobs::~ScanJobs() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    draining_ = true;
  }
  work_cv_.notify_all();
  stop_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  if (keeper_.joinable()) keeper_.join();
  std::error_code ec;
  for (const auto& job : queue_) {
    if (store_) {
      if (!job->lost) store_->Release(job->claim);  // another replica scans it
    } else {
      std::filesystem::remove(job->file, ec);
    }
  }
}

ScanJobs::Slot::~Slot() {
  if (jobs_ == nullptr) return;
  std::lock_guard<std::mutex> lock(jobs_->mu_);
  --jobs_->reserved_;
  jobs_->done_cv_.notify_all();
}

std::optional<ScanJobs::Slot> ScanJobs::Reserve() {
  std::lock_guard<std::mutex> lock(mu_);
  if (draining_ || queue_.size() + reserved_ >= options_.max_queued) return std::nullopt;
  ++reserved_;
  return Slot(this);
}

Result<std::string> ScanJobs::Submit(Slot slot, std::string file, std::string name, int64_t bytes) {
  auto job = std::make_shared<Job>();
  job->id = NewJobId();
  job->file = std::move(file);
  job->name = std::move(name);
  job->bytes = bytes;
  job->submitted = Clock::now();
  if (store_) {
    // Published before it is queued here: from now on any replica answers for it. (A store
    // collision of two random 128-bit ids fails the publishing rename: an io_error, never.)
    ASSIGN_OR_RETURN(job->claim, store_->Create(job->id, job->file, job->name, bytes));
    job->file = store_->VideoPath(job->id);
    job->created_s = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    slot.jobs_ = nullptr;  // the place becomes this job
    --reserved_;
    while (!store_ && jobs_.count(job->id)) job->id = NewJobId();  // 2^-128: never, but cheap to rule out
    jobs_[job->id] = job;
    queue_.push_back(job);
    ForgetOldLocked();
  }
  work_cv_.notify_one();
  return job->id;
}

JobView ScanJobs::ViewLocked(const Job& job) {
  JobView v;
  v.id = job.id;
  v.state = job.state;
  v.progress = job.state == JobState::kDone || job.state == JobState::kFailed ? 1.0 : job.progress.load();
  v.name = job.name;
  v.bytes = job.bytes;
  v.report = job.report;
  v.error = job.error;
  return v;
}

std::optional<JobView> ScanJobs::Get(const std::string& id) const {
  if (store_) {
    Result<JobRecord> r = store_->Read(id);
    if (!r.ok()) return std::nullopt;
    JobView v = std::move(r->job);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(id);
    // Scanned here: the live progress rather than the last one written.
    if (v.state == JobState::kRunning && it != jobs_.end() && it->second->state == JobState::kRunning &&
        it->second->claim.attempt == r->attempt) {
      v.progress = std::max(v.progress, it->second->progress.load());
    }
    return v;
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  return ViewLocked(*it->second);
}

std::optional<JobView> ScanJobs::Wait(const std::string& id) const {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end() && !store_) return std::nullopt;
  if (it != jobs_.end()) {
    std::shared_ptr<Job> job = it->second;  // stays alive even if forgotten meanwhile
    done_cv_.wait(lock, [&] { return IsFinished(job->state) || job->lost; });
    if (!job->lost) return ViewLocked(*job);
  }
  // With a store, a job scanned by another replica (this one lost it, or never had it).
  while (true) {
    lock.unlock();
    std::optional<JobView> v = Get(id);
    if (!v || IsFinished(v->state)) return v;
    lock.lock();
    done_cv_.wait_for(lock, std::chrono::milliseconds(200));
  }
}

bool ScanJobs::Drain(Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  draining_ = true;
  return done_cv_.wait_until(lock, deadline, [&] { return queue_.empty() && running_ == 0 && reserved_ == 0; });
}

bool ScanJobs::Full() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size() + reserved_ >= options_.max_queued;
}

size_t ScanJobs::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size() + reserved_;
}

size_t ScanJobs::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_;
}

void ScanJobs::Worker(Scanner* scanner) {
  while (true) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = queue_.front();
      queue_.pop_front();
      job->state = JobState::kRunning;
      ++running_;
    }
    if (store_) {
      std::unique_lock<std::mutex> write(job->write_mu);
      if (!store_->Update(job->claim, RecordOf(*job, JobState::kRunning))) {
        write.unlock();
        std::lock_guard<std::mutex> lock(mu_);
        --running_;
        DropLostLocked(job.get());
        continue;
      }
    }
    const auto start = Clock::now();
    metrics_->queue_seconds.Observe(std::chrono::duration<double>(start - job->submitted).count());
    VideoVerdict v = scanner->Scan(job->file, [&](double f) { job->progress.store(f); });
    metrics_->scan_seconds.Observe(std::chrono::duration<double>(Clock::now() - start).count());
    if (!store_) {  // the store deletes it when the job's end is written (a lost job's video is the new owner's)
      std::error_code ec;
      std::filesystem::remove(job->file, ec);
    }
    Finish(job.get(), std::move(v));
  }
}

namespace {

// The scanner names the file it read; clients sent a name, and the server's folders are none of
// their business.
std::string Redact(std::string text, const std::string& file, const std::string& name) {
  for (size_t at = text.find(file); !file.empty() && at != std::string::npos; at = text.find(file, at + name.size())) {
    text.replace(at, file.size(), name);
  }
  return text;
}

}  // namespace

void ScanJobs::Finish(Job* job, VideoVerdict v) {
  v.path = job->name;  // never the server's temporary file
  for (std::string& w : v.warnings) w = Redact(w, job->file, job->name);
  if (!v.error.ok()) v.error = Status(v.error.code(), Redact(v.error.message(), job->file, job->name));
  metrics_->jobs.With({std::string(StatusName(v.status))}).Inc();
  const StageTimings& t = v.timings;
  metrics_->stage_seconds.With({"open"}).Inc(t.open_s);
  metrics_->stage_seconds.With({"decode"}).Inc(t.decode_s);
  metrics_->stage_seconds.With({"convert"}).Inc(t.convert_s);
  metrics_->stage_seconds.With({"detect"}).Inc(t.detect_s);
  metrics_->stage_seconds.With({"classify"}).Inc(t.classify_s);
  metrics_->faces.With({"/v1/scan"}).Inc(static_cast<double>(t.faces_classified));

  std::shared_ptr<const nlohmann::json> report;
  Status error;
  if (v.status == VideoStatus::kError) {
    error = v.error.ok() ? Status::Internal("scan failed without a reason") : v.error;
    metrics_->job_failures.With({std::string(CodeName(error.code()))}).Inc();
  } else {
    report::ScanReport rep;
    rep.model = model_;
    rep.options = scan_options_;
    rep.videos.push_back(std::move(v));
    // The CLI's own JSON writer, parsed back: the answer is byte-for-byte the CLI's schema.
    report = std::make_shared<const nlohmann::json>(
        nlohmann::json::parse(report::Render(rep, report::Format::kJson), nullptr, /*allow_exceptions=*/false));
    if (report->is_discarded()) {
      report.reset();
      error = Status::Internal("the report writer produced invalid JSON");
    }
  }
  const JobState state = report ? JobState::kDone : JobState::kFailed;
  bool lost = false;
  if (store_) {
    std::lock_guard<std::mutex> write(job->write_mu);
    job->ending = true;
    bool dropped;
    {
      std::lock_guard<std::mutex> lock(mu_);
      dropped = job->lost;
    }
    if (!dropped) {
      JobRecord rec = RecordOf(*job, state);
      rec.job.report = report;
      rec.job.error = error;
      lost = !store_->Finish(job->claim, std::move(rec));
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    job->state = state;
    job->report = std::move(report);
    job->error = error;
    job->finished = Clock::now();
    --running_;
    if (store_) {
      // The store keeps it now; a lost job's end was written by its new owner, or will be.
      if (lost) DropLostLocked(job);
      auto it = jobs_.find(job->id);
      if (it != jobs_.end() && it->second.get() == job) jobs_.erase(it);
    } else {
      finished_.push_back(jobs_.at(job->id));
      ForgetOldLocked();
    }
  }
  done_cv_.notify_all();
}

JobRecord ScanJobs::RecordOf(const Job& job, JobState state) const {
  JobRecord r;
  r.job.id = job.id;
  r.job.state = state;
  r.job.progress = IsFinished(state) ? 1.0 : state == JobState::kRunning ? job.progress.load() : 0.0;
  r.job.name = job.name;
  r.job.bytes = job.bytes;
  r.created_s = job.created_s;
  return r;
}

void ScanJobs::DropLostLocked(Job* job) {
  if (job->lost) return;
  job->lost = true;
  metrics_->store_events.With({"lost"}).Inc();
  auto q = std::find_if(queue_.begin(), queue_.end(), [job](const auto& j) { return j.get() == job; });
  if (q != queue_.end()) queue_.erase(q);
  auto it = jobs_.find(job->id);
  if (it != jobs_.end() && it->second.get() == job) jobs_.erase(it);
  done_cv_.notify_all();
}

void ScanJobs::Keeper() {
  const auto beat = std::chrono::duration<double>(std::min(1.0, options_.lease_s / 5));
  auto next_collect = Clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    store_->Heartbeat();
    RenewHeld();
    ReclaimOrphans();
    if (Clock::now() >= next_collect) {
      store_->Collect(options_.keep_s, options_.max_kept);
      next_collect = Clock::now() + kCollectEvery;
    }
    lock.lock();
    stop_cv_.wait_for(lock, beat, [&] { return stopping_; });
  }
}

void ScanJobs::RenewHeld() {
  std::vector<std::pair<std::shared_ptr<Job>, JobState>> held;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, job] : jobs_) held.emplace_back(job, job->state);
  }
  for (auto& [job, state] : held) {
    bool kept;
    {
      std::lock_guard<std::mutex> write(job->write_mu);
      if (job->ending) continue;  // the worker writes its end
      const double p = job->progress.load();
      if (state == JobState::kRunning && p != job->written) {
        kept = store_->Update(job->claim, RecordOf(*job, JobState::kRunning));
        job->written = p;
      } else {
        kept = store_->Renew(job->claim);
      }
    }
    if (!kept) {
      std::lock_guard<std::mutex> lock(mu_);
      DropLostLocked(job.get());  // a running one still ends its scan; its result is dropped
    }
  }
}

void ScanJobs::ReclaimOrphans() {
  for (const std::string& id : store_->Orphans()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (jobs_.count(id)) continue;  // ours, still held (its lease is renewed this round)
    }
    std::optional<Slot> slot = Reserve();
    if (!slot) return;  // no room (or draining): the other replicas take the rest
    auto taken = store_->Reclaim(id);
    if (!taken) continue;
    auto job = std::make_shared<Job>();
    job->id = id;
    job->claim = taken->first;
    job->file = store_->VideoPath(id);
    job->name = taken->second.job.name;
    job->bytes = taken->second.job.bytes;
    job->created_s = taken->second.created_s;
    job->submitted = Clock::now();
    metrics_->store_events.With({"reclaimed"}).Inc();
    {
      std::lock_guard<std::mutex> lock(mu_);
      slot->jobs_ = nullptr;  // the place becomes this job
      --reserved_;
      jobs_[id] = job;
      queue_.push_back(job);
    }
    work_cv_.notify_one();
  }
}

void ScanJobs::ForgetOldLocked() {
  const auto now = Clock::now();
  while (!finished_.empty() &&
         (finished_.size() > options_.max_kept ||
          std::chrono::duration<double>(now - finished_.front()->finished).count() > options_.keep_s)) {
    jobs_.erase(finished_.front()->id);
    finished_.pop_front();
  }
}

}  // namespace deepscan::serve
