// deepscan: one binary, subcommands. Thin: argument parsing and dispatch; each subcommand lives
// in its own <name>_command.cc and the work in the library. Exit codes: docs/exit-codes.md.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "commands.h"
#include "deepscan/version.h"

int main(int argc, char** argv) {
  CLI::App app{"deepscan: find manipulated faces in videos"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("deepscan ") + deepscan::kVersion);
  int verbosity = 0;
  bool quiet = false;
  app.add_flag("-v,--verbose", verbosity, "more log output (repeat for debug)");
  app.add_flag("-q,--quiet", quiet, "errors only on stderr");

  const std::vector<deepscan::tools::RunFn> commands = {
      deepscan::tools::AddScanCommand(&app),
      deepscan::tools::AddExtractCommand(&app),
      deepscan::tools::AddTrainCommand(&app),
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  spdlog::set_pattern("deepscan: %l: %v");
  spdlog::set_level(quiet            ? spdlog::level::err
                    : verbosity >= 2 ? spdlog::level::debug
                    : verbosity == 1 ? spdlog::level::info
                                     : spdlog::level::warn);
  for (const auto& run : commands) {
    int rc = run();
    if (rc >= 0) return rc;
  }
  return 2;
}
