// The one argument table of the deepscan tool: every subcommand that scans (scan, and later
// serve and bench) registers its flags through AddScanFlags, so a flag means the same everywhere.
#ifndef DEEPSCAN_TOOLS_FLAGS_H_
#define DEEPSCAN_TOOLS_FLAGS_H_

#include <string>

#include <CLI/CLI.hpp>

#include "deepscan/options.h"

namespace deepscan::tools {

// Where bundled files live: $DEEPSCAN_HOME, else the source tree this binary was built from.
std::string HomeDir();
// The default face detector and classifier paths (see docs/models.md for the search order).
std::string DefaultDetectorPath();
std::string DefaultModelPath();

// Registers the scan flags on `app`, writing into `options`.
void AddScanFlags(CLI::App* app, ScanOptions* options);

}  // namespace deepscan::tools

#endif  // DEEPSCAN_TOOLS_FLAGS_H_
