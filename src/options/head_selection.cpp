// --heads: mean | max | a head index. The index is checked against the model's head count by check().
#include <algorithm>
#include <cctype>

#include "attnmap/error.hpp"
#include "attnmap/options.hpp"

namespace attnmap {

HeadSelection parse_head_selection(const std::string& text) {
  HeadSelection heads;
  if (text == "mean") return heads;
  if (text == "max") {
    heads.kind = HeadSelection::Kind::Max;
    return heads;
  }
  const bool digits = !text.empty() && text.size() <= 9 &&
                      std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); });
  if (!digits) throw Error(ErrorKind::Usage, "--heads '" + text + "': use mean, max or a head index (0-based)");
  heads.kind = HeadSelection::Kind::Index;
  heads.index = std::stoi(text);
  return heads;
}

void HeadSelection::check(int num_heads) const {
  if (kind != Kind::Index || (index >= 0 && index < num_heads)) return;
  throw Error(ErrorKind::Usage, "--heads '" + text() + "': use mean, max or a head index 0.." +
                                    std::to_string(num_heads - 1) + " (the model has " + std::to_string(num_heads) +
                                    " attention heads)");
}

std::string HeadSelection::text() const {
  switch (kind) {
    case Kind::Mean: return "mean";
    case Kind::Max: return "max";
    case Kind::Index: return std::to_string(index);
  }
  return "?";
}

}  // namespace attnmap
