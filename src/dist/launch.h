// dist::LaunchLocal: `deepscan train --nproc N`, torchrun's job on one machine.
//
// In:  the command line to run N times, a log folder.
// Out: N processes of that command, ranks 0..N-1 of one group, each given torchrun's variables:
//      RANK, LOCAL_RANK, WORLD_SIZE = LOCAL_WORLD_SIZE = N, MASTER_ADDR = 127.0.0.1 and a free
//      MASTER_PORT (dist::OptionsFromEnv reads them). Rank 0 writes to this terminal; rank r > 0 to
//      <log_dir>/rank-<r>.log. Returns once every rank has ended: 0 when all exited 0, else the
//      exit code of the first rank that failed (128 + signal for a rank killed by a signal).
// Failure: when one rank fails, the others normally stop within seconds on their own (their
//      collectives fail, dist/group.h); any still running after `grace` get SIGTERM, and SIGKILL 5 s
//      later, so the launcher never hangs on a dead group. SIGINT / SIGTERM sent to the launcher are
//      passed on to every rank. A failed rank > 0's last log lines are printed on stderr.
// Errors: kInvalidArgument (nproc < 1), kIoError (log folder), kInternal (fork failed).
#ifndef DEEPSCAN_DIST_LAUNCH_H_
#define DEEPSCAN_DIST_LAUNCH_H_

#include <chrono>
#include <string>
#include <vector>

#include "deepscan/status.h"

namespace deepscan::dist {

struct LaunchOptions {
  int nproc = 1;
  std::string program;            // executable (e.g. /proc/self/exe)
  std::vector<std::string> argv;  // its arguments, argv[0] included
  std::string log_dir;            // rank-<r>.log for r > 0
  std::chrono::seconds grace{30};
};

Result<int> LaunchLocal(const LaunchOptions& options);

// A TCP port free on 127.0.0.1 now (the kernel's pick), for MASTER_PORT. Errors: kInternal.
Result<int> FreePort();

// This process's command line (/proc/self/cmdline), argv[0] included. Errors: kIoError.
Result<std::vector<std::string>> OwnCommandLine();

}  // namespace deepscan::dist

#endif  // DEEPSCAN_DIST_LAUNCH_H_
