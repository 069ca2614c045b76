// report::ProgressBar: one line on stderr with a bar, counts and ETA for multi-video scans.
// Draws only when stderr is a terminal (and not disabled); otherwise every call is a no-op.
// Threading: one thread.
#ifndef DEEPSCAN_REPORT_PROGRESS_H_
#define DEEPSCAN_REPORT_PROGRESS_H_

#include <chrono>
#include <string>

namespace deepscan::report {

class ProgressBar {
 public:
  ProgressBar(int total, bool enabled);
  ~ProgressBar();
  // `done` whole videos finished, `fraction` of the current one; `label` names it.
  void Update(int done, double fraction, const std::string& label);
  // Clears the line (call before printing the report).
  void Finish();
  // Formats seconds as "1:02:03" or "2:03".
  static std::string FormatDuration(double seconds);

 private:
  int total_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace deepscan::report

#endif  // DEEPSCAN_REPORT_PROGRESS_H_
