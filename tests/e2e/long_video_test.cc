// Long videos scan in bounded memory: the peak resident set of `deepscan scan` on a 20-minute
// clip stays within a few MiB of that on a 1-minute clip of the same kind, for the 32-frame
// protocol and for one frame per second (600 frames kept). Runs the real CLI under
// /usr/bin/time. Slow: generates ~16,500 frames with the ffmpeg CLI.
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "test_env.h"

namespace {

using deepscan::testing::RunCommand;
using deepscan::testing::TempDir;

std::string Cli() { return std::string(DEEPSCAN_BINARY_DIR) + "/deepscan"; }

bool Generate(const std::string& path, int seconds) {
  // A moving test pattern with a face-sized blob; 320x240 keeps generation fast. GOP 250.
  std::string cmd = "ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc2=size=320x240:rate=25:duration=" +
                    std::to_string(seconds) + " -c:v libx264 -preset ultrafast -g 250 -pix_fmt yuv420p " + path +
                    " </dev/null >/dev/null 2>&1";
  return RunCommand(cmd) == 0;
}

// Peak RSS in KiB of one scan, or -1.
long PeakRssKb(const std::string& video, const std::string& extra) {
  std::string out;
  std::string cmd = "/usr/bin/time -f 'RSS %M' " + Cli() + " scan --no-progress -f json " + extra + " " + video +
                    " 2>&1 >/dev/null | grep '^RSS '";
  if (RunCommand(cmd, &out) != 0) return -1;
  long kb = -1;
  std::sscanf(out.c_str(), "RSS %ld", &kb);
  return kb;
}

TEST(LongVideoTest, PeakMemoryDoesNotGrowWithDuration) {
  if (RunCommand("test -x /usr/bin/time && command -v ffmpeg >/dev/null") != 0) GTEST_SKIP() << "needs time and ffmpeg";
  std::string dir = TempDir();
  ASSERT_TRUE(Generate(dir + "/short.mp4", 60));
  ASSERT_TRUE(Generate(dir + "/long.mp4", 600));
  for (const std::string& extra : {std::string(""), std::string("-n 600")}) {
    long short_kb = PeakRssKb(dir + "/short.mp4", extra);
    long long_kb = PeakRssKb(dir + "/long.mp4", extra);
    ASSERT_GT(short_kb, 0);
    ASSERT_GT(long_kb, 0);
    std::printf("peak RSS %s: 1 min %.1f MiB, 10 min %.1f MiB\n", extra.empty() ? "(32 frames)" : extra.c_str(),
                short_kb / 1024.0, long_kb / 1024.0);
    // 10x the frames decoded; the report of 600 kept frames is a few hundred KiB of JSON.
    EXPECT_LT(long_kb - short_kb, 16 * 1024) << extra;
  }
}

}  // namespace
