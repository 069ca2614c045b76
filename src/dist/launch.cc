#include "dist/launch.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

namespace deepscan::dist {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<int> g_signal{0};
void OnSignal(int sig) { g_signal.store(sig); }

int ExitCodeOf(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 70;
}

std::string Describe(int wait_status) {
  if (WIFSIGNALED(wait_status)) {
    return "was killed by signal " + std::to_string(WTERMSIG(wait_status)) + " (" + strsignal(WTERMSIG(wait_status)) +
           ")";
  }
  return "exited with " + std::to_string(ExitCodeOf(wait_status));
}

// The last `n` lines of a file.
std::string Tail(const std::string& path, size_t n) {
  std::ifstream in(path);
  std::deque<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
    if (lines.size() > n) lines.pop_front();
  }
  std::string out;
  for (const auto& l : lines) out += "  | " + l + "\n";
  return out;
}

}  // namespace

Result<int> FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return Status::Internal(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return Status::Internal(std::string("no free port on 127.0.0.1: ") + std::strerror(errno));
  }
  ::close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

Result<std::vector<std::string>> OwnCommandLine() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  if (!in) return Status::IoError("cannot read /proc/self/cmdline");
  std::vector<std::string> args;
  for (std::string a; std::getline(in, a, '\0');) args.push_back(a);
  if (args.empty()) return Status::IoError("/proc/self/cmdline is empty");
  return args;
}

Result<int> LaunchLocal(const LaunchOptions& o) {
  if (o.nproc < 1) return Status::InvalidArgument("--nproc must be >= 1");
  std::error_code ec;
  std::filesystem::create_directories(o.log_dir, ec);
  if (ec) return Status::IoError("cannot create " + o.log_dir + ": " + ec.message());
  ASSIGN_OR_RETURN(int port, FreePort());
  std::vector<char*> argv;
  for (const auto& a : o.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  struct sigaction sa {
  }, old_int{}, old_term{};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  std::fflush(stdout);
  std::fflush(stderr);

  std::vector<pid_t> pids(o.nproc, -1);
  for (int r = 0; r < o.nproc; ++r) {
    const std::string log = o.log_dir + "/rank-" + std::to_string(r) + ".log";
    const pid_t pid = ::fork();
    if (pid < 0) {
      for (pid_t p : pids) {
        if (p > 0) ::kill(p, SIGKILL);
      }
      return Status::Internal(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      if (r > 0) {
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
          ::dup2(fd, STDOUT_FILENO);
          ::dup2(fd, STDERR_FILENO);
          ::close(fd);
        }
      }
      ::execv(o.program.c_str(), argv.data());
      std::fprintf(stderr, "deepscan: cannot run %s: %s\n", o.program.c_str(), std::strerror(errno));
      ::_exit(127);
    }
    pids[r] = pid;
  }

  int running = o.nproc, first_failed = -1, first_status = 0, forwarded = 0;
  std::vector<int> statuses(o.nproc, 0);
  Clock::time_point failed_at{}, termed_at{};
  bool termed = false, killed = false;
  while (running > 0) {
    int st = 0;
    const pid_t pid = ::waitpid(-1, &st, WNOHANG);
    if (pid > 0) {
      for (int r = 0; r < o.nproc; ++r) {
        if (pids[r] != pid) continue;
        pids[r] = -1;
        statuses[r] = st;
        --running;
        if (ExitCodeOf(st) != 0 && first_failed < 0) {
          first_failed = r;
          first_status = st;
          failed_at = Clock::now();
        }
      }
      continue;
    }
    if (const int sig = g_signal.load(); sig != 0 && sig != forwarded) {
      for (pid_t p : pids) {
        if (p > 0) ::kill(p, sig);
      }
      forwarded = sig;
    }
    if (first_failed >= 0) {
      const auto now = Clock::now();
      if (!termed && now - failed_at > o.grace) {
        for (pid_t p : pids) {
          if (p > 0) ::kill(p, SIGTERM);
        }
        termed = true;
        termed_at = now;
      } else if (termed && !killed && now - termed_at > std::chrono::seconds(5)) {
        for (pid_t p : pids) {
          if (p > 0) ::kill(p, SIGKILL);
        }
        killed = true;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (first_failed < 0) return 0;
  std::ostringstream msg;
  msg << "deepscan: rank " << first_failed << " of " << o.nproc << " " << Describe(first_status);
  for (int r = 0; r < o.nproc; ++r) {
    if (r != first_failed) msg << "; rank " << r << " " << Describe(statuses[r]);
  }
  msg << "\n";
  if (first_failed > 0) {
    const std::string log = o.log_dir + "/rank-" + std::to_string(first_failed) + ".log";
    msg << "rank " << first_failed << "'s last lines (" << log << "):\n" << Tail(log, 8);
  }
  std::cerr << msg.str();
  return ExitCodeOf(first_status);
}

}  // namespace deepscan::dist
