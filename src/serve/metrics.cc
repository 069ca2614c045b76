#include "serve/metrics.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>

namespace deepscan::serve::metrics {
namespace {

std::string FormatNumber(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : "NaN";
}

// Label values: backslash, double quote and line feed are escaped (text format 0.0.4).
std::string EscapeLabel(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

// HELP text: backslash and line feed are escaped.
std::string EscapeHelp(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

class GaugeFnFamily : public FamilyBase {
 public:
  GaugeFnFamily(std::string name, std::string help, std::function<double()> read)
      : FamilyBase(std::move(name), std::move(help), "gauge", {}), read_(std::move(read)) {}
  void Render(std::string* out) const override {
    RenderHeader(out);
    *out += name_ + " " + FormatNumber(read_()) + "\n";
  }

 private:
  std::function<double()> read_;
};

class ValuesFnFamily : public FamilyBase {
 public:
  ValuesFnFamily(std::string name, std::string help, std::string type, std::vector<std::string> labels,
                 std::function<std::vector<Registry::LabeledValue>()> read)
      : FamilyBase(std::move(name), std::move(help), std::move(type), std::move(labels)), read_(std::move(read)) {}
  void Render(std::string* out) const override {
    RenderHeader(out);
    for (const auto& v : read_()) *out += SampleName("", v.labels) + " " + FormatNumber(v.value) + "\n";
  }

 private:
  std::function<std::vector<Registry::LabeledValue>()> read_;
};

class HistogramsFnFamily : public FamilyBase {
 public:
  HistogramsFnFamily(std::string name, std::string help, std::vector<std::string> labels,
                     std::function<std::vector<Registry::LabeledHistogram>()> read)
      : FamilyBase(std::move(name), std::move(help), "histogram", std::move(labels)), read_(std::move(read)) {}
  void Render(std::string* out) const override {
    RenderHeader(out);
    for (const auto& h : read_()) {
      uint64_t cumulative = 0;
      for (size_t i = 0; i < h.counts.size(); ++i) {
        cumulative += h.counts[i];
        const std::string le = i < h.bounds.size() ? FormatNumber(h.bounds[i]) : "+Inf";
        *out += SampleName("_bucket", h.labels, "le=\"" + le + "\"") + " " +
                FormatNumber(static_cast<double>(cumulative)) + "\n";
      }
      *out += SampleName("_sum", h.labels) + " " + FormatNumber(h.sum) + "\n";
      *out += SampleName("_count", h.labels) + " " + FormatNumber(static_cast<double>(cumulative)) + "\n";
    }
  }

 private:
  std::function<std::vector<Registry::LabeledHistogram>()> read_;
};

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  std::sort(bounds_.begin(), bounds_.end());
  bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
  counts_ = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::Observe(double v) {
  // Bucket i counts values in (bounds[i-1], bounds[i]]; the last one everything above.
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.bounds = bounds_;
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> LatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
}

FamilyBase::FamilyBase(std::string name, std::string help, std::string type, std::vector<std::string> labels)
    : name_(std::move(name)), help_(std::move(help)), type_(std::move(type)), labels_(std::move(labels)) {}

std::string FamilyBase::SampleName(const std::string& suffix, const std::vector<std::string>& values,
                                   const std::string& extra) const {
  std::string out = name_ + suffix;
  if (labels_.empty() && extra.empty()) return out;
  out += '{';
  bool first = true;
  for (size_t i = 0; i < labels_.size() && i < values.size(); ++i) {
    if (!first) out += ',';
    out += labels_[i] + "=\"" + EscapeLabel(values[i]) + "\"";
    first = false;
  }
  if (!extra.empty()) {
    if (!first) out += ',';
    out += extra;
  }
  return out + '}';
}

void FamilyBase::RenderHeader(std::string* out) const {
  *out += "# HELP " + name_ + " " + EscapeHelp(help_) + "\n";
  *out += "# TYPE " + name_ + " " + type_ + "\n";
}

template <>
void Family<Counter>::Render(std::string* out) const {
  RenderHeader(out);
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [values, c] : children_) *out += SampleName("", values) + " " + FormatNumber(c->value()) + "\n";
}

template <>
void Family<Gauge>::Render(std::string* out) const {
  RenderHeader(out);
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [values, g] : children_) *out += SampleName("", values) + " " + FormatNumber(g->value()) + "\n";
}

template <>
void Family<Histogram>::Render(std::string* out) const {
  RenderHeader(out);
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [values, h] : children_) {
    Histogram::Snapshot s = h->Read();
    for (size_t i = 0; i < s.cumulative.size(); ++i) {
      const std::string le = i < s.bounds.size() ? FormatNumber(s.bounds[i]) : "+Inf";
      *out += SampleName("_bucket", values, "le=\"" + le + "\"") + " " +
              FormatNumber(static_cast<double>(s.cumulative[i])) + "\n";
    }
    *out += SampleName("_sum", values) + " " + FormatNumber(s.sum) + "\n";
    *out += SampleName("_count", values) + " " + FormatNumber(static_cast<double>(s.cumulative.back())) + "\n";
  }
}

Family<Counter>& Registry::AddCounter(const std::string& name, const std::string& help,
                                      const std::vector<std::string>& labels) {
  auto f = std::make_unique<Family<Counter>>(name, help, "counter", labels, [] { return std::make_unique<Counter>(); });
  Family<Counter>& ref = *f;
  std::lock_guard<std::mutex> lock(mu_);
  families_.push_back(std::move(f));
  return ref;
}

Family<Gauge>& Registry::AddGauge(const std::string& name, const std::string& help,
                                  const std::vector<std::string>& labels) {
  auto f = std::make_unique<Family<Gauge>>(name, help, "gauge", labels, [] { return std::make_unique<Gauge>(); });
  Family<Gauge>& ref = *f;
  std::lock_guard<std::mutex> lock(mu_);
  families_.push_back(std::move(f));
  return ref;
}

Family<Histogram>& Registry::AddHistogram(const std::string& name, const std::string& help,
                                          const std::vector<std::string>& labels, std::vector<double> bounds) {
  auto f = std::make_unique<Family<Histogram>>(name, help, "histogram", labels,
                                               [bounds] { return std::make_unique<Histogram>(bounds); });
  Family<Histogram>& ref = *f;
  std::lock_guard<std::mutex> lock(mu_);
  families_.push_back(std::move(f));
  return ref;
}

void Registry::AddGaugeFn(const std::string& name, const std::string& help, std::function<double()> read) {
  auto f = std::make_unique<GaugeFnFamily>(name, help, std::move(read));
  std::lock_guard<std::mutex> lock(mu_);
  families_.push_back(std::move(f));
}

void Registry::AddValuesFn(const std::string& name, const std::string& help, const std::string& type,
                           const std::vector<std::string>& labels, std::function<std::vector<LabeledValue>()> read) {
  auto f = std::make_unique<ValuesFnFamily>(name, help, type, labels, std::move(read));
  std::lock_guard<std::mutex> lock(mu_);
  families_.push_back(std::move(f));
}

void Registry::AddHistogramsFn(const std::string& name, const std::string& help, const std::vector<std::string>& labels,
                               std::function<std::vector<LabeledHistogram>()> read) {
  auto f = std::make_unique<HistogramsFnFamily>(name, help, labels, std::move(read));
  std::lock_guard<std::mutex> lock(mu_);
  families_.push_back(std::move(f));
}

std::string Registry::Render() const {
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& f : families_) f->Render(&out);
  return out;
}

double ResidentMemoryBytes() {
  std::ifstream in("/proc/self/statm");
  long long size = 0, resident = 0;
  if (!(in >> size >> resident)) return 0;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

}  // namespace deepscan::serve::metrics
