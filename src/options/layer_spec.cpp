#include "attnmap/layer_spec.hpp"

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

Error usage(const std::string& spec, const std::string& what, int num_layers) {
  return Error(ErrorKind::Usage, "--layers '" + spec + "': " + what + "; use all, a list like 4,8,12 or a range like 0-5 within " +
                                     valid_range(num_layers));
}

// Digits only: a leading '-' or '+' would make "-1-3" ambiguous, so signs are not accepted.
int parse_index(const std::string& text, const std::string& spec, int num_layers) {
  if (text.empty() || text.size() > 9 || !std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); })) {
    throw usage(spec, "'" + text + "' is not a layer number", num_layers);
  }
  const int value = std::stoi(text);
  if (value >= num_layers) {
    throw Error(ErrorKind::Usage, "--layers '" + spec + "': layer " + text + " is out of range; the model has " +
                                      std::to_string(num_layers) + " decoder layers (valid: " + valid_range(num_layers) + ")");
  }
  return value;
}

}  // namespace

std::vector<int> parse_layer_spec(const std::string& spec, int num_layers) {
  if (num_layers <= 0) {
    throw Error(ErrorKind::Usage, "--layers '" + spec + "': there are no decoder layers to choose from");
  }
  const std::string whole = trim(spec);
  std::vector<int> layers;
  if (whole == "all") {
    for (int i = 0; i < num_layers; ++i) layers.push_back(i);
    return layers;
  }
  if (whole.empty()) throw usage(spec, "the list is empty", num_layers);

  std::set<int> seen;
  auto add = [&](int layer) {
    if (!seen.insert(layer).second) throw usage(spec, "layer " + std::to_string(layer) + " is listed twice", num_layers);
    layers.push_back(layer);
  };
  size_t start = 0;
  while (start <= whole.size()) {
    const size_t comma = std::min(whole.find(',', start), whole.size());
    const std::string part = trim(whole.substr(start, comma - start));
    if (part.empty()) throw usage(spec, "an entry between commas is empty", num_layers);
    const size_t dash = part.find('-');
    if (dash == std::string::npos) {
      add(parse_index(part, spec, num_layers));
    } else {
      const int first = parse_index(trim(part.substr(0, dash)), spec, num_layers);
      const int last = parse_index(trim(part.substr(dash + 1)), spec, num_layers);
      if (last < first) throw usage(spec, "range '" + part + "' runs backwards", num_layers);
      for (int i = first; i <= last; ++i) add(i);
    }
    start = comma + 1;
  }
  return layers;
}

}  // namespace attnmap
