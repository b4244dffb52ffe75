// The names of write_atomically's temporary files, ".NAME.tmp.HOST.PID.N", and how to read the
// writer back out of one: a later run uses it to tell a dead writer's leftovers from a live one's.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace attnmap {

// A fresh temporary sibling of path, unique per host, process and call.
std::filesystem::path temporary_sibling(const std::filesystem::path& path);

struct TemporaryWriter {
  std::string host;  // empty for names without one (written before the host was part of the name)
  long pid = 0;
};

// The writer of a temporary file name, or nullopt when the name is not one of ours.
std::optional<TemporaryWriter> temporary_writer(const std::string& file_name);

// This machine's host name, as it appears in temporary names.
const std::string& this_host();

}  // namespace attnmap
