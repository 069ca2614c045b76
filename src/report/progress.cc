#include "report/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace deepscan::report {

ProgressBar::ProgressBar(int total, bool enabled)
    : total_(total), enabled_(enabled && isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() { Finish(); }

std::string ProgressBar::FormatDuration(double s) {
  long t = std::max(0L, std::lround(s));
  char buf[32];
  if (t >= 3600) {
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  }
  return buf;
}

void ProgressBar::Update(int done, double fraction, const std::string& label) {
  if (!enabled_ || total_ <= 0) return;
  auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100) && done < total_) return;
  last_draw_ = now;
  double progress = std::clamp((done + std::clamp(fraction, 0.0, 1.0)) / total_, 0.0, 1.0);
  double elapsed = std::chrono::duration<double>(now - start_).count();
  std::string eta = progress > 0.001 ? FormatDuration(elapsed * (1 - progress) / progress) : "?";
  constexpr int kWidth = 30;
  int filled = static_cast<int>(progress * kWidth);
  std::string bar(filled, '=');
  if (filled < kWidth) bar += '>' + std::string(kWidth - filled - 1, ' ');
  std::string name = label.size() > 40 ? "..." + label.substr(label.size() - 37) : label;
  std::fprintf(stderr, "\r\033[2K[%s] %d/%d  %3.0f%%  ETA %s  %s", bar.c_str(), done, total_, progress * 100,
               eta.c_str(), name.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::Finish() {
  if (enabled_ && drawn_) {
    std::fprintf(stderr, "\r\033[2K");
    std::fflush(stderr);
  }
  drawn_ = false;
}

}  // namespace deepscan::report
