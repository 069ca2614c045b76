// `deepscan submit`, `deepscan worker`, `deepscan status`: the distributed work queue on Redis
// Streams (src/queue; docs/queue.md). Thin: flags in, calls into src/queue, exit codes out.
//   deepscan submit DIR|FILES|URLS --queue redis://host:port/db   enqueue videos
//   deepscan worker --queue ...                                    scan entries until SIGTERM
//   deepscan status --queue ... [--json] [--export results.jsonl|results.h5]
// Exit 23 when the queue's Redis cannot be reached (or refuses the login) at start.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "commands.h"
#include "deepscan/scanner.h"
#include "flags.h"
#include "inputs.h"
#include "queue/entry.h"
#include "queue/export.h"
#include "queue/metrics_endpoint.h"
#include "queue/work_queue.h"
#include "queue/worker.h"
#include "serve/metrics.h"

namespace fs = std::filesystem;

namespace deepscan::tools {
namespace {

constexpr int kExitQueueUnreachable = 23;
constexpr int kExitPartialFailure = 3;

// The flags every queue command shares.
void AddQueueFlags(CLI::App* cmd, queue::QueueOptions* q) {
  cmd->add_option("--queue", q->url, "the queue's Redis: redis://[[user]:password@]host[:port][/db]")->required();
  cmd->add_option("--queue-name", q->name, "key prefix of the queue in Redis (several queues may share one Redis)")
      ->capture_default_str();
  cmd->add_option("--connect-timeout", q->connect_timeout_s, "seconds allowed to connect to Redis")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
}

// Opens the queue; prints the error and gives the exit code when it cannot.
int OpenQueue(const queue::QueueOptions& options, std::unique_ptr<queue::WorkQueue>* out) {
  auto q = queue::WorkQueue::Open(options);
  if (q.ok()) {
    *out = std::move(*q);
    return 0;
  }
  if (q.status().code() == Code::kIoError) {
    std::cerr << "deepscan: " << q.status().message() << "\n";
    return kExitQueueUnreachable;
  }
  return ReportFailure(q.status());
}

// ---- submit
int RunSubmit(const queue::QueueOptions& qo, const std::vector<std::string>& inputs, bool recursive) {
  std::vector<queue::VideoEntry> entries;
  const double now = queue::UnixNow();
  int missing = 0, not_video = 0;
  for (const std::string& in : ExpandInputs(inputs, recursive)) {
    queue::VideoEntry e;
    e.submitted_s = now;
    if (queue::IsUrl(in)) {
      e.video = in;
    } else {
      std::error_code ec;
      if (!fs::exists(in, ec)) {
        std::cerr << "deepscan: error: " << in << ": not_found: no such file: " << in << "\n";
        ++missing;
        continue;
      }
      if (fs::is_directory(in, ec)) {
        std::cerr << "deepscan: error: " << in << ": not_a_video: " << in << " is a directory without video files\n";
        ++not_video;
        continue;
      }
      // Workers open the path as given: absolute, so that it means the same on every machine
      // that mounts the shared storage at the same place.
      e.video = fs::absolute(in, ec).lexically_normal().string();
    }
    entries.push_back(std::move(e));
  }
  if (missing + not_video > 0) {
    std::cerr << "deepscan: nothing submitted: fix the inputs above\n";
    return missing > 0 ? ExitCodeFor(Code::kNotFound) : ExitCodeFor(Code::kNotAVideo);
  }
  std::unique_ptr<queue::WorkQueue> q;
  if (int rc = OpenQueue(qo, &q); rc != 0) return rc;
  auto ids = q->Submit(entries);
  if (!ids.ok()) return ReportFailure(ids.status());
  for (size_t i = 0; i < ids->size(); ++i) std::cout << (*ids)[i] << '\t' << entries[i].video << '\n';
  std::cout << std::flush;
  spdlog::info("submitted {} video(s) to queue '{}' at {}", ids->size(), qo.name, queue::Redacted(q->url()));
  return 0;
}

// ---- worker
struct WorkerArgs {
  ScanOptions scan;
  TunedFlags tuned;
  queue::WorkerOptions worker;
  int metrics_port = -1;
  std::string metrics_host = "127.0.0.1";
};

// The worker's Prometheus metrics, read at scrape time from its counters.
std::unique_ptr<serve::metrics::Registry> WorkerMetrics(const queue::Worker& w) {
  auto r = std::make_unique<serve::metrics::Registry>();
  const queue::WorkerStats* s = &w.stats();
  r->AddValuesFn("deepscan_queue_entries_total", "Queue entries this worker finished, by outcome", "counter",
                 {"outcome"}, [s] {
                   return std::vector<serve::metrics::Registry::LabeledValue>{
                       {{"scanned"}, static_cast<double>(s->scanned.load())},
                       {{"cached"}, static_cast<double>(s->cached.load())},
                       {{"retried"}, static_cast<double>(s->retried.load())},
                       {{"dead_lettered"}, static_cast<double>(s->dead.load())}};
                 });
  r->AddValuesFn("deepscan_queue_reclaimed_total", "Entries taken over from a worker that stopped touching them",
                 "counter", {}, [s] {
                   return std::vector<serve::metrics::Registry::LabeledValue>{{{}, double(s->reclaimed.load())}};
                 });
  r->AddValuesFn("deepscan_queue_duplicate_scans_total", "Scans whose result another worker had stored first",
                 "counter", {}, [s] {
                   return std::vector<serve::metrics::Registry::LabeledValue>{{{}, double(s->duplicates.load())}};
                 });
  r->AddValuesFn("deepscan_queue_reconnects_total", "Reconnections to Redis after a lost connection", "counter", {},
                 [s] {
                   return std::vector<serve::metrics::Registry::LabeledValue>{{{}, double(s->reconnects.load())}};
                 });
  r->AddValuesFn("deepscan_queue_scan_seconds_total", "Wall time spent scanning", "counter", {}, [s] {
    return std::vector<serve::metrics::Registry::LabeledValue>{{{}, s->scan_seconds.load()}};
  });
  r->AddGaugeFn("deepscan_queue_busy", "1 while a video is being scanned", [s] { return double(s->busy.load()); });
  r->AddGaugeFn("deepscan_queue_redis_up", "1 while the connection to Redis is up",
                [s] { return double(s->connected.load()); });
  r->AddGaugeFn("deepscan_process_resident_memory_bytes", "Resident set size",
                [] { return serve::metrics::ResidentMemoryBytes(); });
  return r;
}

int RunWorker(WorkerArgs& a) {
  // Signals are taken by a sigwait thread: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto scanner = Scanner::Create(a.scan);
  if (!scanner.ok()) return ReportFailure(scanner.status());
  auto worker = queue::Worker::Create(scanner->get(), a.worker);
  if (!worker.ok()) {
    if (worker.status().code() == Code::kIoError) {
      std::cerr << "deepscan: " << worker.status().message() << "\n";
      return kExitQueueUnreachable;
    }
    return ReportFailure(worker.status());
  }
  queue::Worker* w = worker->get();
  std::unique_ptr<serve::metrics::Registry> registry;
  std::unique_ptr<queue::MetricsEndpoint> endpoint;
  if (a.metrics_port >= 0) {
    registry = WorkerMetrics(*w);
    serve::metrics::Registry* reg = registry.get();
    auto ep = queue::MetricsEndpoint::Start(a.metrics_host, a.metrics_port, [reg] { return reg->Render(); },
                                            serve::metrics::kContentType);
    if (!ep.ok()) return ReportFailure(ep.status());
    endpoint = std::move(*ep);
    // One JSON line, like serve's "listening" line, so scripts can find the port.
    std::cerr << nlohmann::json({{"event", "metrics"}, {"host", a.metrics_host}, {"port", endpoint->port()}}).dump()
              << std::endl;
  }
  // The worker runs on its own thread; this one waits for signals. The waiting thread must be the
  // main thread: the kernel offers a process signal to the main thread first, and libraries start
  // threads before main() with no signals blocked (OpenBLAS), which would otherwise take it.
  std::atomic<bool> finished{false};
  Status s;
  std::thread run([&] {
    s = w->Run();
    finished = true;
  });
  int signals_seen = 0;
  while (!finished.load()) {
    timespec wait{0, 200 * 1000 * 1000};
    int sig = sigtimedwait(&signals, nullptr, &wait);
    if (sig <= 0) continue;
    if (++signals_seen == 1) {
      spdlog::info("signal {}: finishing the current video, then exiting", sig);
      w->Stop();
    } else {
      spdlog::error("second signal: exiting now; the current entry is taken over by another worker");
      std::fflush(stderr);
      std::_Exit(128 + sig);
    }
  }
  run.join();
  endpoint.reset();
  if (!s.ok()) return ReportFailure(s);
  return 0;
}

// ---- status
std::string Duration(double s) {
  if (s < 0) return "unknown";
  char buf[64];
  if (s < 120) {
    std::snprintf(buf, sizeof buf, "%.0f s", s);
  } else if (s < 7200) {
    std::snprintf(buf, sizeof buf, "%.0f min", s / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f h", s / 3600);
  }
  return buf;
}

nlohmann::json ProgressToJson(const queue::Progress& p, const queue::WorkQueue& q) {
  nlohmann::json workers = nlohmann::json::array();
  for (const auto& c : p.workers) {
    workers.push_back({{"consumer", c.info.consumer}, {"host", c.info.host},         {"pid", c.info.pid},
                       {"state", c.info.state},       {"alive", c.alive},            {"video", c.info.video},
                       {"progress", c.info.progress}, {"done", c.info.done},         {"failed", c.info.failed},
                       {"pending", c.pending},        {"idle_s", c.idle_s},          {"updated_at", c.info.updated_at}});
  }
  return {{"queue", q.options().name},
          {"redis", queue::Redacted(q.url())},
          {"submitted", p.submitted},
          {"done", p.done},
          {"failed", p.failed},
          {"running", p.running},
          {"waiting", p.waiting},
          {"pending", p.running + p.waiting},
          {"results", p.results},
          {"scanned", p.scanned},
          {"cached", p.cached},
          {"duplicates", p.duplicates},
          {"retried", p.retried},
          {"reclaimed", p.reclaimed},
          {"rate_per_s", p.rate_per_s},
          {"eta_s", p.eta_s < 0 ? nlohmann::json(nullptr) : nlohmann::json(p.eta_s)},
          {"workers", workers}};
}

void PrintProgress(const queue::Progress& p, const queue::WorkQueue& q) {
  std::printf("queue '%s' at %s\n", q.options().name.c_str(), queue::Redacted(q.url()).c_str());
  std::printf("  submitted %lld   done %lld   failed %lld   pending %lld (running %lld, waiting %lld)\n",
              (long long)p.submitted, (long long)p.done, (long long)p.failed, (long long)(p.running + p.waiting),
              (long long)p.running, (long long)p.waiting);
  std::printf("  results %lld distinct (scanned %lld, reused %lld, duplicate scans %lld), retries %lld, taken over %lld\n",
              (long long)p.results, (long long)p.scanned, (long long)p.cached, (long long)p.duplicates,
              (long long)p.retried, (long long)p.reclaimed);
  std::printf("  rate %.2f videos/s over the last minute, ETA %s\n", p.rate_per_s, Duration(p.eta_s).c_str());
  if (p.workers.empty()) {
    std::printf("  no workers yet\n");
    return;
  }
  std::printf("  workers:\n");
  for (const auto& c : p.workers) {
    std::string what = c.info.video.empty() ? "" : "  " + c.info.video;
    if (!what.empty()) what += " (" + std::to_string(static_cast<int>(std::lround(c.info.progress * 100))) + "%)";
    std::printf("    %-28s %-12s done %-6lld failed %-4lld holds %-3lld idle %6.1f s%s\n", c.info.consumer.c_str(),
                (c.alive ? c.info.state : (c.info.state == "stopped" ? "stopped" : "gone")).c_str(),
                (long long)c.info.done, (long long)c.info.failed, (long long)c.pending, c.idle_s, what.c_str());
  }
}

int RunStatus(const queue::QueueOptions& qo, bool as_json, const std::string& export_path) {
  std::unique_ptr<queue::WorkQueue> q;
  if (int rc = OpenQueue(qo, &q); rc != 0) return rc;
  if (!export_path.empty()) {
    auto rows = queue::ExportResults(*q, export_path);
    if (!rows.ok()) return ReportFailure(rows.status());
    spdlog::info("exported {} entries to {}", *rows, export_path);
  }
  auto p = q->ReadProgress();
  if (!p.ok()) return ReportFailure(p.status());
  if (as_json) {
    std::cout << ProgressToJson(*p, *q).dump(2) << std::endl;
  } else {
    PrintProgress(*p, *q);
  }
  return 0;
}

}  // namespace

RunFn AddSubmitCommand(CLI::App* app) {
  CLI::App* cmd = app->add_subcommand("submit", "enqueue videos (paths on shared storage, or URLs) for workers");
  cmd->fallthrough();
  struct Args {
    queue::QueueOptions queue;
    std::vector<std::string> inputs;
    bool recursive = false;
  };
  auto a = std::make_shared<Args>();
  AddQueueFlags(cmd, &a->queue);
  cmd->add_option("inputs", a->inputs, "videos, directories of videos, or URLs")->required();
  cmd->add_flag("-r,--recursive", a->recursive, "descend into sub-directories");
  return [cmd, a]() -> int {
    if (!cmd->parsed()) return -1;
    return RunSubmit(a->queue, a->inputs, a->recursive);
  };
}

RunFn AddWorkerCommand(CLI::App* app) {
  CLI::App* cmd = app->add_subcommand("worker", "scan queued videos until SIGTERM (docs/queue.md)");
  cmd->fallthrough();
  auto a = std::make_shared<WorkerArgs>();
  AddScanFlags(cmd, &a->scan);
  AddTunedFlags(cmd, &a->tuned);
  queue::WorkerOptions& wo = a->worker;
  AddQueueFlags(cmd, &wo.queue);
  cmd->add_option("--consumer", wo.consumer, "this worker's name in the group (default host-pid-random)");
  cmd->add_option("--claim-idle", wo.queue.claim_idle_s,
                  "seconds after which an entry whose worker stopped touching it (killed) is taken over")
      ->check(CLI::Range(0.5, 86400.0))
      ->capture_default_str();
  cmd->add_option("--max-attempts", wo.queue.max_attempts, "deliveries of an entry before it is dead-lettered")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--retry-delay", wo.queue.retry_delay_s, "seconds before a failed scan is offered again")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  cmd->add_option("--max-backoff", wo.max_backoff_s, "longest pause between reconnection attempts, in seconds")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  cmd->add_flag("--until-empty", wo.exit_when_empty, "exit 0 once nothing waits or runs in the queue");
  cmd->add_option("--metrics-port", a->metrics_port, "serve Prometheus metrics on this port (0 = any free one)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--metrics-host", a->metrics_host, "address of the metrics endpoint")->capture_default_str();
  return [cmd, a]() -> int {
    if (!cmd->parsed()) return -1;
    if (a->worker.queue.retry_delay_s > a->worker.queue.claim_idle_s) {
      return ReportFailure(Status::InvalidArgument("--retry-delay may not exceed --claim-idle"));
    }
    ApplyPolicyDefaults(*cmd, &a->scan);
    spdlog::info("{}", ApplyTunedSettings(*cmd, a->tuned, &a->scan));
    return RunWorker(*a);
  };
}

RunFn AddStatusCommand(CLI::App* app) {
  CLI::App* cmd = app->add_subcommand("status", "progress of a queue (done, pending, failed, workers, rate, ETA)");
  cmd->fallthrough();
  struct Args {
    queue::QueueOptions queue;
    bool json = false;
    std::string export_path;
  };
  auto a = std::make_shared<Args>();
  AddQueueFlags(cmd, &a->queue);
  cmd->add_flag("--json", a->json, "print the status as JSON");
  cmd->add_option("--export", a->export_path, "write every finished entry to FILE.jsonl or FILE.h5 (HDF5)");
  return [cmd, a]() -> int {
    if (!cmd->parsed()) return -1;
    return RunStatus(a->queue, a->json, a->export_path);
  };
}

}  // namespace deepscan::tools
