// --layers and --vision-blocks: the syntax is checked once when the CLI parses it; the range is checked against the
// model (or the recorded layer count, in compare) when the selection is resolved.
#include "options/layer_spec.hpp"

#include <algorithm>
#include <cctype>
#include <set>

#include "attnmap/error.hpp"

namespace attnmap {

namespace {

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return {};
  return s.substr(begin, s.find_last_not_of(" \t") - begin + 1);
}

std::string valid_range(int num_layers) {
  return num_layers == 1 ? "0" : "0-" + std::to_string(num_layers - 1);
}

Error usage(const std::string& spec, const std::string& what, const SelectionNames& names) {
  const bool vision = std::string(names.flag) == kVisionBlockNames.flag;
  return Error(ErrorKind::Usage, std::string(names.flag) + " '" + spec + "': " + what + "; use " +
                                     (vision ? "none, " : "") + "all, a list like " + names.example +
                                     " or a range like 0-5 (0-based " + names.items + ")");
}

// Digits only: a leading '-' or '+' would make "-1-3" ambiguous, so signs are not accepted.
int parse_index(const std::string& text, const std::string& spec, const SelectionNames& names) {
  if (text.empty() || text.size() > 9 || !std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); })) {
    throw usage(spec, "'" + text + "' is not a " + names.item + " number", names);
  }
  return std::stoi(text);
}

}  // namespace

std::optional<LayerSelection> parse_vision_blocks(const std::string& spec) {
  if (trim(spec) == "none") return std::nullopt;
  return parse_layer_selection(spec, kVisionBlockNames);
}

LayerSelection parse_layer_selection(const std::string& spec, const SelectionNames& names) {
  const std::string whole = trim(spec);
  LayerSelection selection;
  if (whole == "all") return selection;
  if (whole.empty()) throw usage(spec, "the list is empty", names);
  selection.all = false;
  std::set<int> seen;
  size_t start = 0;
  while (start <= whole.size()) {
    const size_t comma = std::min(whole.find(',', start), whole.size());
    const std::string part = trim(whole.substr(start, comma - start));
    if (part.empty()) throw usage(spec, "an entry between commas is empty", names);
    const size_t dash = part.find('-');
    LayerSelection::Range range;
    if (dash == std::string::npos) {
      range.first = range.last = parse_index(part, spec, names);
    } else {
      range.first = parse_index(trim(part.substr(0, dash)), spec, names);
      range.last = parse_index(trim(part.substr(dash + 1)), spec, names);
      if (range.last < range.first) throw usage(spec, "range '" + part + "' runs backwards", names);
    }
    // Duplicates are a typo whatever the model: caught here, before any model loads.
    for (int i = range.first; i <= range.last; ++i) {
      if (!seen.insert(i).second) throw usage(spec, std::string(names.item) + " " + std::to_string(i) + " is listed twice", names);
    }
    selection.ranges.push_back(range);
    start = comma + 1;
  }
  return selection;
}

std::vector<int> LayerSelection::resolve(int num_layers, const SelectionNames& names) const {
  if (num_layers <= 0) {
    throw Error(ErrorKind::Usage, std::string(names.flag) + " '" + text() + "': there are no " + names.items +
                                      " to choose from");
  }
  std::vector<int> layers;
  if (all) {
    for (int i = 0; i < num_layers; ++i) layers.push_back(i);
    return layers;
  }
  for (const Range& r : ranges) {
    if (r.last >= num_layers) {
      const int bad = r.first >= num_layers ? r.first : num_layers;
      throw Error(ErrorKind::Usage, std::string(names.flag) + " '" + text() + "': " + names.item + " " +
                                        std::to_string(bad) + " is out of range; the model has " +
                                        std::to_string(num_layers) + " " + names.items + " (valid: " +
                                        valid_range(num_layers) + ")");
    }
    for (int i = r.first; i <= r.last; ++i) layers.push_back(i);
  }
  return layers;
}

std::string LayerSelection::text() const {
  if (all) return "all";
  std::string out;
  for (const Range& r : ranges) {
    if (!out.empty()) out += ",";
    out += std::to_string(r.first);
    if (r.last != r.first) out += "-" + std::to_string(r.last);
  }
  return out;
}

std::vector<int> parse_layer_spec(const std::string& spec, int num_layers) {
  return parse_layer_selection(spec).resolve(num_layers);
}

}  // namespace attnmap
