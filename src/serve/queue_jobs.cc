#include "serve/queue_jobs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include <spdlog/spdlog.h>

#include "serve/request_parse.h"

namespace deepscan::serve {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr auto kBacklogEvery = std::chrono::milliseconds(500);
constexpr auto kSweepEvery = std::chrono::seconds(60);
constexpr double kStaleUploadS = 6 * 3600;  // an upload in incoming/ this old was abandoned by a dead replica
constexpr double kOrphanBlobS = 3600;       // a blob without a job this old was left by a failed submission

std::string ReplicaName() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == 0) std::strcpy(host, "host");
  std::string name;
  for (const char* c = host; *c; ++c) {
    name += (std::isalnum(static_cast<unsigned char>(*c)) || *c == '.' || *c == '-') ? *c : '_';
  }
  std::random_device rd;
  char tail[16];
  std::snprintf(tail, sizeof tail, "%08x", static_cast<unsigned>(rd()));
  return name + "-" + std::to_string(::getpid()) + "-" + tail;
}

double AgeS(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return queue::UnixNow() - static_cast<double>(st.st_mtim.tv_sec);
}

}  // namespace

QueueJobs::QueueJobs(const ScanOptions& scan, const JobsOptions& options, ServiceMetrics* metrics)
    : scan_options_(scan), options_(options), metrics_(metrics) {}

Result<std::unique_ptr<QueueJobs>> QueueJobs::Create(const ScanOptions& scan, const JobsOptions& options,
                                                     ServiceMetrics* metrics) {
  if (options.workers < 0) return Status::InvalidArgument("--workers must be at least 0 with --queue");
  if (options.max_queued < 1) return Status::InvalidArgument("--max-queued must be at least 1");
  if (options.blob_dir.empty()) {
    return Status::InvalidArgument("--queue needs --blob-dir: a folder every replica sees, for the uploads");
  }
  if (!(options.claim_idle_s >= 1)) return Status::InvalidArgument("--claim-idle must be at least 1 second");
  if (options.max_attempts < 1) return Status::InvalidArgument("--max-attempts must be at least 1");
  std::unique_ptr<QueueJobs> jobs(new QueueJobs(scan, options, metrics));
  queue::QueueOptions& qo = jobs->queue_options_;
  qo.url = options.queue_url;
  qo.name = options.queue_name;
  qo.claim_idle_s = options.claim_idle_s;
  qo.max_attempts = options.max_attempts;

  // The folders first (cheap), then Redis, then the models (slow).
  std::error_code ec;
  const std::string blob = fs::absolute(options.blob_dir, ec).lexically_normal().string();
  jobs->incoming_ = blob + "/incoming/" + ReplicaName();
  fs::create_directories(jobs->incoming_, ec);
  if (ec || !fs::is_directory(jobs->incoming_)) {
    return Status::IoError("cannot make the blob folder " + jobs->incoming_ + (ec ? ": " + ec.message() : ""));
  }
  ::chmod(jobs->incoming_.c_str(), 0700);
  jobs->options_.blob_dir = blob;
  ASSIGN_OR_RETURN(std::unique_ptr<queue::WorkQueue> first, queue::WorkQueue::Open(qo));
  jobs->Return(std::move(first));

  for (int i = 0; i < std::max(1, options.workers); ++i) {  // one Scanner even without workers: the model
    ASSIGN_OR_RETURN(std::unique_ptr<Scanner> s, Scanner::Create(scan));
    jobs->scanners_.push_back(std::move(s));
  }
  jobs->model_ = jobs->scanners_.front()->model();
  for (int i = 0; i < options.workers; ++i) {
    queue::WorkerOptions wo;
    wo.queue = qo;
    wo.upload_dir = blob;
    ASSIGN_OR_RETURN(std::unique_ptr<queue::Worker> w, queue::Worker::Create(jobs->scanners_[i].get(), wo));
    QueueJobs* self = jobs.get();
    w->on_verdict = [self](const queue::VideoEntry& e, const VideoVerdict& v) {
      if (e.job.empty()) return;  // a corpus entry (deepscan submit) in the same queue: not a request
      const double latency = std::max(0.0, queue::UnixNow() - e.submitted_s);
      self->metrics_->scan_seconds.Observe(v.timings.total_s);
      self->metrics_->queue_seconds.Observe(std::max(0.0, latency - v.timings.total_s));
      CountScan(self->metrics_, self->options_.variant, v, latency);
    };
    w->on_outcome = [self](const queue::VideoEntry&, const Status&) { self->cv_.notify_all(); };
    jobs->workers_.push_back(std::move(w));
  }
  for (auto& w : jobs->workers_) {
    queue::Worker* worker = w.get();
    jobs->threads_.emplace_back([worker] { worker->Run(); });
  }
  jobs->keeper_ = std::thread([j = jobs.get()] { j->Keeper(); });
  return jobs;
}

QueueJobs::~QueueJobs() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    draining_ = true;
  }
  cv_.notify_all();
  for (auto& w : workers_) w->Stop();
  for (std::thread& t : threads_) t.join();
  if (keeper_.joinable()) keeper_.join();
  std::error_code ec;
  fs::remove_all(incoming_, ec);
}

Result<std::unique_ptr<queue::WorkQueue>> QueueJobs::Borrow() const {
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (!pool_.empty()) {
      std::unique_ptr<queue::WorkQueue> q = std::move(pool_.back());
      pool_.pop_back();
      if (q->connected() || q->Reconnect().ok()) return q;
    }
  }
  return queue::WorkQueue::Open(queue_options_);
}

void QueueJobs::Return(std::unique_ptr<queue::WorkQueue> q) const {
  if (q == nullptr || !q->connected()) return;
  std::lock_guard<std::mutex> lock(pool_mu_);
  if (pool_.size() < 16) pool_.push_back(std::move(q));
}

void QueueJobs::Unreserve() {
  std::lock_guard<std::mutex> lock(mu_);
  --reserved_;
  cv_.notify_all();
}

std::optional<Jobs::Slot> QueueJobs::Reserve() {
  std::lock_guard<std::mutex> lock(mu_);
  if (draining_ || reserved_ + static_cast<size_t>(std::max<int64_t>(0, backlog_)) >= options_.max_queued) {
    return std::nullopt;
  }
  ++reserved_;
  return MakeSlot();
}

bool QueueJobs::Full() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reserved_ + static_cast<size_t>(std::max<int64_t>(0, backlog_)) >= options_.max_queued;
}

size_t QueueJobs::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reserved_ + static_cast<size_t>(std::max<int64_t>(0, backlog_));
}

size_t QueueJobs::running() const {
  size_t n = 0;
  for (const auto& w : workers_) n += w->stats().busy.load() ? 1 : 0;
  return n;
}

Result<std::string> QueueJobs::Submit(Slot slot, std::string file, std::string name, int64_t bytes) {
  const std::string id = NewJobId();
  const std::string blob = options_.blob_dir + "/" + id;
  auto give_back = [&](Status s) -> Result<std::string> {
    ::unlink(file.c_str());
    ::unlink(blob.c_str());
    return s;  // the Slot's destructor gives the place back
  };
  if (::rename(file.c_str(), blob.c_str()) != 0) {
    return give_back(
        Status::IoError("cannot move the upload into the blob folder: " + std::string(std::strerror(errno))));
  }
  queue::VideoEntry e;
  e.video = blob;
  e.name = name.substr(0, queue::kMaxNameBytes);
  e.job = id;
  e.bytes = bytes;
  e.submitted_s = queue::UnixNow();
  Result<std::unique_ptr<queue::WorkQueue>> q = Borrow();
  if (!q.ok()) return give_back(q.status());
  Result<std::vector<std::string>> added = (*q)->Submit({e});
  Return(std::move(*q));
  if (!added.ok()) return give_back(added.status());
  {
    std::lock_guard<std::mutex> lock(mu_);
    Consume(&slot);  // the place becomes this job
    --reserved_;
    ++backlog_;  // until the next refresh says otherwise
  }
  return id;
}

Result<std::optional<JobView>> QueueJobs::Get(const std::string& id) const {
  if (!IsValidJobId(id)) return std::optional<JobView>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(id);
    if (it != cache_.end()) return std::optional<JobView>(it->second);
  }
  ASSIGN_OR_RETURN(std::optional<JobView> v, Read(id));
  if (v && IsFinished(v->state)) Remember(*v);
  return v;
}

Result<std::optional<JobView>> QueueJobs::Read(const std::string& id) const {
  ASSIGN_OR_RETURN(std::unique_ptr<queue::WorkQueue> q, Borrow());
  Result<std::optional<queue::JobEntry>> found = q->FindJob(id);
  Return(std::move(q));
  if (!found.ok()) return found.status();
  if (!found->has_value()) return std::optional<JobView>();
  const queue::JobEntry& j = **found;
  JobView v;
  v.id = id;
  v.name = j.entry.name.empty() ? j.entry.video : j.entry.name;
  v.bytes = std::max<int64_t>(0, j.entry.bytes);
  const std::string& file = j.entry.video;
  if (j.outcome.done) {
    if (!j.outcome.done->name.empty()) v.name = j.outcome.done->name;
    if (j.outcome.result) {
      JobOutcome out = OutcomeOfScan(j.outcome.result->verdict, file, v.name, model_, scan_options_);
      v.report = std::move(out.report);
      v.crops = std::move(out.crops);
      v.error = out.error;
    } else {
      v.error = Status::Internal("the job's result is missing from the queue (deleted from Redis?)");
    }
    v.state = v.report ? JobState::kDone : JobState::kFailed;
    v.progress = 1;
  } else if (j.outcome.failed) {
    VideoVerdict failed;
    failed.status = VideoStatus::kError;
    failed.error = j.outcome.failed->error;
    v.error = OutcomeOfScan(std::move(failed), file, v.name, model_, scan_options_).error;
    v.state = JobState::kFailed;
    v.progress = 1;
  } else if (j.deliveries > 0) {
    v.state = JobState::kRunning;
    v.progress = j.progress;
  }
  return std::optional<JobView>(std::move(v));
}

void QueueJobs::Remember(const JobView& v) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (options_.max_kept == 0 || !cache_.emplace(v.id, v).second) return;
  cache_order_.push_back(v.id);
  while (cache_order_.size() > options_.max_kept) {
    cache_.erase(cache_order_.front());
    cache_order_.pop_front();
  }
}

Result<std::optional<JobView>> QueueJobs::Wait(const std::string& id) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++waiters_;
  }
  struct Leave {
    const QueueJobs* self;
    ~Leave() {
      std::lock_guard<std::mutex> lock(self->mu_);
      --self->waiters_;
      self->cv_.notify_all();
    }
  } leave{this};
  Status last;
  while (true) {
    Result<std::optional<JobView>> v = Get(id);
    if (v.ok() && (!v->has_value() || IsFinished((*v)->state))) return v;
    if (!v.ok()) last = v.status();
    std::unique_lock<std::mutex> lock(mu_);
    // Woken early when a worker here finishes something; else polled (another replica's worker).
    cv_.wait_for(lock, std::chrono::milliseconds(v.ok() ? 100 : 500));
    if (stopping_) return last.ok() ? Status::IoError("the server stopped before the job finished") : last;
  }
}

bool QueueJobs::Drain(Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  draining_ = true;
  bool ok = cv_.wait_until(lock, deadline, [&] { return reserved_ == 0 && waiters_ == 0; });
  lock.unlock();
  for (auto& w : workers_) w->Stop();  // each finishes, stores and acknowledges its current video
  while (running() > 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return ok && running() == 0;
}

std::vector<metrics::Registry::LabeledValue> QueueJobs::Events() const {
  int64_t reclaimed = 0, retried = 0, dead = 0, cached = 0, duplicates = 0, reconnects = 0;
  for (const auto& w : workers_) {
    const queue::WorkerStats& s = w->stats();
    reclaimed += s.reclaimed.load();
    retried += s.retried.load();
    dead += s.dead.load();
    cached += s.cached.load();
    duplicates += s.duplicates.load();
    reconnects += s.reconnects.load();
  }
  auto d = [](int64_t v) { return static_cast<double>(v); };
  return {{{"reclaimed"}, d(reclaimed)}, {{"retried"}, d(retried)},       {{"dead"}, d(dead)},
          {{"cached"}, d(cached)},       {{"duplicates"}, d(duplicates)}, {{"reconnects"}, d(reconnects)}};
}

void QueueJobs::Keeper() {
  std::unique_ptr<queue::WorkQueue> q;
  auto next_sweep = Clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    if (q == nullptr || !q->connected()) {
      Result<std::unique_ptr<queue::WorkQueue>> opened = queue::WorkQueue::Open(queue_options_);
      if (opened.ok()) q = std::move(*opened);
    }
    Result<int64_t> backlog = q != nullptr ? q->Backlog() : Result<int64_t>(Status::IoError("down"));
    if (backlog.ok() && !connected_.load()) spdlog::info("redis at {} answers again", queue::Redacted(q->url()));
    if (!backlog.ok() && connected_.load()) spdlog::warn("redis unreachable: {}", backlog.status().message());
    connected_ = backlog.ok();
    if (backlog.ok() && Clock::now() >= next_sweep) {
      SweepUploads(q.get());
      next_sweep = Clock::now() + kSweepEvery;
    }
    lock.lock();
    if (backlog.ok()) backlog_ = *backlog;
    cv_.wait_for(lock, kBacklogEvery, [&] { return stopping_; });
  }
}

void QueueJobs::SweepUploads(queue::WorkQueue* q) {
  std::error_code ec;
  // Uploads of finished jobs (their worker was killed between storing the outcome and deleting).
  for (fs::directory_iterator it(options_.blob_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string id = it->path().filename().string();
    if (!IsValidJobId(id) || !it->is_regular_file(ec)) continue;
    Result<std::optional<queue::JobEntry>> j = q->FindJob(id);
    if (!j.ok()) return;
    const bool finished = j->has_value() && ((*j)->outcome.done || (*j)->outcome.failed);
    if (finished || (!j->has_value() && AgeS(it->path()) > kOrphanBlobS)) fs::remove(it->path(), ec);
  }
  // Uploads that replicas killed mid-upload left behind.
  const fs::path incoming = fs::path(options_.blob_dir) / "incoming";
  for (fs::directory_iterator r(incoming, ec), end; !ec && r != end; r.increment(ec)) {
    if (r->path() == incoming_) continue;
    std::error_code ec2;
    bool empty = true;
    for (fs::directory_iterator f(r->path(), ec2); !ec2 && f != end; f.increment(ec2)) {
      if (AgeS(f->path()) > kStaleUploadS)
        fs::remove_all(f->path(), ec2);
      else
        empty = false;
    }
    if (empty && AgeS(r->path()) > kStaleUploadS) fs::remove(r->path(), ec2);
  }
}

}  // namespace deepscan::serve
