#include "serve/batcher.h"

#include <algorithm>
#include <exception>
#include <string>
#include <utility>

namespace deepscan::serve {
namespace {

// µs buckets: queue times sit around max_queue_delay_us, run times around a batch's inference.
const std::vector<double>& QueueBounds() {
  static const std::vector<double> b = {50, 100, 250, 500, 1000, 2000, 3000, 5000, 10000, 25000, 50000, 100000, 250000};
  return b;
}
const std::vector<double>& RunBounds() {
  static const std::vector<double> b = {500, 1000, 2000, 3000, 5000, 7500, 10000, 20000, 50000, 100000, 250000};
  return b;
}

BatcherStats::Histogram MakeHistogram(const std::vector<double>& bounds) {
  BatcherStats::Histogram h;
  h.bounds = bounds;
  h.counts.assign(bounds.size() + 1, 0);
  return h;
}

void Observe(BatcherStats::Histogram* h, double v) {
  size_t i = std::lower_bound(h->bounds.begin(), h->bounds.end(), v) - h->bounds.begin();  // first bound >= v
  ++h->counts[i];
  h->sum += v;
  ++h->count;
}

double Micros(std::chrono::steady_clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

}  // namespace

// One Submit/SubmitMany call: its crops may be scored in several batches, on several sessions.
struct Batcher::Request {
  explicit Request(size_t n, ScoresCallback cb) : scores(n), remaining(n), done(std::move(cb)) {}
  std::vector<float> scores;  // each slot written by the one batch holding that crop
  std::mutex mu;              // guards remaining and error
  size_t remaining;
  Status error;
  ScoresCallback done;
};

Result<std::unique_ptr<Batcher>> Batcher::Create(const infer::ClassifierConfig& config, const BatcherOptions& options) {
  if (options.sessions < 1 || options.sessions > 64) {
    return Status::InvalidArgument("batcher sessions must be in [1, 64], not " + std::to_string(options.sessions));
  }
  infer::ClassifierConfig per_session = config;
  per_session.max_batch = options.max_batch;
  std::vector<std::unique_ptr<infer::Classifier>> sessions;
  for (int i = 0; i < options.sessions; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<infer::Classifier> c, infer::CreateClassifier(per_session));
    sessions.push_back(std::move(c));
  }
  return Create(std::move(sessions), options);
}

Result<std::unique_ptr<Batcher>> Batcher::Create(std::vector<std::unique_ptr<infer::Classifier>> sessions,
                                                 const BatcherOptions& options) {
  if (options.max_batch < 1) {
    return Status::InvalidArgument("batcher max_batch must be at least 1, not " + std::to_string(options.max_batch));
  }
  if (options.max_queue_delay_us < 0) {
    return Status::InvalidArgument("batcher max_queue_delay_us must not be negative");
  }
  if (options.max_queue < options.max_batch) {
    return Status::InvalidArgument("batcher max_queue (" + std::to_string(options.max_queue) +
                                   ") must be at least max_batch (" + std::to_string(options.max_batch) + ")");
  }
  if (sessions.empty()) return Status::InvalidArgument("batcher needs at least one inference session");
  for (const auto& s : sessions) {
    if (!s) return Status::InvalidArgument("batcher session is null");
    if (s->metadata().input_size != sessions.front()->metadata().input_size) {
      return Status::InvalidArgument("batcher sessions disagree on the input size");
    }
  }
  return std::unique_ptr<Batcher>(new Batcher(std::move(sessions), options));
}

Batcher::Batcher(std::vector<std::unique_ptr<infer::Classifier>> sessions, const BatcherOptions& options)
    : options_(options), sessions_(std::move(sessions)) {
  stats_.batch_sizes.assign(options_.max_batch + 1, 0);
  stats_.queue_us = MakeHistogram(QueueBounds());
  stats_.run_us = MakeHistogram(RunBounds());
  for (auto& s : sessions_) workers_.emplace_back([this, session = s.get()] { Work(session); });
}

Batcher::~Batcher() { Stop(); }

void Batcher::Stop() {
  std::lock_guard<std::mutex> stop_lock(stop_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
}

Status Batcher::Submit(cv::Mat crop, ScoreCallback done) {
  std::vector<cv::Mat> one;
  one.push_back(std::move(crop));
  return Enqueue(std::move(one), [done = std::move(done)](Result<std::vector<float>> r) {
    if (r.ok()) {
      done(r->front());
    } else {
      done(r.status());
    }
  });
}

Status Batcher::SubmitMany(std::vector<cv::Mat> crops, ScoresCallback done) {
  return Enqueue(std::move(crops), std::move(done));
}

std::future<Result<float>> Batcher::Submit(cv::Mat crop) {
  auto promise = std::make_shared<std::promise<Result<float>>>();
  std::future<Result<float>> future = promise->get_future();
  Status st = Submit(std::move(crop), [promise](Result<float> r) { promise->set_value(std::move(r)); });
  if (!st.ok()) promise->set_value(st);
  return future;
}

std::future<Result<std::vector<float>>> Batcher::SubmitMany(std::vector<cv::Mat> crops) {
  auto promise = std::make_shared<std::promise<Result<std::vector<float>>>>();
  std::future<Result<std::vector<float>>> future = promise->get_future();
  Status st =
      SubmitMany(std::move(crops), [promise](Result<std::vector<float>> r) { promise->set_value(std::move(r)); });
  if (!st.ok()) promise->set_value(st);
  return future;
}

Status Batcher::Enqueue(std::vector<cv::Mat> crops, ScoresCallback done) {
  const int side = metadata().input_size;
  for (size_t i = 0; i < crops.size(); ++i) {
    const cv::Mat& c = crops[i];
    if (c.type() != CV_8UC3 || c.rows != side || c.cols != side) {
      return Status::InvalidArgument("crop " + std::to_string(i) + " is " + std::to_string(c.cols) + "x" +
                                     std::to_string(c.rows) + " with " + std::to_string(c.channels()) +
                                     " channels; the model takes " + std::to_string(side) + "x" + std::to_string(side) +
                                     " BGR uint8");
    }
  }
  auto reject = [&](Status st) {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.rejected;
    return st;
  };
  if (crops.size() > static_cast<size_t>(options_.max_queue)) {
    return reject(Status::TooLarge("overloaded: a request of " + std::to_string(crops.size()) +
                                   " crops is more than the queue holds (" + std::to_string(options_.max_queue) + ")"));
  }
  const size_t n = crops.size();
  auto request = std::make_shared<Request>(n, std::move(done));
  size_t before = 0, after = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return reject(Status::TooLarge("stopped: the classifier batcher is shutting down"));
    before = queue_.size();
    if (before + n > static_cast<size_t>(options_.max_queue)) {
      return reject(Status::TooLarge("overloaded: " + std::to_string(before) +
                                     " crops are waiting for the classifier (" + "max_queue " +
                                     std::to_string(options_.max_queue) + ")"));
    }
    const Clock::time_point now = Clock::now();
    for (size_t i = 0; i < n; ++i) queue_.push_back({std::move(crops[i]), request, static_cast<int>(i), now});
    after = queue_.size();
  }
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.requests;
    stats_.crops += n;
  }
  if (n == 0) {
    request->done(std::vector<float>{});
    return Status::Ok();
  }
  // Wake a worker when the queue stops being empty (it arms the delay timer) and for each batch
  // that became full; a worker that leaves crops behind wakes the next one itself.
  const size_t mb = options_.max_batch;
  if (before == 0 || after / mb > before / mb) {
    if (after / mb - before / mb > 1) {
      wake_.notify_all();
    } else {
      wake_.notify_one();
    }
  }
  return Status::Ok();
}

bool Batcher::TakeBatch(std::vector<Item>* batch) {
  const size_t mb = options_.max_batch;
  const auto delay = std::chrono::microseconds(options_.max_queue_delay_us);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return false;  // stopping and drained
    // Hold the batch back until it is full, the oldest crop is due, or the batcher stops.
    while (!queue_.empty() && queue_.size() < mb && !stopping_) {
      const Clock::time_point due = queue_.front().enqueued + delay;
      if (Clock::now() >= due) break;
      wake_.wait_until(lock, due);
    }
    if (queue_.empty()) continue;  // another worker took them
    const size_t take = std::min(mb, queue_.size());
    batch->clear();
    for (size_t i = 0; i < take; ++i) {
      batch->push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    const bool more = !queue_.empty();
    lock.unlock();
    if (more) wake_.notify_one();
    return true;
  }
}

void Batcher::Work(infer::Classifier* session) {
  std::vector<Item> batch;
  std::vector<cv::Mat> crops;
  std::vector<float> scores;
  batch.reserve(options_.max_batch);
  crops.reserve(options_.max_batch);
  while (TakeBatch(&batch)) {
    crops.clear();
    for (const Item& item : batch) crops.push_back(item.crop);
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      ++stats_.busy_sessions;
    }
    const Clock::time_point start = Clock::now();
    Status st;
    try {
      st = session->Classify(crops, &scores);
    } catch (const std::exception& e) {
      st = Status::Internal(std::string("classifier threw: ") + e.what());
    }
    if (st.ok() && scores.size() != batch.size()) {
      st = Status::Internal("classifier returned " + std::to_string(scores.size()) + " scores for " +
                            std::to_string(batch.size()) + " crops");
    }
    const Clock::time_point end = Clock::now();
    Record(batch, start, end, !st.ok());
    // Answer: each request completes when its last crop is scored (in this batch or another).
    for (size_t i = 0; i < batch.size(); ++i) {
      Request& r = *batch[i].request;
      if (st.ok()) r.scores[batch[i].index] = scores[i];
      bool last = false;
      {
        std::lock_guard<std::mutex> lock(r.mu);
        if (!st.ok() && r.error.ok()) r.error = st;
        last = --r.remaining == 0;
      }
      if (last) {
        if (r.error.ok()) {
          r.done(std::move(r.scores));
        } else {
          r.done(r.error);
        }
      }
    }
    batch.clear();  // drops the crops and requests now, not when the next batch arrives
    crops.clear();
  }
}

void Batcher::Record(const std::vector<Item>& batch, Clock::time_point start, Clock::time_point end, bool failed) {
  std::lock_guard<std::mutex> lock(stats_mu_);
  --stats_.busy_sessions;
  ++stats_.batches;
  ++stats_.batch_sizes[batch.size()];
  if (failed) stats_.failed += batch.size();
  Observe(&stats_.run_us, Micros(end - start));
  for (const Item& item : batch) Observe(&stats_.queue_us, Micros(start - item.enqueued));
}

BatcherStats Batcher::Stats() const {
  BatcherStats s;
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    s = stats_;
  }
  std::lock_guard<std::mutex> lock(mu_);
  s.queued = queue_.size();
  return s;
}

}  // namespace deepscan::serve
