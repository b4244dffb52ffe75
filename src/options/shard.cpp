// --shard K/N.
#include "attnmap/error.hpp"
#include "attnmap/options.hpp"

namespace attnmap {

Shard parse_shard(const std::string& spec) {
  const auto slash = spec.find('/');
  Shard shard;
  try {
    if (slash == std::string::npos) throw std::invalid_argument(spec);
    size_t a = 0, b = 0;
    shard.index = std::stoi(spec.substr(0, slash), &a);
    shard.count = std::stoi(spec.substr(slash + 1), &b);
    if (a != slash || b != spec.size() - slash - 1) throw std::invalid_argument(spec);
  } catch (const std::exception&) {
    throw Error(ErrorKind::Usage, "--shard '" + spec + "': use K/N, e.g. 0/4 for the first of 4 shards");
  }
  if (shard.count < 1 || shard.index < 0 || shard.index >= shard.count) {
    throw Error(ErrorKind::Usage, "--shard " + shard.text() + ": use K/N with 0 <= K < N");
  }
  return shard;
}

std::string Shard::text() const { return std::to_string(index) + "/" + std::to_string(count); }

}  // namespace attnmap
