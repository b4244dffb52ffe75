// SHA-256 of a file, recorded in attention.json so a run names exactly which model made it.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace attnmap {

std::string sha256_hex(std::string_view bytes);
// Streams the file; throws Error(Input) naming it when it cannot be read.
std::string sha256_file_hex(const std::filesystem::path& path);

}  // namespace attnmap
