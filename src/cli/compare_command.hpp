// `attnmap compare`: registered on the top-level CLI11 app by main.cpp.
#pragma once

#include <CLI/CLI.hpp>

namespace attnmap::cli {

// Adds the `compare` subcommand. Its callback runs the comparison, prints the summary on stdout,
// writes the report / diff images, and sets exit_code: 0 all within tolerance, 1 any outside,
// 2 usage or input error (one line "attnmap: error: ..." on stderr), 70 internal error.
void add_compare_command(CLI::App& app, int& exit_code);

}  // namespace attnmap::cli
