#include "queue/worker.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include <spdlog/spdlog.h>

#include "pipeline/result_cache.h"

namespace deepscan::queue {
namespace {

std::string HostName() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "host";
  return buf;
}

std::string DefaultConsumer() {
  std::random_device rd;
  char hex[8];
  std::snprintf(hex, sizeof hex, "%04x", static_cast<unsigned>(rd() & 0xffff));
  return HostName() + "-" + std::to_string(getpid()) + "-" + hex;
}

void AddDouble(std::atomic<double>* a, double v) {
  double cur = a->load();
  while (!a->compare_exchange_weak(cur, cur + v)) {
  }
}

}  // namespace

Result<std::unique_ptr<Worker>> Worker::Create(Scanner* scanner, const WorkerOptions& options) {
  if (scanner == nullptr) return Status::InvalidArgument("worker needs a scanner");
  if (!(options.block_s > 0) || !(options.heartbeat_s > 0) || !(options.max_backoff_s > 0)) {
    return Status::InvalidArgument("worker periods must be positive");
  }
  auto w = std::unique_ptr<Worker>(new Worker(scanner, options));
  ASSIGN_OR_RETURN(w->config_hash_, pipeline::ConfigHash(scanner->options(), scanner->model()));
  if (scanner->options().report_crops > 0) {  // results with crops are not interchangeable with results without
    w->config_hash_ =
        pipeline::HashBytes(w->config_hash_ + ":report_crops=" + std::to_string(scanner->options().report_crops));
  }
  ASSIGN_OR_RETURN(w->queue_, WorkQueue::Open(options.queue));
  w->stats_.connected = 1;
  return w;
}

Worker::Worker(Scanner* scanner, WorkerOptions options)
    : scanner_(scanner), options_(std::move(options)), consumer_(options_.consumer) {
  if (consumer_.empty()) consumer_ = DefaultConsumer();
  options_.heartbeat_s = std::min(options_.heartbeat_s, options_.queue.claim_idle_s / 4);
  started_at_ = UnixNow();
}

Worker::~Worker() = default;

bool Worker::SleepUnlessStopped(double seconds) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                   std::chrono::duration<double>(seconds));
  while (std::chrono::steady_clock::now() < end) {
    if (stop_.load()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return !stop_.load();
}

void Worker::SetState(const std::string& state, const std::string& video) {
  std::lock_guard<std::mutex> lock(mu_);
  state_ = state;
  video_ = video;
}

WorkerInfo Worker::Info() {
  std::lock_guard<std::mutex> lock(mu_);
  WorkerInfo w;
  w.consumer = consumer_;
  w.host = HostName();
  w.pid = static_cast<int>(getpid());
  w.state = state_;
  w.video = video_;
  w.progress = entry_.empty() ? 0 : progress_.load();
  w.done = done_;
  w.failed = failed_;
  w.started_at = started_at_;
  w.updated_at = UnixNow();
  w.heartbeat_s = options_.heartbeat_s;
  return w;
}

void Worker::Keeper() {
  std::unique_ptr<WorkQueue> q;
  auto next = std::chrono::steady_clock::now();
  bool warned_lost = false;
  std::string last_entry;
  while (!keeper_stop_.load()) {
    if (std::chrono::steady_clock::now() < next) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    next = std::chrono::steady_clock::now() +
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(
               std::chrono::duration<double>(options_.heartbeat_s));
    if (q == nullptr || !q->connected()) {
      auto opened = WorkQueue::Open(options_.queue);
      if (!opened.ok()) continue;  // the main loop logs the outage
      q = std::move(*opened);
    }
    std::string entry;
    {
      std::lock_guard<std::mutex> lock(mu_);
      entry = entry_;
    }
    if (entry != last_entry) warned_lost = false;
    last_entry = entry;
    if (!entry.empty()) {
      Result<bool> owned = q->Touch(consumer_, entry, progress_.load());
      if (owned.ok() && !*owned && !warned_lost) {
        spdlog::warn("entry {} was taken over by another worker while this one scanned it (paused longer than "
                     "--claim-idle?); the first result stored wins",
                     entry);
        warned_lost = true;
      }
    }
    q->Heartbeat(Info());
  }
  if (q != nullptr && q->connected()) q->Heartbeat(Info());
}

bool Worker::ReconnectWithBackoff(double give_up_after_s) {
  stats_.connected = 0;
  double delay = 0.1;
  const auto start = std::chrono::steady_clock::now();
  SetState("reconnecting", "");
  for (int attempt = 1;; ++attempt) {
    Status s = queue_->Reconnect();
    if (s.ok()) {
      spdlog::info("reconnected to redis at {} (attempt {})", Redacted(queue_->url()), attempt);
      stats_.reconnects.fetch_add(1);
      stats_.connected = 1;
      return true;
    }
    if (attempt == 1 || attempt % 10 == 0) spdlog::warn("{}; retrying in {:.1f} s", s.message(), delay);
    if (give_up_after_s < 0) {  // until stopped
      if (!SleepUnlessStopped(delay)) return false;
    } else {
      double left = give_up_after_s - std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (left <= 0) return false;
      std::this_thread::sleep_for(std::chrono::duration<double>(std::min(delay, left)));
    }
    delay = std::min(options_.max_backoff_s, delay * 2);
  }
}

Status Worker::Persist(const std::function<Status()>& op) {
  Status s;
  auto stop_seen = std::chrono::steady_clock::time_point::max();
  while (true) {
    if (queue_->connected()) {
      s = op();
      if (s.ok() || queue_->connected()) return s;  // success, or a refusal that retrying will not fix
    }
    if (stop_.load() && stop_seen == std::chrono::steady_clock::time_point::max()) {
      stop_seen = std::chrono::steady_clock::now();
    }
    double left = stop_.load()
                      ? 10 - std::chrono::duration<double>(std::chrono::steady_clock::now() - stop_seen).count()
                      : -1;
    if (stop_.load() && left <= 0) return s.ok() ? Status::IoError("redis unreachable while stopping") : s;
    ReconnectWithBackoff(stop_.load() ? left : 30);
  }
}

bool Worker::Empty() {
  Result<Progress> p = queue_->ReadProgress();
  return p.ok() && p->running == 0 && p->waiting == 0;
}

void Worker::DropUpload(const VideoEntry& e) {
  if (options_.upload_dir.empty() || e.job.empty()) return;
  const std::string own = options_.upload_dir + "/" + e.job;  // e.job is 32 hex digits (DecodeEntry)
  if (e.video != own) return;
  if (::unlink(own.c_str()) != 0 && errno != ENOENT) spdlog::warn("cannot delete the upload {}: {}", own, std::strerror(errno));
}

void Worker::Process(const Delivery& d) {
  const VideoEntry& e = d.entry;
  const QueueOptions& qo = options_.queue;
  if (d.taken_over) {
    stats_.reclaimed.fetch_add(1);
    spdlog::info("{}: taken over from a worker that stopped (delivery {})", d.entry.video, d.deliveries);
  }
  auto dead_letter = [&](Status error, int attempts) {
    FailureRecord f;
    f.video = e.video;
    f.entry = e.id;
    f.worker = consumer_;
    f.attempts = attempts;
    f.failed_at = UnixNow();
    f.error = std::move(error);
    spdlog::error("{}: dead-lettered after {} attempt(s): {}", e.video.empty() ? e.id : e.video, attempts,
                  f.error.ToString());
    Status s = Persist([&] { return queue_->DeadLetter(f); });
    if (s.ok()) {
      stats_.dead.fetch_add(1);
      DropUpload(e);
      std::lock_guard<std::mutex> lock(mu_);
      ++failed_;
    }
    if (on_outcome) on_outcome(e, f.error);
  };
  if (!d.malformed.ok()) {
    dead_letter(d.malformed, d.deliveries);
    return;
  }
  if (d.deliveries > qo.max_attempts) {
    // Workers died (or were partitioned) while scanning it more often than allowed: a poison video.
    Result<std::optional<FailureRecord>> last = queue_->LastFailure(e.id);
    Status why = last.ok() && last->has_value()
                     ? (*last)->error
                     : Status::Internal("the workers scanning it stopped " + std::to_string(d.deliveries - 1) +
                                        " times without a result (killed or crashed)");
    dead_letter(why, d.deliveries - 1);
    return;
  }
  // The result key: content hash (local files) or the URL's text, under this configuration.
  Status failure;
  std::string key;
  if (IsUrl(e.video)) {
    key = pipeline::ResultKey(pipeline::HashBytes("url:" + e.video), config_hash_);
  } else {
    Result<pipeline::FileDigest> digest = pipeline::HashFile(e.video);
    if (digest.ok()) {
      key = pipeline::ResultKey(digest->hex, config_hash_);
    } else {
      failure = digest.status();
    }
  }
  ResultRecord rec;
  rec.key = key;
  rec.video = e.video;
  rec.entry = e.id;
  rec.worker = consumer_;
  rec.attempt = d.deliveries;
  if (failure.ok()) {
    Result<std::optional<ResultRecord>> known = queue_->FindResult(key);
    if (known.ok() && known->has_value()) {
      Status s = Persist([&] { return queue_->Complete(d, **known, /*cached=*/true); });
      if (s.ok()) {
        stats_.cached.fetch_add(1);
        DropUpload(e);
        std::lock_guard<std::mutex> lock(mu_);
        ++done_;
      }
      spdlog::info("{}: known content, result reused ({})", e.video, key.substr(0, 12));
      if (on_outcome) on_outcome(e, Status::Ok());
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      entry_ = e.id;
      state_ = "scanning";
      video_ = e.video;
    }
    progress_ = 0;
    const auto start = std::chrono::steady_clock::now();
    stats_.busy = 1;
    rec.verdict = scanner_->Scan(e.video, [this](double f) { progress_ = f; });
    stats_.busy = 0;
    AddDouble(&stats_.scan_seconds, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    {
      std::lock_guard<std::mutex> lock(mu_);
      entry_.clear();
      state_ = stop_.load() ? "stopping" : "idle";
      video_.clear();
    }
    if (on_verdict) on_verdict(e, rec.verdict);
    if (rec.verdict.status == VideoStatus::kError) failure = rec.verdict.error;
  }
  if (failure.ok()) {
    rec.scanned_at = UnixNow();
    bool duplicate = false;
    Status s = Persist([&] { return queue_->Complete(d, rec, /*cached=*/false, &duplicate); });
    if (!s.ok()) {
      spdlog::error("{}: result not stored ({}); the entry stays pending for another worker", e.video, s.message());
      return;
    }
    stats_.scanned.fetch_add(1);
    if (duplicate) stats_.duplicates.fetch_add(1);
    DropUpload(e);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++done_;
    }
    spdlog::info("{}: {} {} ({:.2f} s)", e.video, StatusName(rec.verdict.status), rec.verdict.label,
                 rec.verdict.timings.total_s);
    if (on_outcome) on_outcome(e, Status::Ok());
    return;
  }
  if (d.deliveries >= qo.max_attempts) {
    dead_letter(failure, d.deliveries);
    return;
  }
  FailureRecord f;
  f.video = e.video;
  f.entry = e.id;
  f.worker = consumer_;
  f.attempts = d.deliveries;
  f.failed_at = UnixNow();
  f.error = failure;
  spdlog::warn("{}: attempt {} of {} failed ({}); offered again in {:.1f} s", e.video, d.deliveries, qo.max_attempts,
               failure.ToString(), qo.retry_delay_s);
  Persist([&] { return queue_->Retry(consumer_, f); });
  stats_.retried.fetch_add(1);
  if (on_outcome) on_outcome(e, failure);
}

Status Worker::Run() {
  spdlog::info("worker {} on {} (queue '{}', claim idle {:.1f} s, {} attempts)", consumer_, Redacted(queue_->url()),
               options_.queue.name, options_.queue.claim_idle_s, options_.queue.max_attempts);
  keeper_stop_ = false;
  std::thread keeper([this] { Keeper(); });
  int idle_rounds = 0;
  while (!stop_.load()) {
    if (!queue_->connected()) {
      spdlog::warn("lost the connection to redis at {}; reconnecting", Redacted(queue_->url()));
      if (!ReconnectWithBackoff(-1)) break;
      continue;
    }
    SetState("idle", "");
    Result<std::optional<Delivery>> d = queue_->Reclaim(consumer_);
    if (d.ok() && !d->has_value()) d = queue_->ReadNew(consumer_, options_.block_s);
    if (!d.ok()) {
      if (queue_->connected()) {
        spdlog::error("{}", d.status().message());
        SleepUnlessStopped(1);
      }
      continue;
    }
    if (!d->has_value()) {
      if (options_.exit_when_empty && Empty() && ++idle_rounds >= 2) break;
      continue;
    }
    idle_rounds = 0;
    Process(**d);
  }
  SetState("stopped", "");
  keeper_stop_ = true;
  keeper.join();
  spdlog::info("worker {} stopped: {} scanned, {} from stored results, {} dead-lettered", consumer_,
               stats_.scanned.load(), stats_.cached.load(), stats_.dead.load());
  return Status::Ok();
}

}  // namespace deepscan::queue
