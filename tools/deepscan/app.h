// The shared frame of the deepscan binaries: global flags (-v, -q, --version), logging to
// stderr, parsing, and dispatch to the registered subcommands.
#ifndef DEEPSCAN_TOOLS_APP_H_
#define DEEPSCAN_TOOLS_APP_H_

#include <vector>

#include "commands.h"

namespace deepscan::tools {

using AddCommandFn = RunFn (*)(CLI::App*);

// Parses argv with `commands` registered on one CLI11 app and runs the chosen one.
// `extra` is called after registration (e.g. to list subcommands served by another binary).
// Returns the process exit code (2 on usage errors).
int RunApp(int argc, char** argv, const char* description, const std::vector<AddCommandFn>& commands,
           void (*extra)(CLI::App*) = nullptr);

}  // namespace deepscan::tools

#endif  // DEEPSCAN_TOOLS_APP_H_
