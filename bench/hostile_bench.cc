// hostile_bench: `deepscan serve` under hostile load and over a long soak, against real server
// processes on loopback (docs/benchmarks.md, "hostile_bench").
//
//   build/hostile_bench                         # this build's server: idle threshold + frames/s
//   build/hostile_bench --compare OLD_BINARY    # the same, for OLD_BINARY and this build, in one run
//   build/hostile_bench --soak-minutes 10       # mixed /v1/frames + /v1/scan at concurrency 32 with
//                                               # a stream open; per minute: throughput, p50/p99,
//                                               # errors, RSS and open file descriptors
//
// What it measures (nothing is asserted):
//   1. idle threshold: idle TCP connections (opened, nothing sent; 100 per loopback address
//      127.0.0.2, .3, ...) are added step by step; at each step 5 fresh /healthz requests from
//      127.0.0.1; the first step at which one takes >= 100 ms (or gets no answer in 5 s).
//   2. /v1/frames throughput (4 clients, kept alive) without and with 1,000 idle connections open.
//   3. soak (only with --soak-minutes): one line per minute.
// Loopback only; every loop is bounded in count and time; the servers are stopped at the end.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench_util.h"
#include "serve_client.h"

namespace deepscan::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

int Connect(const std::string& from, int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in local{}, remote{};
  local.sin_family = remote.sin_family = AF_INET;
  inet_pton(AF_INET, from.c_str(), &local.sin_addr);
  inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr);
  remote.sin_port = htons(static_cast<uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// A `deepscan serve` child process on a free loopback port.
class ServerProcess {
 public:
  ServerProcess(const std::string& binary, const std::vector<std::string>& extra) : port_(FreePort()) {
    std::vector<std::string> argv = {binary, "serve", "--port", std::to_string(port_), "--no-access-log"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    pid_ = fork();
    if (pid_ == 0) {
      const int null = ::open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
      std::vector<char*> args;
      for (std::string& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    HttpClient c(port_, 2);
    std::string body;
    for (auto t = Clock::now(); Since(t) < 60; std::this_thread::sleep_for(std::chrono::milliseconds(200))) {
      HttpClient probe(port_, 2);
      if (probe.Get("/healthz", &body) == 200) {
        ready_ = true;
        break;
      }
    }
  }
  ~ServerProcess() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  bool ready() const { return ready_; }
  int port() const { return port_; }
  long RssMb() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6)) / 1024;
    }
    return -1;
  }
  long OpenFds() const {
    std::error_code ec;
    long n = 0;
    for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid_) + "/fd", ec);
         !ec && it != fs::directory_iterator(); it.increment(ec))
      ++n;
    return n;
  }
  long Threads() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("Threads:", 0) == 0) return std::stol(line.substr(8));
    }
    return -1;
  }

 private:
  int port_;
  pid_t pid_ = -1;
  bool ready_ = false;
};

// The slowest of `n` fresh /healthz requests, in ms (5000 when one got no 200 within 5 s).
double HealthMaxMs(int port, int n) {
  double worst = 0;
  for (int i = 0; i < n; ++i) {
    HttpClient c(port, 5);
    std::string body;
    const auto t = Clock::now();
    const int status = c.Get("/healthz", &body);
    worst = std::max(worst, status == 200 ? Since(t) * 1000 : 5000.0);
  }
  return worst;
}

struct IdleResult {
  int threshold = -1;  // first step with a /healthz >= 100 ms; -1: none up to the last step
  std::vector<std::pair<int, double>> steps;  // idle connections, slowest /healthz ms
  long threads_at_max = 0;
};

IdleResult IdleThreshold(const ServerProcess& server, const std::vector<int>& steps) {
  IdleResult r;
  std::vector<int> fds;
  for (int step : steps) {
    while (static_cast<int>(fds.size()) < step) {
      const int fd = Connect("127.0.0." + std::to_string(2 + fds.size() / 100), server.port());
      if (fd < 0) break;
      fds.push_back(fd);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const double ms = HealthMaxMs(server.port(), 5);
    r.steps.push_back({step, ms});
    if (ms >= 100 && r.threshold < 0) r.threshold = step;
  }
  r.threads_at_max = server.Threads();
  for (int fd : fds) ::close(fd);
  return r;
}

// /v1/frames answers per second with `clients` kept-alive clients for `seconds`.
double FramesRate(int port, const std::string& image, int clients, double seconds, int* errors) {
  std::atomic<int64_t> ok{0}, bad{0};
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&] {
      HttpClient c(port, 30);
      std::string answer;
      while (Since(start) < seconds) {
        (c.Post("/v1/frames", "application/octet-stream", image, &answer) == 200 ? ok : bad)++;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  *errors = static_cast<int>(bad.load());
  return static_cast<double>(ok.load()) / Since(start);
}

double FramesWithIdle(const ServerProcess& server, const std::string& image, int idle, double seconds, int* errors,
                      int* opened) {
  std::vector<int> fds;
  for (int i = 0; i < idle; ++i) {
    const int fd = Connect("127.0.0." + std::to_string(2 + i / 100), server.port());
    if (fd >= 0) fds.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // Held open = not closed by the server (an over-the-limit 503 closes at once).
  *opened = 0;
  for (int fd : fds) {
    char c;
    const ssize_t n = ::recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) ++*opened;
  }
  const double rate = FramesRate(server.port(), image, 4, seconds, errors);
  for (int fd : fds) ::close(fd);
  return rate;
}

void Compare(const std::vector<std::pair<std::string, std::string>>& servers, const std::string& image,
             double seconds) {
  const std::vector<int> steps = {0, 8, 16, 24, 32, 48, 64, 128, 256, 512, 1000};
  std::printf("\n## Idle connections and /healthz (5 fresh requests per step; threshold = first step >= 100 ms)\n\n");
  std::printf("| server | ");
  for (int s : steps) std::printf("%d | ", s);
  std::printf("threshold | threads |\n|---|");
  for (size_t i = 0; i < steps.size() + 2; ++i) std::printf("---:|");
  std::printf("\n");
  struct Rates {
    double unloaded, loaded;
    int err0, err1, opened;
  };
  std::vector<Rates> rates;
  for (const auto& [name, binary] : servers) {
    ServerProcess server(binary, {});
    if (!server.ready()) {
      std::printf("| %s | (did not start) |\n", name.c_str());
      rates.push_back({});
      continue;
    }
    IdleResult r = IdleThreshold(server, steps);
    std::printf("| %s | ", name.c_str());
    for (const auto& [n, ms] : r.steps) std::printf(ms >= 5000 ? "no answer | " : "%.1f | ", ms);
    std::printf("%s | %ld |\n", r.threshold < 0 ? "none" : std::to_string(r.threshold).c_str(), r.threads_at_max);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    Rates x{};
    FramesRate(server.port(), image, 4, 2, &x.err0);  // warm-up
    x.unloaded = FramesRate(server.port(), image, 4, seconds, &x.err0);
    x.loaded = FramesWithIdle(server, image, 1000, seconds, &x.err1, &x.opened);
    rates.push_back(x);
  }
  std::printf("\n## /v1/frames, 4 kept-alive clients, %.0f s each\n\n", seconds);
  std::printf("| server | frames/s unloaded | frames/s with 1,000 idle | ratio | idle held open | errors |\n");
  std::printf("|---|---:|---:|---:|---:|---:|\n");
  for (size_t i = 0; i < servers.size(); ++i) {
    const Rates& x = rates[i];
    std::printf("| %s | %.1f | %.1f | %.2f | %d | %d / %d |\n", servers[i].first.c_str(), x.unloaded, x.loaded,
                x.unloaded > 0 ? x.loaded / x.unloaded : 0.0, x.opened, x.err0, x.err1);
  }
}

void Soak(const std::string& binary, const std::string& image, const std::string& clip, double minutes, int clients,
          std::vector<std::string> server_args) {
  server_args.insert(server_args.begin(), {"--workers", "1", "--max-queued", "64"});
  ServerProcess server(binary, server_args);
  if (!server.ready()) {
    std::printf("the server did not start\n");
    return;
  }
  // Closed-loop clients: a client waiting for a scan sends nothing else, so the scan clients are
  // apart (one in eight), and each kind has its own latencies.
  const int scan_clients = std::max(1, clients / 8);
  std::printf("\n## Soak: %.0f min, %d clients on /v1/frames, %d on /v1/scan?wait=true (the sample clip), one stream "
              "open at 10 fps\n\n",
              minutes, clients - scan_clients, scan_clients);
  std::printf("| minute | frames/s | frames p50 ms | frames p99 ms | scans | scan p50 s | errors | RSS MB | open fds | "
              "threads |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  std::mutex mu;
  std::vector<double> frame_ms, scan_ms;
  int64_t errors = 0;
  std::atomic<bool> stop{false};
  const double total_s = minutes * 60;
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    const bool scan = i < scan_clients;
    threads.emplace_back([&, scan] {
      HttpClient c(server.port(), 300);
      std::string answer;
      while (!stop.load()) {
        const auto t = Clock::now();
        const int status = scan ? c.Post("/v1/scan?wait=true", "video/mp4", clip, &answer)
                                : c.Post("/v1/frames", "application/octet-stream", image, &answer);
        const double ms = Since(t) * 1000;
        std::lock_guard<std::mutex> lock(mu);
        if (status == 200) {
          (scan ? scan_ms : frame_ms).push_back(ms);
        } else {
          ++errors;
          if (status == 503) std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
      }
    });
  }
  StreamRunResult stream;
  std::thread streamer([&] {
    StreamRunOptions o;
    o.port = server.port();
    o.frames = {image};
    o.fps = 10;
    o.warmup_s = 0;
    o.seconds = total_s;
    o.timeout_s = 300;
    stream = RunStream(o);
  });
  const auto start = Clock::now();
  long rss_first = 0, rss_last = 0, fds_first = 0, fds_last = 0;
  for (int minute = 1; minute <= static_cast<int>(minutes + 0.5); ++minute) {
    while (Since(start) < minute * 60.0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::vector<double> frames, scans;
    int64_t e;
    {
      std::lock_guard<std::mutex> lock(mu);
      frames.swap(frame_ms);
      scans.swap(scan_ms);
      e = errors;
      errors = 0;
    }
    rss_last = server.RssMb();
    fds_last = server.OpenFds();
    if (minute == 1) rss_first = rss_last, fds_first = fds_last;
    std::printf("| %d | %.1f | %.1f | %.1f | %zu | %.1f | %lld | %ld | %ld | %ld |\n", minute,
                static_cast<double>(frames.size()) / 60.0, Percentile(frames, 0.5), Percentile(frames, 0.99),
                scans.size(), Percentile(scans, 0.5) / 1000, static_cast<long long>(e), rss_last, fds_last,
                server.Threads());
    std::fflush(stdout);
  }
  stop = true;
  for (std::thread& t : threads) t.join();
  streamer.join();
  std::printf("\nRSS %ld -> %ld MB, open fds %ld -> %ld from the first minute to the last\n", rss_first, rss_last,
              fds_first, fds_last);
  std::printf("stream: %s, %lld frames sent, %lld answered, %lld errors, %lld dropped by the server, p50 %.1f ms, p99 "
              "%.1f ms, close %d%s%s\n",
              stream.ok ? "ok" : "FAILED", static_cast<long long>(stream.sent), static_cast<long long>(stream.answered),
              static_cast<long long>(stream.frame_errors), static_cast<long long>(stream.server_dropped),
              Percentile(stream.latency_ms, 0.5), Percentile(stream.latency_ms, 0.99), stream.close_code,
              stream.error.empty() ? "" : ": ", stream.error.c_str());
}

}  // namespace
}  // namespace deepscan::bench

int main(int argc, char** argv) {
  using namespace deepscan::bench;
  setvbuf(stdout, nullptr, _IOLBF, 0);  // a line at a time: the soak's minutes show as they pass
  CLI::App app{"deepscan serve under hostile load (idle threshold, frames/s with idle connections) and a soak"};
  std::string self = (fs::path(DEEPSCAN_BINARY_DIR) / "deepscan").string();
  std::string compare, image_path, clip_path = std::string(DEEPSCAN_SOURCE_DIR) + "/third_party/sample/sample.mp4";
  double seconds = 8, soak_minutes = 0;
  int clients = 32;
  std::vector<std::string> server_args;
  app.add_option("--server", self, "the deepscan binary under test")->capture_default_str();
  app.add_option("--compare", compare, "another deepscan binary (e.g. the previous build), measured first");
  app.add_option("--image", image_path, "the /v1/frames image (default: a shared-data face photo)");
  app.add_option("--clip", clip_path, "the /v1/scan clip of the soak")->capture_default_str();
  app.add_option("--seconds", seconds, "measured seconds per frames/s figure")->capture_default_str();
  app.add_option("--soak-minutes", soak_minutes, "run the soak for this long (0 = no soak)")->capture_default_str();
  app.add_option("-c,--concurrency", clients, "soak: client threads")->capture_default_str();
  app.add_option("--server-arg", server_args, "soak: one more argument for the server (repeatable), e.g. --server-arg=--keep-jobs --server-arg=16");
  CLI11_PARSE(app, argc, argv);
  signal(SIGPIPE, SIG_IGN);
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);
  if (image_path.empty()) image_path = SharedDataDir() + "/images/blazeface/1face.png";
  const std::string image = ReadAll(image_path);
  if (image.empty()) {
    std::fprintf(stderr, "cannot read the image %s (--image)\n", image_path.c_str());
    return 2;
  }
  std::printf("hostile_bench: %u cores, load %s, image %s (%zu bytes)\n", std::thread::hardware_concurrency(),
              LoadAverage().c_str(), image_path.c_str(), image.size());
  if (soak_minutes > 0) {
    const std::string clip = ReadAll(clip_path);
    if (clip.empty()) {
      std::fprintf(stderr, "cannot read the clip %s (--clip)\n", clip_path.c_str());
      return 2;
    }
    Soak(self, image, clip, soak_minutes, clients, server_args);
    return 0;
  }
  std::vector<std::pair<std::string, std::string>> servers;
  if (!compare.empty()) servers.push_back({"before (" + fs::path(compare).filename().string() + ")", compare});
  servers.push_back({"this build", self});
  Compare(servers, image, seconds);
  return 0;
}
