// serve/metrics: a small Prometheus metrics registry (counters, gauges, histograms, with labels)
// rendered in the text exposition format 0.0.4 for GET /metrics.
//
// Why our own: Debian 12 packages no Prometheus C++ client (no prometheus-cpp), and the format
// is small. docs/serve.md lists the metrics the server exports.
//
// Usage:
//   Registry r;
//   auto& requests = r.AddCounter("deepscan_http_requests_total", "HTTP requests", {"route", "status"});
//   requests.With({"/v1/scan", "200"}).Inc();
//   auto& latency = r.AddHistogram("deepscan_http_request_duration_seconds", "...", {"route"}, {0.01, 0.1, 1});
//   latency.With({"/v1/scan"}).Observe(0.042);
//   r.AddGaugeFn("deepscan_job_queue_depth", "...", [&] { return queue.size(); });
//   std::string text = r.Render();
//
// Threading: every method is thread-safe. Inc/Set/Observe are lock-free atomics; With() takes
// its family's mutex once per call, and the returned reference stays valid for the registry's
// life, so hot paths can keep it. Register families before serving (Add* is not meant to race
// with Render, though it is safe).
#ifndef DEEPSCAN_SERVE_METRICS_H_
#define DEEPSCAN_SERVE_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace deepscan::serve::metrics {

class Counter {
 public:
  void Inc(double v = 1) { value_.fetch_add(v, std::memory_order_relaxed); }  // v >= 0
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Inc(double v = 1) { value_.fetch_add(v, std::memory_order_relaxed); }
  void Dec(double v = 1) { value_.fetch_sub(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  // `bounds`: the buckets' upper bounds, ascending; +Inf is added.
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);

  struct Snapshot {
    std::vector<double> bounds;        // without +Inf
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
  };
  Snapshot Read() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket (not cumulative), bounds_.size() + 1
  std::atomic<double> sum_{0};
};

// Buckets for latencies in seconds: 1 ms .. 10 min.
std::vector<double> LatencyBuckets();

// The children of one metric name, one per combination of label values.
class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, std::string type, std::vector<std::string> labels);
  virtual ~FamilyBase() = default;
  // Appends "# HELP", "# TYPE" and every sample of this family.
  virtual void Render(std::string* out) const = 0;

 protected:
  // `name{label="value",...,extra}` with escaped values; `extra` is e.g. le="0.5".
  std::string SampleName(const std::string& suffix, const std::vector<std::string>& values,
                         const std::string& extra = "") const;
  void RenderHeader(std::string* out) const;

  std::string name_, help_, type_;
  std::vector<std::string> labels_;
};

template <typename T>
class Family : public FamilyBase {
 public:
  using Factory = std::function<std::unique_ptr<T>()>;
  Family(std::string name, std::string help, std::string type, std::vector<std::string> labels, Factory make)
      : FamilyBase(std::move(name), std::move(help), std::move(type), std::move(labels)), make_(std::move(make)) {}

  // The child with these label values (as many as the family has labels), made on first use.
  T& With(const std::vector<std::string>& values) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = children_[values];
    if (!slot) slot = make_();
    return *slot;
  }

  void Render(std::string* out) const override;

 private:
  Factory make_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_;
};

// Defined in metrics.cc for the three kinds.
template <>
void Family<Counter>::Render(std::string* out) const;
template <>
void Family<Gauge>::Render(std::string* out) const;
template <>
void Family<Histogram>::Render(std::string* out) const;

class Registry {
 public:
  Family<Counter>& AddCounter(const std::string& name, const std::string& help,
                              const std::vector<std::string>& labels = {});
  Family<Gauge>& AddGauge(const std::string& name, const std::string& help,
                          const std::vector<std::string>& labels = {});
  Family<Histogram>& AddHistogram(const std::string& name, const std::string& help,
                                  const std::vector<std::string>& labels, std::vector<double> bounds);
  // A gauge without labels whose value `read` gives at scrape time (queue depth, memory).
  void AddGaugeFn(const std::string& name, const std::string& help, std::function<double()> read);

  // Families read at scrape time from a component that keeps its own counts (serve::Batcher):
  // `read` returns one sample per label-value list. `type` is "counter" or "gauge".
  struct LabeledValue {
    std::vector<std::string> labels;
    double value = 0;
  };
  struct LabeledHistogram {
    std::vector<std::string> labels;
    std::vector<double> bounds;    // upper bounds, ascending
    std::vector<uint64_t> counts;  // per bucket, NOT cumulative: bounds.size() + 1 (the last is +Inf)
    double sum = 0;
  };
  void AddValuesFn(const std::string& name, const std::string& help, const std::string& type,
                   const std::vector<std::string>& labels, std::function<std::vector<LabeledValue>()> read);
  void AddHistogramsFn(const std::string& name, const std::string& help, const std::vector<std::string>& labels,
                       std::function<std::vector<LabeledHistogram>()> read);

  // Every family, in registration order, in the text format 0.0.4.
  std::string Render() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<FamilyBase>> families_;
};

// The content type of Registry::Render's output.
inline constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

// Resident set size of this process in bytes (from /proc/self/statm); 0 when unreadable.
double ResidentMemoryBytes();

}  // namespace deepscan::serve::metrics

#endif  // DEEPSCAN_SERVE_METRICS_H_
