// `attnmap tokenize`: prints the token ids of a text as JSON, using a tokenizer.json or the one
// embedded in an exported model.
#pragma once

#include <CLI/CLI.hpp>

namespace attnmap::cli {

// Registers the subcommand on `app`. Its callback runs the command and stores the process exit
// code in `exit_code` (0, or the ErrorKind code of an attnmap::Error, reported on stderr).
CLI::App* add_tokenize_command(CLI::App& app, int& exit_code);

}  // namespace attnmap::cli
