// SHA-256 of a file, recorded in attention.json so a run names exactly which model made it.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace attnmap {

std::string sha256_hex(std::string_view bytes);
// Streams the file; throws Error(Input) naming it when it cannot be read.
std::string sha256_file_hex(const std::filesystem::path& path);

// sha256_file_hex, remembered per (path, size, mtime, inode) in a cache folder so that a 15 GB model
// is hashed once, not on every `attnmap run` (~1 minute at 250 MB/s). The folder is
// $ATTNMAP_CACHE_DIR, else $XDG_CACHE_HOME/attnmap, else ~/.cache/attnmap; a cache that cannot be
// read or written is skipped silently.
std::string sha256_file_hex_cached(const std::filesystem::path& path);

}  // namespace attnmap
