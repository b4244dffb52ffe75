// The `--layers` syntax shared by `attnmap run` and `attnmap compare`: "all", a list "4,8,12",
// a range "0-5", or a mix "0-2,8,30-35". Indices are decoder layers, 0-based.
#pragma once

#include <string>
#include <vector>

#include "attnmap/options.hpp"

namespace attnmap {

// parse_layer_selection(spec).resolve(num_layers): the layers named by `spec`, in the order
// written (ranges ascending). Throws Error(Usage) naming the bad part for an empty part, a
// non-number, a reversed range, a duplicate, or a layer outside 0..num_layers-1.
std::vector<int> parse_layer_spec(const std::string& spec, int num_layers);

}  // namespace attnmap
