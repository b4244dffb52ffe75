#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/tokenize_command.hpp"

int main(int argc, char** argv) {
  CLI::App app{"attnmap: attention heatmaps for Qwen2.5-VL"};
  app.set_version_flag("--version", std::string("attnmap ") + ATTNMAP_VERSION);
  app.require_subcommand(1);
  int exit_code = 0;
  attnmap::cli::add_tokenize_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return exit_code;
}
