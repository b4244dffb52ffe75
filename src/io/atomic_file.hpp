// Writing outputs so that a reader never sees a half-written file: write to a temporary
// sibling, then rename over the destination (atomic on POSIX file systems).
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace attnmap {

// Calls write(tmp_path) and renames tmp_path to path. On any failure the temporary file is
// removed and an Error(Output) naming `path` is thrown.
void write_atomically(const std::filesystem::path& path,
                      const std::function<void(const std::filesystem::path& tmp_path)>& write);

// Writes bytes to path atomically.
void write_file_atomically(const std::filesystem::path& path, std::string_view bytes);

// Deletes the temporary files of writes still in progress. Async-signal-safe: the CLI calls it
// from its SIGINT handler so that Ctrl-C leaves no stray temporary file behind.
void remove_pending_temporary_files() noexcept;

// Removes, in dir and its sub-folders (one level: a batch's --out and its item folders), the
// temporary files that writers which no longer run left behind (a SIGKILL, a crash, a power cut).
// A temporary of a live process, or of another host, is kept: a concurrent job may be writing it.
// Returns how many were removed.
size_t remove_stale_temporary_files(const std::filesystem::path& dir);
// The same for `dir` alone, not its sub-folders (batch sweeps --out and only its own items' folders,
// so N shards over one --out each list their own share).
size_t remove_stale_temporary_files_in(const std::filesystem::path& dir);

// Creates the folder (and parents) or throws Error(Output) naming it.
void ensure_directory(const std::filesystem::path& dir);

}  // namespace attnmap
