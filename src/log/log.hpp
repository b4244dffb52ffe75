// attnmap's logging: lines on stderr with a level. spdlog stays inside src/log (it must not meet
// libtorch's bundled fmt in one translation unit), so callers pass finished strings.
#pragma once

#include <string>

namespace attnmap::log {

enum class Level { Debug, Info, Warn, Error, Off };

void set_level(Level level);
// Accepts debug|info|warn|error|off (as ATTNMAP_LOG_LEVEL does); unknown names keep the level.
void set_level(const std::string& name);

void debug(const std::string& message);
void info(const std::string& message);
void warn(const std::string& message);
void error(const std::string& message);

// "12.3" style formatting for figures in log lines.
std::string fixed(double value, int decimals = 1);

}  // namespace attnmap::log
