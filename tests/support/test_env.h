// Test support: paths to the data the tests read, and clips generated on the fly.
#ifndef DEEPSCAN_TESTS_SUPPORT_TEST_ENV_H_
#define DEEPSCAN_TESTS_SUPPORT_TEST_ENV_H_

#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace deepscan::testing {

// The repository root: $DEEPSCAN_SOURCE_DIR when set, else the one compiled in.
std::string SourceDir();
// ../shared/data beside the repository, or $DEEPSCAN_SHARED_DATA; empty when absent.
std::string SharedDataDir();
// BlazeFace back-256 model from scripts/setup.sh.
std::string DetectorPath();
std::string FrontDetectorPath();
// A fresh temporary directory for this test (removed at exit only when the test passes).
std::string TempDir();

// Frames whose pixels encode their own number: a 4x4 grid of black/white blocks, 16 bits.
cv::Mat NumberedFrame(int number, int width, int height);

// `n` square BGR crops of side `size`, each pixel uniform in 0..255 (cv::RNG seeded with `seed`).
std::vector<cv::Mat> RandomCrops(int n, int size, uint64_t seed);
// Reads the number back from a decoded (possibly rotated back upright) frame; -1 if unreadable.
int ReadFrameNumber(const cv::Mat& bgr);

// Encodes `frames` numbered frames with the ffmpeg CLI into `path`. `output_args` go before the
// output path (codec, GOP, rotation metadata, timestamps...). Returns false when ffmpeg failed.
bool WriteNumberedClip(const std::string& path, int frames, double fps, int width, int height,
                       const std::vector<std::string>& output_args);

// Runs a shell command; returns its exit status, captures stdout into *out when given.
int RunCommand(const std::string& command, std::string* out = nullptr);

// Copies a file (for building corrupt variants).
bool CopyFile(const std::string& from, const std::string& to);

}  // namespace deepscan::testing

#endif  // DEEPSCAN_TESTS_SUPPORT_TEST_ENV_H_
