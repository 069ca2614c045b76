#include "test_env.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace fs = std::filesystem;

namespace deepscan::testing {

std::string SourceDir() {
  // A build tree copied to another machine (scripts/gpu-check.sh) names the checkout it runs in.
  if (const char* env = std::getenv("DEEPSCAN_SOURCE_DIR"); env && *env) return env;
  return DEEPSCAN_SOURCE_DIR;
}

std::string SharedDataDir() {
  if (const char* env = std::getenv("DEEPSCAN_SHARED_DATA"); env && *env) return env;
  fs::path p = fs::path(SourceDir()).parent_path() / "shared" / "data";
  std::error_code ec;
  return fs::is_directory(p, ec) ? p.string() : std::string();
}

std::string DetectorPath() { return SourceDir() + "/third_party/models/face_detection_back_256x256_barracuda.onnx"; }
std::string FrontDetectorPath() {
  return SourceDir() + "/third_party/models/face_detection_front_128x128_barracuda.onnx";
}

std::string TempDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "deepscan";
  fs::path p = fs::temp_directory_path() / ("deepscan-test-" + std::to_string(::getpid())) / name;
  fs::create_directories(p);
  return p.string();
}

std::vector<cv::Mat> RandomCrops(int n, int size, uint64_t seed) {
  cv::RNG rng(seed);
  std::vector<cv::Mat> crops;
  for (int i = 0; i < n; ++i) {
    cv::Mat m(size, size, CV_8UC3);
    rng.fill(m, cv::RNG::UNIFORM, 0, 256);
    crops.push_back(m);
  }
  return crops;
}

cv::Mat NumberedFrame(int number, int width, int height) {
  cv::Mat m(height, width, CV_8UC3, cv::Scalar(128, 128, 128));
  const int bw = width / 4, bh = height / 4;
  for (int bit = 0; bit < 16; ++bit) {
    int r = bit / 4, c = bit % 4;
    cv::Scalar v = (number >> bit) & 1 ? cv::Scalar(255, 255, 255) : cv::Scalar(0, 0, 0);
    m(cv::Rect(c * bw + 2, r * bh + 2, bw - 4, bh - 4)).setTo(v);
  }
  return m;
}

int ReadFrameNumber(const cv::Mat& bgr) {
  if (bgr.empty()) return -1;
  const int bw = bgr.cols / 4, bh = bgr.rows / 4;
  int n = 0;
  for (int bit = 0; bit < 16; ++bit) {
    int r = bit / 4, c = bit % 4;
    cv::Scalar mean = cv::mean(bgr(cv::Rect(c * bw + bw / 4, r * bh + bh / 4, bw / 2, bh / 2)));
    double v = (mean[0] + mean[1] + mean[2]) / 3;
    if (v > 170)
      n |= 1 << bit;
    else if (v > 85)
      return -1;  // neither black nor white: not a numbered frame
  }
  return n;
}

bool WriteNumberedClip(const std::string& path, int frames, double fps, int width, int height,
                       const std::vector<std::string>& output_args) {
  std::string cmd = "ffmpeg -nostdin -loglevel error -y -f rawvideo -pix_fmt bgr24 -s " + std::to_string(width) + "x" +
                    std::to_string(height) + " -r " + std::to_string(fps) + " -i pipe:0";
  for (const auto& a : output_args) cmd += " " + a;
  cmd += " '" + path + "'";
  // ffmpeg reads its frames from our pipe; stdin is the pipe, so -nostdin must not be given.
  cmd.replace(cmd.find("-nostdin "), 9, "");
  FILE* p = popen(cmd.c_str(), "w");
  if (!p) return false;
  for (int i = 0; i < frames; ++i) {
    cv::Mat f = NumberedFrame(i, width, height);
    if (std::fwrite(f.data, 1, f.total() * f.elemSize(), p) != f.total() * f.elemSize()) break;
  }
  int rc = pclose(p);
  return rc == 0 && fs::exists(path);
}

int RunCommand(const std::string& command, std::string* out) {
  FILE* p = popen(command.c_str(), "r");
  if (!p) return -1;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
  int status = pclose(p);
  if (out) *out = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool CopyFile(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  return !ec;
}

}  // namespace deepscan::testing
