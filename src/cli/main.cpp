// attnmap: where a vision-language model looks. The CLI parses, calls the library, maps errors to
// exit codes (docs/design.md lists them).
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdlib>
#include <iostream>

#include "io/atomic_file.hpp"
#include "attnmap/error.hpp"
#include "log/log.hpp"
#include "cli/batch_command.hpp"
#include "cli/compare_command.hpp"
#include "cli/info_command.hpp"
#include "cli/run_command.hpp"
#include "cli/tokenize_command.hpp"

namespace {

void configure_logging(int verbosity, bool quiet) {
  namespace log = attnmap::log;
  if (const char* env = std::getenv("ATTNMAP_LOG_LEVEL")) log::set_level(std::string(env));
  if (verbosity > 0) log::set_level(log::Level::Debug);
  if (quiet) log::set_level(log::Level::Warn);
}

}  // namespace

int main(int argc, char** argv) {
  // Ctrl-C and SIGTERM (what Slurm and Kubernetes send before a kill) end at once, without stray
  // temporary files; complete outputs stay, and `batch --resume` continues from them.
  const auto stop = [](int signal) {
    attnmap::remove_pending_temporary_files();
    std::_Exit(128 + signal);
  };
  std::signal(SIGINT, stop);
  std::signal(SIGTERM, stop);
  CLI::App app{"attnmap " ATTNMAP_VERSION ": per-layer heatmaps of where a vision-language model looks"};
  app.set_version_flag("--version", std::string("attnmap ") + ATTNMAP_VERSION);
  app.require_subcommand(1);
  int verbosity = 0;
  bool quiet = false;
  app.add_flag("-v,--verbose", verbosity, "more log lines on stderr (or ATTNMAP_LOG_LEVEL=debug)");
  app.add_flag("-q,--quiet", quiet, "only warnings and errors on stderr");
  app.parse_complete_callback([&] { configure_logging(verbosity, quiet); });

  int exit_code = 0;
  attnmap::cli::add_run_command(app, exit_code);
  attnmap::cli::add_batch_command(app, exit_code);
  attnmap::cli::add_info_command(app, exit_code);
  attnmap::cli::add_compare_command(app, exit_code);
  attnmap::cli::add_tokenize_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::cerr << "attnmap: error: " << e.what() << " (see attnmap --help)\n";
    return static_cast<int>(attnmap::ErrorKind::Usage);
  }
  return exit_code;
}
