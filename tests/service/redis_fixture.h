// Service-test support: a real redis-server of this test's own, on a free loopback port, with no
// persistence, stopped (SIGKILL) with the object. Tests skip when Debian's redis-server is missing.
//
//   RedisServer redis;  if (!redis.Start()) GTEST_SKIP() << redis.why();
//   so.jobs.queue_url = redis.url();
#ifndef DEEPSCAN_TESTS_SERVICE_REDIS_FIXTURE_H_
#define DEEPSCAN_TESTS_SERVICE_REDIS_FIXTURE_H_

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "queue/work_queue.h"

namespace deepscan::testing {

class RedisServer {
 public:
  RedisServer() = default;
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;
  ~RedisServer() { Stop(); }

  // Starts redis-server (on the same port again after a Stop) and waits until it answers.
  bool Start() {
    if (port_ == 0) port_ = FreePort();
    const std::string port = std::to_string(port_);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execlp("redis-server", "redis-server", "--bind", "127.0.0.1", "--port", port.c_str(), "--save", "",
               "--appendonly", "no", "--protected-mode", "yes", "--loglevel", "warning", "--logfile", "/dev/null",
               static_cast<char*>(nullptr));
      ::_exit(127);
    }
    if (pid_ < 0) return Fail("fork failed");
    for (int i = 0; i < 200; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return Fail("redis-server did not start (apt-get install redis-server)");
      }
      queue::QueueOptions q;
      q.url = url();
      q.connect_timeout_s = 0.2;
      if (queue::WorkQueue::Open(q).ok()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return Fail("redis-server did not answer within 5 s");
  }
  // Kills it (its data goes with it: no persistence).
  void Stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
  }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }
  const std::string& why() const { return why_; }

 private:
  static int FreePort() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port = ntohs(a.sin_port);
    }
    ::close(fd);
    return port;
  }
  bool Fail(std::string why) {
    why_ = std::move(why);
    return false;
  }

  int port_ = 0;
  pid_t pid_ = -1;
  std::string why_;
};

}  // namespace deepscan::testing

#endif  // DEEPSCAN_TESTS_SERVICE_REDIS_FIXTURE_H_
