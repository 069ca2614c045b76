#include "serve/batcher.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "infer/model_metadata.h"
#include "infer/onnx_graph.h"
#include "infer/registry.h"
#include "test_env.h"

namespace deepscan::serve {
namespace {

using Clock = std::chrono::steady_clock;
using deepscan::testing::TempDir;
using std::chrono::milliseconds;

constexpr int kSide = 16;
constexpr int kFailId = 999;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// A crop that carries a number: the fake classifier's score for it is that number.
cv::Mat IdCrop(int id) { return cv::Mat(kSide, kSide, CV_8UC3, cv::Scalar(id % 256, id / 256, 0)); }
int CropId(const cv::Mat& m) { return m.at<cv::Vec3b>(0, 0)[0] + 256 * m.at<cv::Vec3b>(0, 0)[1]; }

// What the fake sessions saw: one entry per Classify call.
struct CallLog {
  struct Call {
    Clock::time_point start, end;
    size_t size;
  };
  std::mutex mu;
  std::vector<Call> calls;
  std::vector<Call> Get() {
    std::lock_guard<std::mutex> lock(mu);
    return calls;
  }
};

// Holds every Classify call until Open().
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  void Open() {
    std::lock_guard<std::mutex> lock(mu);
    open = true;
    cv.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return open; });
  }
};

// A session whose run time the test chooses; scores each crop with its CropId, fails a batch
// holding kFailId.
class FakeClassifier : public infer::Classifier {
 public:
  FakeClassifier(std::shared_ptr<CallLog> log, Clock::duration run, Gate* gate = nullptr)
      : log_(std::move(log)), run_(run), gate_(gate) {
    meta_.input_size = kSide;
  }
  const infer::ModelMetadata& metadata() const override { return meta_; }
  std::string backend() const override { return "fake"; }
  Status Classify(const std::vector<cv::Mat>& crops, std::vector<float>* scores) override {
    const Clock::time_point start = Clock::now();
    if (gate_) gate_->Wait();
    std::this_thread::sleep_for(run_);
    scores->clear();
    bool fail = false;
    for (const cv::Mat& c : crops) {
      scores->push_back(static_cast<float>(CropId(c)));
      fail |= CropId(c) == kFailId;
    }
    {
      std::lock_guard<std::mutex> lock(log_->mu);
      log_->calls.push_back({start, Clock::now(), crops.size()});
    }
    return fail ? Status::InvalidModel("fake failure") : Status::Ok();
  }

 private:
  infer::ModelMetadata meta_;
  std::shared_ptr<CallLog> log_;
  Clock::duration run_;
  Gate* gate_;
};

std::unique_ptr<Batcher> FakeBatcher(const BatcherOptions& o, std::shared_ptr<CallLog> log, Clock::duration run,
                                     int sessions = 1, Gate* gate = nullptr) {
  std::vector<std::unique_ptr<infer::Classifier>> s;
  for (int i = 0; i < sessions; ++i) s.push_back(std::make_unique<FakeClassifier>(log, run, gate));
  auto b = Batcher::Create(std::move(s), o);
  EXPECT_TRUE(b.ok()) << b.status().ToString();
  return b.ok() ? std::move(*b) : nullptr;
}

template <typename T>
bool Ready(const std::future<T>& f) {
  return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

TEST(BatcherTest, ScoresEqualDirectClassifyOfTheSameCrops) {
  const std::string path = TempDir() + "/conv.onnx";
  ASSERT_TRUE(infer::WriteRandomConvModel(path, 48, 11).ok());
  infer::ModelMetadata meta;
  meta.input_size = 48;
  std::ofstream(infer::MetadataPathFor(path)) << infer::ModelMetadataToJson(meta);
  cv::RNG rng(5);
  std::vector<cv::Mat> crops;
  for (int i = 0; i < 40; ++i) {
    cv::Mat m(48, 48, CV_8UC3);
    rng.fill(m, cv::RNG::UNIFORM, 0, 256);
    crops.push_back(m);
  }
  auto direct = infer::CreateClassifier({.model_path = path, .max_batch = 1});
  ASSERT_TRUE(direct.ok()) << direct.status().ToString();
  std::vector<float> want;
  ASSERT_TRUE((*direct)->Classify(crops, &want).ok());

  auto batcher =
      Batcher::Create({.model_path = path, .threads = 1}, {.max_batch = 8, .max_queue_delay_us = 3000, .sessions = 2});
  ASSERT_TRUE(batcher.ok()) << batcher.status().ToString();
  // 8 threads submit 5 crops each at once; then one frame of 13 crops (split over batches).
  std::vector<std::future<Result<float>>> futures(crops.size());
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < 40; i += 8) futures[i] = (*batcher)->Submit(crops[i]);
    });
  }
  for (auto& t : threads) t.join();
  auto frame = (*batcher)->SubmitMany(std::vector<cv::Mat>(crops.begin() + 20, crops.begin() + 33));
  for (size_t i = 0; i < crops.size(); ++i) {
    Result<float> r = futures[i].get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_NEAR(*r, want[i], 1e-6) << "crop " << i;
  }
  Result<std::vector<float>> many = frame.get();
  ASSERT_TRUE(many.ok());
  ASSERT_EQ(many->size(), 13u);
  for (size_t i = 0; i < 13; ++i) EXPECT_NEAR((*many)[i], want[20 + i], 1e-6);
  BatcherStats s = (*batcher)->Stats();
  EXPECT_EQ(s.requests, 41u);
  EXPECT_EQ(s.crops, 53u);
  uint64_t scored = 0;
  for (size_t n = 0; n < s.batch_sizes.size(); ++n) scored += n * s.batch_sizes[n];
  EXPECT_EQ(scored, 53u);
  EXPECT_EQ(s.queue_us.count, 53u);
  EXPECT_EQ(s.run_us.count, s.batches);
}

TEST(BatcherTest, ConcurrentSubmittersShareBatchesAndGetTheirOwnScores) {
  auto log = std::make_shared<CallLog>();
  auto b = FakeBatcher({.max_batch = 8, .max_queue_delay_us = 2000, .sessions = 1}, log, milliseconds(2));
  ASSERT_TRUE(b);
  std::atomic<int> wrong{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 32; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {  // closed loop: the next crop once the last is scored
        const int id = t * 10 + i;
        Result<float> r = b->Submit(IdCrop(id)).get();
        if (!r.ok() || *r != static_cast<float>(id)) ++wrong;
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(wrong.load(), 0);
  size_t largest = 0, total = 0;
  for (const auto& c : log->Get()) {
    largest = std::max(largest, c.size);
    total += c.size;
  }
  EXPECT_EQ(total, 320u);
  EXPECT_GT(largest, 1u);
  EXPECT_LE(largest, 8u);
  BatcherStats s = b->Stats();
  EXPECT_LT(s.batches, 320u / 2) << "32 clients on one 2 ms session should average more than 2 crops a batch";
  EXPECT_GT(s.batch_sizes[8], 0u);
}

TEST(BatcherTest, MaxBatchIsNeverExceededAndAFrameSplitsInOrder) {
  auto log = std::make_shared<CallLog>();
  auto b = FakeBatcher({.max_batch = 8, .max_queue_delay_us = 500, .sessions = 2}, log, milliseconds(1), 2);
  ASSERT_TRUE(b);
  std::vector<cv::Mat> frame;
  for (int i = 0; i < 50; ++i) frame.push_back(IdCrop(i));
  auto f1 = b->SubmitMany(frame);
  auto f2 = b->SubmitMany({IdCrop(70), IdCrop(71), IdCrop(72)});
  auto empty = b->SubmitMany({});
  Result<std::vector<float>> r1 = f1.get(), r2 = f2.get();
  ASSERT_TRUE(r1.ok() && r2.ok());
  ASSERT_EQ(r1->size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ((*r1)[i], static_cast<float>(i));
  EXPECT_EQ(*r2, (std::vector<float>{70, 71, 72}));
  ASSERT_TRUE(Ready(empty));
  EXPECT_TRUE(empty.get()->empty());
  size_t total = 0;
  for (const auto& c : log->Get()) {
    EXPECT_LE(c.size, 8u);
    EXPECT_GE(c.size, 1u);
    total += c.size;
  }
  EXPECT_EQ(total, 53u);
  BatcherStats s = b->Stats();
  EXPECT_EQ(s.batch_sizes.size(), 9u);
  EXPECT_GE(s.batch_sizes[8], 6u);  // 53 crops queued at once: at least 6 full batches
}

TEST(BatcherTest, ALoneRequestWaitsTheQueueDelayAndNoMore) {
  auto log = std::make_shared<CallLog>();
  auto b = FakeBatcher({.max_batch = 16, .max_queue_delay_us = 30000}, log, milliseconds(0));
  ASSERT_TRUE(b);
  for (int i = 0; i < 3; ++i) {
    const Clock::time_point t0 = Clock::now();
    Result<float> r = b->Submit(IdCrop(i)).get();
    const double ms = Ms(Clock::now() - t0);
    ASSERT_TRUE(r.ok());
    EXPECT_GE(ms, 29.0);   // held back hoping for company
    EXPECT_LE(ms, 250.0);  // 30 ms delay + a no-op run, generously
  }
  auto quick = FakeBatcher({.max_batch = 16, .max_queue_delay_us = 0}, log, milliseconds(0));
  const Clock::time_point t0 = Clock::now();
  ASSERT_TRUE(quick->Submit(IdCrop(1)).get().ok());
  EXPECT_LE(Ms(Clock::now() - t0), 25.0);
  // A full batch does not wait for the delay.
  auto full = FakeBatcher({.max_batch = 4, .max_queue_delay_us = 5000000}, log, milliseconds(0));
  const Clock::time_point t1 = Clock::now();
  ASSERT_TRUE(full->SubmitMany({IdCrop(1), IdCrop(2), IdCrop(3), IdCrop(4)}).get().ok());
  EXPECT_LE(Ms(Clock::now() - t1), 250.0);
}

TEST(BatcherTest, OverloadIsRefusedAtOnce) {
  auto log = std::make_shared<CallLog>();
  Gate gate;
  // A long delay: only full batches of 4 leave the queue.
  auto b = FakeBatcher({.max_batch = 4, .max_queue_delay_us = 10000000, .sessions = 1, .max_queue = 8}, log,
                       milliseconds(0), 1, &gate);
  ASSERT_TRUE(b);
  std::vector<std::future<Result<float>>> accepted;
  for (int i = 0; i < 4; ++i) accepted.push_back(b->Submit(IdCrop(i)));
  // Wait until the session holds that batch (blocked on the gate): the queue is empty again.
  for (int i = 0; i < 500 && b->Stats().busy_sessions == 0; ++i) std::this_thread::sleep_for(milliseconds(2));
  ASSERT_EQ(b->Stats().busy_sessions, 1);
  for (int i = 4; i < 12; ++i) accepted.push_back(b->Submit(IdCrop(i)));
  EXPECT_EQ(b->Stats().queued, 8u);
  const Clock::time_point t0 = Clock::now();
  std::future<Result<float>> refused = b->Submit(IdCrop(12));
  ASSERT_TRUE(Ready(refused));
  Status st = refused.get().status();
  EXPECT_EQ(st.code(), Code::kTooLarge);
  EXPECT_EQ(st.message().rfind("overloaded", 0), 0u) << st.message();
  bool called = false;
  EXPECT_EQ(b->Submit(IdCrop(13), [&](Result<float>) { called = true; }).code(), Code::kTooLarge);
  EXPECT_EQ(
      b->SubmitMany(std::vector<cv::Mat>(9, IdCrop(1)), [&](Result<std::vector<float>>) { called = true; }).code(),
      Code::kTooLarge);
  EXPECT_LE(Ms(Clock::now() - t0), 50.0);
  EXPECT_FALSE(called);
  gate.Open();
  for (size_t i = 0; i < accepted.size(); ++i) {
    Result<float> r = accepted[i].get();
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
    EXPECT_EQ(*r, static_cast<float>(i));
  }
  BatcherStats s = b->Stats();
  EXPECT_EQ(s.rejected, 3u);
  EXPECT_EQ(s.requests, 12u);
}

TEST(BatcherTest, StopScoresEveryAcceptedRequestThenRefuses) {
  auto log = std::make_shared<CallLog>();
  // A long delay: without Stop these partial batches would wait 10 s.
  auto b = FakeBatcher({.max_batch = 8, .max_queue_delay_us = 10000000, .sessions = 2}, log, milliseconds(3), 2);
  ASSERT_TRUE(b);
  std::vector<std::future<Result<float>>> futures;
  std::mutex mu;
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < 9; ++i) {
        auto f = b->Submit(IdCrop(t * 9 + i));
        std::lock_guard<std::mutex> lock(mu);
        futures.push_back(std::move(f));
      }
    });
  }
  for (auto& c : clients) c.join();
  auto frame = b->SubmitMany({IdCrop(100), IdCrop(101), IdCrop(102)});
  const Clock::time_point t0 = Clock::now();
  b->Stop();
  EXPECT_LE(Ms(Clock::now() - t0), 2000.0);
  ASSERT_EQ(futures.size(), 36u);
  std::vector<int> ids;
  for (auto& f : futures) {
    ASSERT_TRUE(Ready(f));
    Result<float> r = f.get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ids.push_back(static_cast<int>(*r));
  }
  std::sort(ids.begin(), ids.end());
  for (int i = 0; i < 36; ++i) EXPECT_EQ(ids[i], i);
  ASSERT_TRUE(Ready(frame));
  EXPECT_EQ(*frame.get(), (std::vector<float>{100, 101, 102}));
  Status after = b->Submit(IdCrop(1), [](Result<float>) {});
  EXPECT_EQ(after.code(), Code::kTooLarge);
  EXPECT_EQ(after.message().rfind("stopped", 0), 0u) << after.message();
  b->Stop();  // idempotent
}

// Intervals [start, end) of the calls that overlap another call.
int OverlappingPairs(const std::vector<CallLog::Call>& calls) {
  int pairs = 0;
  for (size_t i = 0; i < calls.size(); ++i) {
    for (size_t j = i + 1; j < calls.size(); ++j) {
      if (calls[i].start < calls[j].end && calls[j].start < calls[i].end) ++pairs;
    }
  }
  return pairs;
}

TEST(BatcherTest, SessionsRunBatchesAtTheSameTime) {
  for (int sessions : {1, 2}) {
    auto log = std::make_shared<CallLog>();
    auto b =
        FakeBatcher({.max_batch = 2, .max_queue_delay_us = 0, .sessions = sessions}, log, milliseconds(80), sessions);
    ASSERT_TRUE(b);
    const Clock::time_point t0 = Clock::now();
    auto f = b->SubmitMany({IdCrop(1), IdCrop(2), IdCrop(3), IdCrop(4)});
    ASSERT_TRUE(f.get().ok());
    const double ms = Ms(Clock::now() - t0);
    std::vector<CallLog::Call> calls = log->Get();
    ASSERT_EQ(calls.size(), 2u);
    if (sessions == 1) {
      EXPECT_EQ(OverlappingPairs(calls), 0);
      EXPECT_GE(ms, 159.0);
    } else {
      EXPECT_EQ(OverlappingPairs(calls), 1) << "two sessions ran their batches one after the other";
      EXPECT_LT(ms, 155.0);
    }
  }
}

TEST(BatcherTest, AFailedBatchFailsOnlyItsRequests) {
  auto log = std::make_shared<CallLog>();
  auto b = FakeBatcher({.max_batch = 1, .max_queue_delay_us = 0, .sessions = 1}, log, milliseconds(0));
  ASSERT_TRUE(b);
  auto good = b->Submit(IdCrop(5));
  auto bad = b->Submit(IdCrop(kFailId));
  auto frame = b->SubmitMany({IdCrop(6), IdCrop(kFailId), IdCrop(7)});
  auto after = b->Submit(IdCrop(8));
  EXPECT_EQ(*good.get(), 5.0f);
  EXPECT_EQ(bad.get().status().code(), Code::kInvalidModel);
  EXPECT_EQ(frame.get().status().code(), Code::kInvalidModel);
  EXPECT_EQ(*after.get(), 8.0f);
  EXPECT_EQ(b->Stats().failed, 2u);
}

TEST(BatcherTest, BadCropsAndOptionsAreInvalidArguments) {
  auto log = std::make_shared<CallLog>();
  auto b = FakeBatcher({}, log, milliseconds(0));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->Submit(cv::Mat(kSide + 1, kSide, CV_8UC3), [](Result<float>) {}).code(), Code::kInvalidArgument);
  EXPECT_EQ(b->Submit(cv::Mat(kSide, kSide, CV_8UC1)).get().status().code(), Code::kInvalidArgument);
  EXPECT_EQ(b->SubmitMany({IdCrop(1), cv::Mat()}).get().status().code(), Code::kInvalidArgument);
  EXPECT_EQ(b->Stats().requests, 0u);
  auto make = [&](BatcherOptions o) {
    std::vector<std::unique_ptr<infer::Classifier>> s;
    s.push_back(std::make_unique<FakeClassifier>(log, milliseconds(0)));
    return Batcher::Create(std::move(s), o).status().code();
  };
  EXPECT_EQ(make({.max_batch = 0}), Code::kInvalidArgument);
  EXPECT_EQ(make({.max_queue_delay_us = -1}), Code::kInvalidArgument);
  EXPECT_EQ(make({.max_batch = 32, .max_queue = 16}), Code::kInvalidArgument);
  EXPECT_EQ(Batcher::Create(std::vector<std::unique_ptr<infer::Classifier>>{}, {}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(Batcher::Create({.model_path = TempDir() + "/none.onnx"}, {}).status().code(), Code::kInvalidModel);
}

}  // namespace
}  // namespace deepscan::serve
