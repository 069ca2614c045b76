// serve::SessionPool: a fixed set of objects that serve one user at a time (detectors and
// classifiers own per-call buffers), leased to callers on any thread.
//
// Usage:
//   SessionPool<face::BlazeFaceDetector> pool(std::move(detectors));
//   { auto lease = pool.Acquire(); lease->Detect(frame); }  // returned when `lease` dies
//
// Threading: Acquire blocks while every object is leased. The pool's mutex is held only to take
// or return an object, never while it is used, so N objects serve N callers at once.
#ifndef DEEPSCAN_SERVE_SESSION_POOL_H_
#define DEEPSCAN_SERVE_SESSION_POOL_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace deepscan::serve {

template <typename T>
class SessionPool {
 public:
  explicit SessionPool(std::vector<std::unique_ptr<T>> items) : all_(std::move(items)) {
    for (auto& p : all_) free_.push_back(p.get());
  }

  class Lease {
   public:
    Lease(Lease&& o) noexcept : pool_(o.pool_), item_(o.item_) { o.item_ = nullptr; }
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (item_ != nullptr) pool_->Return(item_);
    }
    T* operator->() const { return item_; }
    T& operator*() const { return *item_; }

   private:
    friend class SessionPool;
    Lease(SessionPool* pool, T* item) : pool_(pool), item_(item) {}
    SessionPool* pool_;
    T* item_;
  };

  // Waits for a free object. Precondition: the pool holds at least one.
  Lease Acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !free_.empty(); });
    T* item = free_.back();
    free_.pop_back();
    return Lease(this, item);
  }

  // A free object if there is one now; never waits.
  std::optional<Lease> TryAcquire() {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.empty()) return std::nullopt;
    T* item = free_.back();
    free_.pop_back();
    return Lease(this, item);
  }

  size_t size() const { return all_.size(); }
  const T& any() const { return *all_.front(); }  // for reading immutable properties

 private:
  void Return(T* item) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      free_.push_back(item);
    }
    cv_.notify_one();
  }

  std::vector<std::unique_ptr<T>> all_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<T*> free_;
};

}  // namespace deepscan::serve

#endif  // DEEPSCAN_SERVE_SESSION_POOL_H_
