// Network sources: a clip served over HTTP on loopback decodes like the file, and a server that
// accepts the connection but never answers cannot hang a scan past its time budget.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "test_env.h"
#include "video/source.h"

namespace deepscan::video {
namespace {

// A child process (python3) that prints its port on its first line; killed on destruction.
class ServerProcess {
 public:
  explicit ServerProcess(const std::string& script) {
    int out[2];
    if (pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      execlp("python3", "python3", "-c", script.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    FILE* f = fdopen(out[0], "r");
    if (f && std::fscanf(f, "%d", &port_) != 1) port_ = -1;
    if (f) std::fclose(f);
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = -1;
};

TEST(UrlSourceTest, HttpClipDecodesLikeTheFile) {
  std::string dir = deepscan::testing::TempDir();
  ASSERT_TRUE(deepscan::testing::WriteNumberedClip(dir + "/clip.mp4", 50, 25, 320, 240,
                                                   {"-c:v", "libx264", "-preset", "ultrafast", "-qp", "0"}));
  // A minimal HTTP file server on an ephemeral port, serving `dir`.
  std::string script =
      "import http.server, functools, sys\n"
      "http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None\n"
      "h = functools.partial(http.server.SimpleHTTPRequestHandler, directory='" +
      dir +
      "')\n"
      "s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), h)\n"
      "print(s.server_address[1], flush=True)\n"
      "s.serve_forever()\n";
  ServerProcess server(script);
  ASSERT_GT(server.port(), 0);
  SourceOptions so;
  so.timeout_s = 30;
  auto src = Source::Open("http://127.0.0.1:" + std::to_string(server.port()) + "/clip.mp4", so);
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  EXPECT_EQ((*src)->info().width, 320);
  int n = 0;
  FrameRef f;
  while (true) {
    auto got = (*src)->Next(&f);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    if (!*got) break;
    ++n;
  }
  EXPECT_EQ(n, 50);
  // A missing path on a live server is an error, not a hang.
  auto missing = Source::Open("http://127.0.0.1:" + std::to_string(server.port()) + "/nope.mp4", so);
  EXPECT_EQ(missing.status().code(), Code::kNotFound) << missing.status().ToString();
}

TEST(UrlSourceTest, SilentServerTimesOut) {
  ServerProcess server(
      "import socket, time\n"
      "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(4)\n"
      "print(s.getsockname()[1], flush=True)\n"
      "conns = [s.accept() for _ in range(4)]\n"
      "time.sleep(60)\n");
  ASSERT_GT(server.port(), 0);
  SourceOptions so;
  so.timeout_s = 1.5;
  auto t0 = std::chrono::steady_clock::now();
  auto src = Source::Open("http://127.0.0.1:" + std::to_string(server.port()) + "/clip.mp4", so);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(src.ok());
  EXPECT_EQ(src.status().code(), Code::kTimeout) << src.status().ToString();
  EXPECT_LT(took, 10.0);
}

}  // namespace
}  // namespace deepscan::video
