// attnmap: where a vision-language model looks. The CLI parses, calls the library, maps errors to exit codes.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>

#include "cli/batch_command.hpp"
#include "cli/info_command.hpp"
#include "cli/run_command.hpp"

namespace {

void configure_logging(int verbosity, bool quiet) {
  spdlog::set_default_logger(spdlog::stderr_color_st("attnmap"));
  spdlog::set_pattern("attnmap: %^%l%$: %v");
  spdlog::level::level_enum level = spdlog::level::info;
  if (const char* env = std::getenv("ATTNMAP_LOG_LEVEL")) level = spdlog::level::from_str(env);
  if (verbosity > 0) level = spdlog::level::debug;
  if (quiet) level = spdlog::level::warn;
  spdlog::set_level(level);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGINT, [](int) { std::_Exit(130); });
  CLI::App app{"attnmap: per-layer heatmaps of where a vision-language model looks"};
  app.set_version_flag("--version", std::string("attnmap ") + ATTNMAP_VERSION);
  app.require_subcommand(1);
  int verbosity = 0;
  bool quiet = false;
  app.add_flag("-v,--verbose", verbosity, "more log lines on stderr (or ATTNMAP_LOG_LEVEL=debug)");
  app.add_flag("-q,--quiet", quiet, "only warnings and errors on stderr");
  app.parse_complete_callback([&] { configure_logging(verbosity, quiet); });

  int exit_code = 0;
  attnmap::cli::add_run_command(app, exit_code);
  attnmap::cli::add_info_command(app, exit_code);
  attnmap::cli::add_batch_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return exit_code;
}
