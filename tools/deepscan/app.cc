#include "app.h"

#include <iostream>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "deepscan/version.h"

namespace deepscan::tools {

int ReportFailure(const Status& status) {
  std::cerr << "deepscan: " << status.ToString() << "\n";
  return ExitCodeFor(status.code());
}

int RunApp(int argc, char** argv, const char* description, const std::vector<AddCommandFn>& commands,
           void (*extra)(CLI::App*)) {
  CLI::App app{description};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("deepscan ") + kVersion);
  int verbosity = 0;
  bool quiet = false;
  app.add_flag("-v,--verbose", verbosity, "more log output (repeat for debug)");
  app.add_flag("-q,--quiet", quiet, "errors only on stderr");
  std::vector<RunFn> runs;
  runs.reserve(commands.size());
  for (AddCommandFn add : commands) runs.push_back(add(&app));
  if (extra) extra(&app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  // Logs go to stderr: stdout carries only the report (JSON/CSV must stay parseable).
  spdlog::set_default_logger(spdlog::stderr_color_mt("deepscan"));
  spdlog::set_pattern("deepscan: %l: %v");
  spdlog::set_level(quiet            ? spdlog::level::err
                    : verbosity >= 2 ? spdlog::level::debug
                    : verbosity == 1 ? spdlog::level::info
                                     : spdlog::level::warn);
  for (const auto& run : runs) {
    int rc = run();
    if (rc >= 0) return rc;
  }
  return 2;
}

}  // namespace deepscan::tools
