#include "serve/scan_jobs.h"

#include <atomic>
#include <filesystem>

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
  std::shared_ptr<const std::vector<FaceCrop>> crops;
  Status error;
};

ScanJobs::ScanJobs(const ScanOptions& scan, const JobsOptions& options, ServiceMetrics* metrics)
    : scan_options_(scan), options_(options), metrics_(metrics) {}

Result<std::unique_ptr<ScanJobs>> ScanJobs::Create(const ScanOptions& scan, const JobsOptions& options,
                                                   ServiceMetrics* metrics) {
  if (options.workers < 1) return Status::InvalidArgument("--workers must be at least 1");
  if (options.max_queued < 1) return Status::InvalidArgument("--max-queued must be at least 1");
  std::unique_ptr<ScanJobs> jobs(new ScanJobs(scan, options, metrics));
  for (int i = 0; i < options.workers; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<Scanner> s, Scanner::Create(scan));
    jobs->scanners_.push_back(std::move(s));
  }
  jobs->model_ = jobs->scanners_.front()->model();
  for (auto& s : jobs->scanners_) {
    Scanner* scanner = s.get();
    jobs->threads_.emplace_back([j = jobs.get(), scanner] { j->Worker(scanner); });
  }
  return jobs;
}

ScanJobs::~ScanJobs() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    draining_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  std::error_code ec;
  for (const auto& job : queue_) std::filesystem::remove(job->file, ec);
}

void ScanJobs::Unreserve() {
  std::lock_guard<std::mutex> lock(mu_);
  --reserved_;
  done_cv_.notify_all();
}

std::optional<Jobs::Slot> ScanJobs::Reserve() {
  std::lock_guard<std::mutex> lock(mu_);
  if (draining_ || queue_.size() + reserved_ >= options_.max_queued) return std::nullopt;
  ++reserved_;
  return MakeSlot();
}

Result<std::string> ScanJobs::Submit(Slot slot, std::string file, std::string name, int64_t bytes) {
  auto job = std::make_shared<Job>();
  job->id = NewJobId();
  job->file = std::move(file);
  job->name = std::move(name);
  job->bytes = bytes;
  job->submitted = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    Consume(&slot);  // the place becomes this job
    --reserved_;
    while (jobs_.count(job->id)) job->id = NewJobId();  // 2^-128: never, but cheap to rule out
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
  v.progress = IsFinished(job.state) ? 1.0 : job.progress.load();
  v.name = job.name;
  v.bytes = job.bytes;
  v.report = job.report;
  v.crops = job.crops;
  v.error = job.error;
  return v;
}

Result<std::optional<JobView>> ScanJobs::Get(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::optional<JobView>();
  return std::optional<JobView>(ViewLocked(*it->second));
}

Result<std::optional<JobView>> ScanJobs::Wait(const std::string& id) const {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::optional<JobView>();
  std::shared_ptr<Job> job = it->second;  // stays alive even if forgotten meanwhile
  done_cv_.wait(lock, [&] { return IsFinished(job->state); });
  return std::optional<JobView>(ViewLocked(*job));
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
    const auto start = Clock::now();
    metrics_->queue_seconds.Observe(std::chrono::duration<double>(start - job->submitted).count());
    VideoVerdict v = scanner->Scan(job->file, [&](double f) { job->progress.store(f); });
    metrics_->scan_seconds.Observe(std::chrono::duration<double>(Clock::now() - start).count());
    std::error_code ec;
    std::filesystem::remove(job->file, ec);
    Finish(job.get(), std::move(v));
  }
}

void ScanJobs::Finish(Job* job, VideoVerdict v) {
  CountScan(metrics_, options_.variant, v, std::chrono::duration<double>(Clock::now() - job->submitted).count());
  JobOutcome out = OutcomeOfScan(std::move(v), job->file, job->name, model_, scan_options_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    job->state = out.report ? JobState::kDone : JobState::kFailed;
    job->report = std::move(out.report);
    job->crops = std::move(out.crops);
    job->error = out.error;
    job->finished = Clock::now();
    --running_;
    finished_.push_back(jobs_.at(job->id));
    ForgetOldLocked();
  }
  done_cv_.notify_all();
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
