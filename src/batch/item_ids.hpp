// Output folder names of batch items: each item gets its own folder under --out, whatever the
// images are called, and no name can leave --out, hide, or take a run-level file's name.
#pragma once

#include <string>
#include <vector>

namespace attnmap {

struct IdRequest {
  std::string id;       // manifest "id", or the image stem when the item has none
  bool explicit_id;     // true: the user chose this id (manifest "id"); false: attnmap made it up
  std::string origin;   // where the item came from, for errors: "manifest 'm.jsonl' line 3"
};

// One path component that is neither hidden nor "."/"..": path separators, ':' and control
// characters become '_', and so do leading dots; an empty id becomes "_".
std::string sanitize_id(std::string id);

// Names that run-level files of --out use now or may use later (summary*.jsonl and its
// temporaries, a viewer's index.html): summary.* and index.*, in any case.
bool is_reserved_id(const std::string& id);

// The folder name of each request, in order. Sanitised, reserved names get a leading '_', and
// an id that is already taken gets the first free suffix -2, -3, ... that no other item's id
// (explicit or generated) is, so an item that owns a name keeps it. Explicit ids are never
// renamed: two explicit ids that end up equal throw Error(Usage) naming both origins. The result
// depends only on the whole list, so every --shard and every --resume computes the same names.
std::vector<std::string> assign_unique_ids(const std::vector<IdRequest>& requests);

}  // namespace attnmap
