// Minimal CLI11 entry point so `attnmap compare` can be exercised; the lead's main.cpp registers
// the other subcommands the same way.
#include <CLI/CLI.hpp>

#include <iostream>

#include "attnmap/error.hpp"
#include "compare_command.hpp"

int main(int argc, char** argv) {
  CLI::App app{"attnmap " ATTNMAP_VERSION ": attention heatmaps for Qwen2.5-VL"};
  app.require_subcommand(1);
  int exit_code = 0;
  attnmap::cli::add_compare_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << "attnmap: error: " << e.what() << " (see attnmap --help)\n";
    return static_cast<int>(attnmap::ErrorKind::Usage);
  } catch (const attnmap::Error& e) {
    std::cerr << "attnmap: error: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "attnmap: internal error: " << e.what() << " (please report it)\n";
    return static_cast<int>(attnmap::ErrorKind::Internal);
  }
  return exit_code;
}
