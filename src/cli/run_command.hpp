#pragma once

#include <CLI/CLI.hpp>

namespace attnmap::cli {
void add_run_command(CLI::App& app, int& exit_code);
}
