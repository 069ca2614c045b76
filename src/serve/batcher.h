// serve::Batcher: dynamic batching of face-crop classification across concurrent callers, over a
// pool of inference sessions (Triton's "dynamic batcher" with max batch size and max queue delay).
//
// In:  face crops (BGR uint8, input_size x input_size, as face::CropFace makes them), one at a time
//      (Submit) or the crops of one frame together (SubmitMany), from any number of threads.
// Out: one calibrated P(fake) per crop, through a callback or a std::future, exactly the score
//      infer::Classifier::Classify gives for that crop.
// How: accepted crops wait in one FIFO queue of at most max_queue crops; a Submit that would go
//      past it fails at once (kTooLarge, "overloaded"), so a server can answer 503 instead of
//      building latency. Each session (one infer::Classifier, its own buffers) has its own worker
//      thread; an idle worker takes up to max_batch crops from the front of the queue as soon as
//      max_batch are waiting or the oldest has waited max_queue_delay_us, and runs them as one
//      Classify call with no lock held, so `sessions` batches are in flight at once. The crops of
//      one SubmitMany may be split over several batches; its callback runs once, when the last
//      of them is scored. A failed batch fails the requests it holds crops of (with the
//      Classify error), and no others.
// Threading: every method may be called from any thread. Callbacks run on a worker thread after
//      its batch: they must be quick (hand the result over, do not infer) and must not call
//      Stop(); they may Submit again.
//
// Basic usage:
//   auto batcher = serve::Batcher::Create({.model_path = "models/default.onnx", .threads = 1},
//                                         {.max_batch = 16, .max_queue_delay_us = 2000, .sessions = 2});
//   std::future<Result<float>> score = (*batcher)->Submit(crop);   // or Submit(crop, callback)
//   Result<float> p_fake = score.get();
//   (*batcher)->Stop();   // scores what was accepted, then joins the workers (the destructor does too)
#ifndef DEEPSCAN_SERVE_BATCHER_H_
#define DEEPSCAN_SERVE_BATCHER_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <opencv2/core.hpp>

#include "deepscan/status.h"
#include "infer/classifier.h"
#include "infer/registry.h"

namespace deepscan::serve {

struct BatcherOptions {
  int max_batch = 16;             // most crops per Classify call (1 = batch-1 serving)
  int max_queue_delay_us = 2000;  // longest the oldest waiting crop is held back to fill a batch
  int sessions = 1;               // inference sessions (worker threads, batches in flight); Create from a
                                  // ClassifierConfig builds this many, the other Create ignores it
  int max_queue = 256;            // most crops waiting for a session; beyond it Submit fails at once
};

// A snapshot of the batcher's counters since Create, for metrics (Prometheus-style).
struct BatcherStats {
  // A histogram over fixed upper bounds; counts[i] holds observations in (bounds[i-1], bounds[i]]
  // (not cumulative), counts.back() those above the last bound (+Inf).
  struct Histogram {
    std::vector<double> bounds;
    std::vector<uint64_t> counts;  // bounds.size() + 1
    double sum = 0;
    uint64_t count = 0;
  };
  uint64_t requests = 0;              // accepted Submit and SubmitMany calls
  uint64_t crops = 0;                 // crops in those calls
  uint64_t rejected = 0;              // calls refused because the queue was full or the batcher stopped
  uint64_t failed = 0;                // crops whose batch failed
  uint64_t batches = 0;               // Classify calls
  std::vector<uint64_t> batch_sizes;  // [n] = batches of n crops, n = 1..max_batch ([0] stays 0)
  Histogram queue_us;                 // per crop: µs from Submit until its batch starts
  Histogram run_us;                   // per batch: µs of the Classify call
  size_t queued = 0;                  // crops waiting now
  int busy_sessions = 0;              // sessions running a batch now
};

class Batcher {
 public:
  using ScoreCallback = std::function<void(Result<float>)>;
  using ScoresCallback = std::function<void(Result<std::vector<float>>)>;

  // Builds options.sessions classifiers from `config` (its max_batch is set to options.max_batch;
  // config.threads is per session) and starts their workers. Errors: kInvalidArgument (an option
  // out of range), those of infer::CreateClassifier.
  static Result<std::unique_ptr<Batcher>> Create(const infer::ClassifierConfig& config, const BatcherOptions& options);
  // The same over classifiers made by the caller, one session each (options.sessions is ignored).
  // They must share the model's input size and accept max_batch crops per Classify call.
  static Result<std::unique_ptr<Batcher>> Create(std::vector<std::unique_ptr<infer::Classifier>> sessions,
                                                 const BatcherOptions& options);
  // Stop().
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues `crop` and returns at once; `done` later receives its score or the error of its batch.
  // The crop's pixels are shared, not copied: leave them unchanged until `done` runs.
  // Errors (then `done` is never called): kInvalidArgument (not CV_8UC3 input_size x input_size),
  // kTooLarge (message "overloaded: ...": the queue holds max_queue crops; or "stopped: ...": after
  // Stop). A server answers 400 for the first and 503 for the others.
  Status Submit(cv::Mat crop, ScoreCallback done);
  // Queues the crops of one frame as one request (all or none are accepted); `done` receives their
  // scores in order, or the first error among their batches. No crops: `done` runs at once with
  // none. Errors as Submit; kTooLarge also when the frame holds more than max_queue crops.
  Status SubmitMany(std::vector<cv::Mat> crops, ScoresCallback done);
  // The same with a future; a refused request gives a future that is ready with the error.
  std::future<Result<float>> Submit(cv::Mat crop);
  std::future<Result<std::vector<float>>> SubmitMany(std::vector<cv::Mat> crops);

  // Refuses new requests, scores every crop already accepted (batches are formed without waiting
  // for max_queue_delay), runs their callbacks and joins the workers: every accepted request is
  // answered with its score, none with an error made up by Stop. Idempotent; blocks until done.
  void Stop();

  BatcherStats Stats() const;
  const infer::ModelMetadata& metadata() const { return sessions_.front()->metadata(); }
  const BatcherOptions& options() const { return options_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Request;
  struct Item {
    cv::Mat crop;
    std::shared_ptr<Request> request;
    int index = 0;  // position of the crop in its request
    Clock::time_point enqueued;
  };

  Batcher(std::vector<std::unique_ptr<infer::Classifier>> sessions, const BatcherOptions& options);
  Status Enqueue(std::vector<cv::Mat> crops, ScoresCallback done);
  // One session's loop: takes a batch (TakeBatch), classifies it, answers its requests.
  void Work(infer::Classifier* session);
  // Waits for a batch to be due and moves it into `batch`; false once stopped and drained.
  bool TakeBatch(std::vector<Item>* batch);
  void Record(const std::vector<Item>& batch, Clock::time_point start, Clock::time_point end, bool failed);

  const BatcherOptions options_;
  std::vector<std::unique_ptr<infer::Classifier>> sessions_;
  std::vector<std::thread> workers_;
  std::mutex stop_mu_;  // serialises Stop()

  mutable std::mutex mu_;  // guards queue_ and stopping_
  std::condition_variable wake_;
  std::deque<Item> queue_;
  bool stopping_ = false;

  mutable std::mutex stats_mu_;
  BatcherStats stats_;
};

}  // namespace deepscan::serve

#endif  // DEEPSCAN_SERVE_BATCHER_H_
