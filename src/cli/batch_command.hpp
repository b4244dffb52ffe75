#pragma once

#include <CLI/CLI.hpp>

namespace attnmap::cli {
void add_batch_command(CLI::App& app, int& exit_code);
}
