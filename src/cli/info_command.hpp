#pragma once

#include <CLI/CLI.hpp>

namespace attnmap::cli {
void add_info_command(CLI::App& app, int& exit_code);
}
