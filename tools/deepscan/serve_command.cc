// `deepscan serve`: the scanner as an HTTP service (serve/server.h; docs/serve.md). Takes every
// scan flag of `deepscan scan` (one argument table, flags.h) plus the server's own.
// Runs until SIGINT or SIGTERM, then shuts down gracefully: exit 0 when every accepted job
// finished within --drain-timeout, 14 (timeout) when some did not. A second signal exits at once.
// With --queue, exit 23 when its Redis cannot be reached at start.
#include <signal.h>
#include <sys/resource.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "commands.h"
#include "flags.h"
#include "queue/work_queue.h"
#include "serve/request_parse.h"
#include "serve/server.h"

namespace deepscan::tools {
namespace {

struct ServeArgs {
  ScanOptions scan;
  TunedFlags tuned;
  serve::ServeOptions serve;
  double max_upload_mb = 512, sync_max_mb = 32, max_image_mb = 16, max_body_memory_mb = 256;
  int max_header_kb = 16;
  std::vector<std::string> api_keys;
  std::string api_key_file;
  bool no_access_log = false;
  std::string retired_job_dir, retired_job_lease;
};

constexpr int kExitQueueUnreachable = 23;  // as `deepscan worker` (docs/exit-codes.md)

int64_t MbToBytes(double mb) { return static_cast<int64_t>(mb * 1024.0 * 1024.0); }

int RunServe(ServeArgs& a) {
  serve::ServeOptions& so = a.serve;
  if (!a.retired_job_dir.empty() || !a.retired_job_lease.empty()) {
    return ReportFailure(Status::InvalidArgument(
        "--job-dir and --job-lease were retired: replicas share jobs through Redis now, with "
        "--queue redis://HOST:6379 --blob-dir SHARED_DIR (docs/serve.md, \"Replicas sharing jobs\")"));
  }
  if (so.jobs.queue_url.empty() && so.jobs.workers < 1) {
    return ReportFailure(Status::InvalidArgument("--workers 0 needs --queue (someone else must scan)"));
  }
  if (!so.jobs.queue_url.empty()) {  // unreachable Redis: exit 23, as for `deepscan worker`
    queue::QueueOptions qo;
    qo.url = so.jobs.queue_url;
    qo.name = so.jobs.queue_name;
    auto q = queue::WorkQueue::Open(qo);
    if (!q.ok() && q.status().code() == Code::kIoError) {
      spdlog::error("{}", q.status().message());
      return kExitQueueUnreachable;
    }
    if (!q.ok()) return ReportFailure(q.status());
  }
  so.max_upload_bytes = MbToBytes(a.max_upload_mb);
  so.sync_max_bytes = MbToBytes(a.sync_max_mb);
  so.max_image_bytes = MbToBytes(a.max_image_mb);
  so.max_body_memory_bytes = MbToBytes(a.max_body_memory_mb);
  so.header_limit = static_cast<uint32_t>(a.max_header_kb) * 1024;
  so.access_log = !a.no_access_log;
  so.api_keys = a.api_keys;
  if (!a.api_key_file.empty()) {
    std::ifstream in(a.api_key_file, std::ios::binary);
    std::stringstream text;
    if (!in || !(text << in.rdbuf())) {
      return ReportFailure(Status::InvalidArgument("cannot read --api-key-file " + a.api_key_file));
    }
    std::vector<std::string> keys = serve::ParseKeyFile(text.str());
    if (keys.empty()) return ReportFailure(Status::InvalidArgument("no API key in " + a.api_key_file));
    so.api_keys.insert(so.api_keys.end(), keys.begin(), keys.end());
  }
  for (const std::string& k : so.api_keys) {
    if (k.empty()) return ReportFailure(Status::InvalidArgument("an API key may not be empty"));
  }

  // Signals are taken by sigwait below: block them before any thread starts, so every thread
  // inherits the mask and none is interrupted.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Every open connection is a file descriptor: take the hard limit, and say when it is below
  // what --max-connections needs (connections + uploads + models + logs).
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY &&
      nofile.rlim_cur < static_cast<rlim_t>(so.max_connections) + 256) {
    spdlog::warn("open files limited to {} (ulimit -n): fewer than --max-connections {} + 256; connections beyond "
                 "the limit wait in the listen backlog",
                 static_cast<uint64_t>(nofile.rlim_cur), so.max_connections);
  }

  auto server = serve::Server::Create(so, a.scan);
  if (!server.ok()) return ReportFailure(server.status());
  (*server)->Start();
  int sig = 0;
  sigwait(&signals, &sig);
  // A second signal while draining: give up on the jobs and exit now.
  std::thread([signals]() mutable {
    int again = 0;
    sigwait(&signals, &again);
    spdlog::error("second signal during shutdown: exiting without waiting for the jobs");
    std::_Exit(128 + again);
  }).detach();
  if ((*server)->Shutdown()) return 0;
  spdlog::error("--drain-timeout ran out before every accepted job finished");
  std::fflush(stderr);
  std::_Exit(ExitCodeFor(Code::kTimeout));  // threads still scan; do not wait for them
}

}  // namespace

RunFn AddServeCommand(CLI::App* app) {
  CLI::App* cmd = app->add_subcommand("serve", "serve scans over HTTP (REST API, metrics; docs/serve.md)");
  cmd->fallthrough();
  auto a = std::make_shared<ServeArgs>();
  AddScanFlags(cmd, &a->scan);
  AddTunedFlags(cmd, &a->tuned);
  serve::ServeOptions& so = a->serve;
  cmd->add_option("--host", so.host, "address to listen on (0.0.0.0 or :: for every interface)")->capture_default_str();
  cmd->add_option("--port", so.port, "TCP port (0 = any free one; the 'listening' log line says which)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--workers", so.jobs.workers,
                  "videos scanned at once, each by its own scanner (0, with --queue only: this replica scans "
                  "nothing, it takes uploads and answers for jobs)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  cmd->add_option("--max-queued", so.jobs.max_queued, "scan jobs waiting for a worker; more get 503")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--keep-jobs", so.jobs.max_kept, "finished jobs remembered for GET /v1/jobs/{id}")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  cmd->add_option("--job-ttl", so.jobs.keep_s, "seconds a finished job is remembered")
      ->check(CLI::Range(1.0, 1e9))
      ->capture_default_str();
  cmd->add_option("--queue", so.jobs.queue_url,
                  "share jobs with every replica (and `deepscan worker`) on this Redis: "
                  "redis://[[user]:password@]host[:port][/db]; any replica answers GET /v1/jobs/{id}, a killed "
                  "replica's jobs finish elsewhere (docs/serve.md). Needs --blob-dir");
  cmd->add_option("--queue-name", so.jobs.queue_name, "with --queue: key prefix of the jobs' queue in Redis")
      ->capture_default_str();
  cmd->add_option("--blob-dir", so.jobs.blob_dir,
                  "with --queue: the uploads' folder, on storage every replica and worker sees at this path");
  cmd->add_option("--claim-idle", so.jobs.claim_idle_s,
                  "with --queue: seconds after which a job whose worker stopped (killed) is taken over")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
  cmd->add_option("--max-attempts", so.jobs.max_attempts,
                  "with --queue: scans of a job before it fails for good (a video that kills its workers)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  cmd->add_option("--report-crops", so.report_crops,
                  "face crops kept per person for a job's HTML report (GET /v1/jobs/{id}?format=html); 0 = none")
      ->check(CLI::Range(0, 16))
      ->capture_default_str();
  // Retired with the folder-lease job store (docs/serve.md): refused with the way forward, not "unknown option".
  cmd->add_option("--job-dir", a->retired_job_dir, "retired: use --queue redis://… --blob-dir DIR")->group("");
  cmd->add_option("--job-lease", a->retired_job_lease, "retired: use --queue and --claim-idle")->group("");
  cmd->add_option("--http-threads", so.http_threads,
                  "request threads: whole requests (their header and body read) served at once")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  cmd->add_option("--io-threads", so.io_threads,
                  "threads that accept connections and read and write them asynchronously (idle and slow clients "
                  "cost no request thread)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--max-connections", so.max_connections,
                  "open connections in all; more are answered 503 (Retry-After) and closed")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--max-connections-per-client", so.max_connections_per_client,
                  "open connections per client address (0 = no limit; behind a proxy, every client is the proxy); "
                  "more are answered 503 and closed")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  cmd->add_option("--max-waiting-requests", so.max_waiting_requests,
                  "whole requests waiting for a request thread; more are answered 503 at once")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--max-body-memory-mb", a->max_body_memory_mb,
                  "request bodies received into memory at once (POST /v1/frames), in MiB; more are answered 503")
      ->check(CLI::Range(1e-6, 1e6))
      ->capture_default_str();
  cmd->add_option("--frame-sessions", so.frame_sessions, "detector + classifier pairs for POST /v1/frames")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--frame-threads", so.frame_threads, "ONNX Runtime threads per frame session")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--max-queue-delay-us", so.max_queue_delay_us,
                  "dynamic batcher (/v1/frames, streams): longest a face crop waits for its batch to fill; the max "
                  "batch is --batch")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  cmd->add_option("--ab-model", so.ab_model,
                  "A/B: a second classifier model (ONNX or TorchScript) served side by side as variant \"b\"");
  cmd->add_option("--ab-split", so.ab_split,
                  "A/B: share of requests not choosing a variant (X-Deepscan-Variant, ?variant=) sent to \"b\"")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--ab-workers", so.ab_workers, "A/B: scan workers of variant \"b\"")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--max-streams", so.max_streams,
                  "WS /v1/stream connections at once (each holds a detector pair); more get 503")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  cmd->add_option("--stream-buffer", so.stream_buffer,
                  "frames a stream holds while one is scored; a frame beyond it drops the oldest")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--stream-idle-timeout", so.stream_idle_timeout_s,
                  "seconds a stream may go without sending a whole message before it is closed (1008)")
      ->check(CLI::Range(0.1, 1e6))
      ->capture_default_str();
  cmd->add_option("--max-upload-mb", a->max_upload_mb, "largest video upload (POST /v1/scan); larger: 413")
      ->check(CLI::Range(1e-6, 1e7))
      ->capture_default_str();
  cmd->add_option("--sync-max-mb", a->sync_max_mb,
                  "uploads up to this size are answered with the verdict (?wait=true); larger ones get a job")
      ->check(CLI::Range(0.0, 1e7))
      ->capture_default_str();
  cmd->add_option("--max-image-mb", a->max_image_mb, "largest image (POST /v1/frames); larger: 413")
      ->check(CLI::Range(1e-6, 1e5))
      ->capture_default_str();
  cmd->add_option("--max-image-pixels", so.max_image_pixels, "largest declared image size in pixels; larger: 413")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
      ->capture_default_str();
  cmd->add_option("--max-header-kb", a->max_header_kb, "request line + header fields; larger: 431")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--header-timeout", so.header_timeout_s, "seconds for a request's header to arrive; else 408")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  cmd->add_option("--read-timeout", so.read_timeout_s, "longest pause in a request body, in seconds; else 408")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  cmd->add_option("--write-timeout", so.write_timeout_s, "seconds a client has to read an answer")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  cmd->add_option("--keepalive-timeout", so.keepalive_timeout_s, "seconds an idle kept-alive connection stays open")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  cmd->add_option("--drain-timeout", so.drain_timeout_s,
                  "on SIGINT/SIGTERM, seconds allowed for accepted jobs to finish")
      ->check(CLI::Range(0.0, 1e7))
      ->capture_default_str();
  cmd->add_option("--api-key", a->api_keys,
                  "require this key (Authorization: Bearer KEY or X-API-Key: KEY) on every route but /healthz and "
                  "/readyz; repeatable");
  cmd->add_option("--api-key-file", a->api_key_file, "API keys, one per line ('#' starts a comment)");
  so.web_dir = HomeDir() + "/web";
  cmd->add_option("--web-dir", so.web_dir, "the web page's files, served at / (\"\" = no page)")->capture_default_str();
  cmd->add_option("--upload-dir", so.upload_dir, "where the private upload folder is made (default $TMPDIR or /tmp)");
  cmd->add_flag("--no-access-log", a->no_access_log, "no JSON line per request on stderr");
  return [cmd, a]() -> int {
    if (!cmd->parsed()) return -1;
    ApplyPolicyDefaults(*cmd, &a->scan);
    spdlog::info("{}", ApplyTunedSettings(*cmd, a->tuned, &a->scan));
    return RunServe(*a);
  };
}

}  // namespace deepscan::tools
