// `deepscan serve` as a child process: SIGTERM drains accepted jobs and exits 0, the access log
// is one JSON line per request, API keys come from a file, and start-up errors exit with their
// documented codes.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "http_client.h"
#include "serve_fixture.h"

extern char** environ;

namespace deepscan::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string Binary() { return std::string(DEEPSCAN_BINARY_DIR) + "/deepscan"; }

// A child `deepscan serve`, its stderr in a file.
class ServeProcess {
 public:
  explicit ServeProcess(std::vector<std::string> extra) {
    log_ = TempDir() + "/serve-" + std::to_string(counter_++) + ".log";
    std::vector<std::string> args = {Binary(), "serve", "--no-tuned", "--threads", "2", "--upload-dir", TempDir()};
    // Defaults for what `extra` does not set (a flag given twice is a usage error).
    auto set = [&](const std::string& flag) { return std::find(extra.begin(), extra.end(), flag) != extra.end(); };
    for (const auto& [flag, value] :
         std::vector<std::pair<std::string, std::string>>{{"--port", "0"},
                                                          {"--detector", DetectorPath()},
                                                          {"--refind-detector", FrontDetectorPath()},
                                                          {"--model", SourceDir() + "/models/default.onnx"}}) {
      if (!set(flag)) args.insert(args.end(), {flag, value});
    }
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~ServeProcess() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // The port from the "listening" log line; 0 when the process ended or 60 s passed first.
  int WaitForPort() {
    for (const auto start = Clock::now(); Since(start) < 60;) {
      for (const json& line : LogLines()) {
        if (line.value("event", "") == "listening") return line["port"];
      }
      if (Exited(0)) return 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return 0;
  }

  // Waits up to `timeout_s` for the process to end; true when it did (exit_code() is then set).
  bool Exited(double timeout_s) {
    if (exited_) return true;
    for (const auto start = Clock::now();;) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return true;
      }
      if (Since(start) >= timeout_s) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  std::string Log() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // The log's JSON lines (other lines skipped).
  std::vector<json> LogLines() const {
    std::vector<json> out;
    std::istringstream in(Log());
    for (std::string line; std::getline(in, line);) {
      json j = json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.is_object()) out.push_back(j);
    }
    return out;
  }

  pid_t pid() const { return pid_; }
  int exit_code() const { return exit_code_; }

 private:
  static inline int counter_ = 0;
  std::string log_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
};

TEST(ServeCliTest, SigtermFinishesAcceptedJobsAndExitsZero) {
  DEEPSCAN_REQUIRE_MODELS();
  ServeProcess p({"--workers", "1", "--drain-timeout", "60"});
  const int port = p.WaitForPort();
  ASSERT_GT(port, 0) << p.Log();
  const std::string clip = ReadFileBytes(SampleClip());
  const Headers video = {{"Content-Type", "video/mp4"}};

  std::optional<HttpResponse> inline_answer;
  std::thread waiting([&] { inline_answer = Fetch(port, "POST", "/v1/scan?name=held.mp4", clip, video); });
  for (const auto start = Clock::now(); Since(start) < 10;) {
    auto r = Fetch(port, "GET", "/readyz");
    if (r && json::parse(r->body).value("running", 0) == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto queued = Fetch(port, "POST", "/v1/scan?wait=false", clip, video);
  ASSERT_TRUE(queued);
  ASSERT_EQ(queued->status, 202);

  ASSERT_EQ(kill(p.pid(), SIGTERM), 0);
  waiting.join();
  ASSERT_TRUE(inline_answer.has_value());
  EXPECT_EQ(inline_answer->status, 200);
  EXPECT_EQ(json::parse(inline_answer->body)["videos"][0]["path"], "held.mp4");
  ASSERT_TRUE(p.Exited(60)) << p.Log();
  EXPECT_EQ(p.exit_code(), 0) << p.Log();

  // The log: the drain, and one JSON line per request with the documented fields.
  bool drained = false, saw_draining = false;
  int requests = 0;
  for (const json& line : p.LogLines()) {
    const std::string event = line.value("event", "");
    if (event == "draining") {
      saw_draining = true;
      EXPECT_GE(line["queued"].get<int>() + line["running"].get<int>(), 1) << line;
    }
    if (event == "stopped") drained = line["drained"].get<bool>() && line["running"] == 0 && line["queued"] == 0;
    if (line.contains("method")) {
      ++requests;
      for (const char* key : {"ts", "method", "path", "status", "bytes", "ms", "remote"}) {
        EXPECT_TRUE(line.contains(key)) << key << " missing in " << line;
      }
    }
  }
  EXPECT_TRUE(saw_draining) << p.Log();
  EXPECT_TRUE(drained) << p.Log();
  EXPECT_GE(requests, 3);
  EXPECT_EQ(HttpConnection::Open(port), nullptr);
}

TEST(ServeCliTest, ApiKeyFile) {
  DEEPSCAN_REQUIRE_MODELS();
  const std::string keys = TempDir() + "/keys.txt";
  std::ofstream(keys) << "# service keys\n  alpha-key  \n\nbeta-key\n";
  ServeProcess p({"--api-key-file", keys, "--api-key", "gamma-key"});
  const int port = p.WaitForPort();
  ASSERT_GT(port, 0) << p.Log();
  EXPECT_EQ(Fetch(port, "GET", "/metrics")->status, 401);
  EXPECT_EQ(Fetch(port, "GET", "/metrics", "", {{"X-API-Key", "# service keys"}})->status, 401);
  for (const char* k : {"alpha-key", "beta-key", "gamma-key"}) {
    EXPECT_EQ(Fetch(port, "GET", "/metrics", "", {{"Authorization", std::string("Bearer ") + k}})->status, 200) << k;
  }
  ASSERT_EQ(kill(p.pid(), SIGINT), 0);
  ASSERT_TRUE(p.Exited(30));
  EXPECT_EQ(p.exit_code(), 0);
}

TEST(ServeCliTest, StartupErrorsExitWithTheirCodes) {
  DEEPSCAN_REQUIRE_MODELS();
  {
    ServeProcess p({"--api-key-file", "/no/such/keys"});
    ASSERT_TRUE(p.Exited(30));
    EXPECT_EQ(p.exit_code(), 2) << p.Log();
  }
  {
    ServeProcess p({"--port", "70000"});
    ASSERT_TRUE(p.Exited(30));
    EXPECT_EQ(p.exit_code(), 2) << p.Log();
  }
  {
    ServeProcess p({"--model", "/no/such/model.onnx"});
    ASSERT_TRUE(p.Exited(30));
    EXPECT_EQ(p.exit_code(), 20) << p.Log();
  }
  {
    ServeProcess first({});
    const int port = first.WaitForPort();
    ASSERT_GT(port, 0);
    ServeProcess second({"--port", std::to_string(port)});
    ASSERT_TRUE(second.Exited(30));
    EXPECT_EQ(second.exit_code(), 22) << second.Log();  // io_error: address in use
    EXPECT_NE(second.Log().find("cannot listen"), std::string::npos) << second.Log();
    kill(first.pid(), SIGTERM);
    ASSERT_TRUE(first.Exited(30));
    EXPECT_EQ(first.exit_code(), 0);
  }
  {  // --queue with nothing listening: exit 23, as `deepscan worker`, and fast
    ServeProcess p({"--queue", "redis://127.0.0.1:1/0", "--blob-dir", TempDir() + "/blobs"});
    ASSERT_TRUE(p.Exited(30));
    EXPECT_EQ(p.exit_code(), 23) << p.Log();
    EXPECT_NE(p.Log().find("cannot reach redis at 127.0.0.1:1"), std::string::npos) << p.Log();
  }
  {  // the retired folder store: a usage error that names the way forward
    ServeProcess p({"--job-dir", TempDir() + "/jobs"});
    ASSERT_TRUE(p.Exited(30));
    EXPECT_EQ(p.exit_code(), 2) << p.Log();
    EXPECT_NE(p.Log().find("--queue redis://"), std::string::npos) << p.Log();
  }
  {
    ServeProcess p({"--workers", "0"});
    ASSERT_TRUE(p.Exited(30));
    EXPECT_EQ(p.exit_code(), 2) << p.Log();
  }
}

}  // namespace
}  // namespace deepscan::testing
