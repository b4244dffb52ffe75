#include "batch/item_ids.hpp"

#include <algorithm>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "attnmap/error.hpp"

namespace attnmap {

std::string sanitize_id(std::string id) {
  for (char& c : id) {
    if (c == '/' || c == '\\' || c == ':' || static_cast<unsigned char>(c) < 0x20) c = '_';
  }
  // A leading dot would hide the folder ("." and ".." would not even be folders of their own).
  for (char& c : id) {
    if (c != '.') break;
    c = '_';
  }
  if (id.empty()) id = "_";
  return id;
}

bool is_reserved_id(const std::string& id) {
  std::string lower = id;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return lower.rfind("summary.", 0) == 0 || lower.rfind("index.", 0) == 0;
}

namespace {

std::string base_id(const std::string& requested) {
  std::string id = sanitize_id(requested);
  if (is_reserved_id(id)) id = "_" + id;  // "_summary.jsonl" is no longer reserved
  return id;
}

}  // namespace

std::vector<std::string> assign_unique_ids(const std::vector<IdRequest>& requests) {
  std::vector<std::string> ids(requests.size());
  std::vector<bool> assigned(requests.size(), false);
  std::set<std::string> taken;
  // Explicit ids first: they are the user's names and are never changed.
  std::map<std::string, size_t> owner;
  for (size_t i = 0; i < requests.size(); ++i) {
    if (!requests[i].explicit_id) continue;
    ids[i] = base_id(requests[i].id);
    const auto [it, inserted] = owner.emplace(ids[i], i);
    if (!inserted) {
      const IdRequest& first = requests[it->second];
      // The raw ids are quoted as JSON strings, so a newline in one cannot break the one-line error.
      const auto quoted = [](const std::string& id) {
        return nlohmann::json(id).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      };
      const std::string same =
          first.id == requests[i].id ? "" : " (" + quoted(first.id) + " and " + quoted(requests[i].id) + ")";
      throw Error(ErrorKind::Input, first.origin + " and " + requests[i].origin + " both have the id \"" + ids[i] +
                                        "\"" + same + ", which names the output folder; give each its own \"id\"");
    }
    taken.insert(ids[i]);
    assigned[i] = true;
  }
  // Then the first generated request of each free name keeps it, so that with cat.png, cat-2.png
  // and more/cat.png, cat-2.png still writes cat-2/ and more/cat.png gets the next free name.
  std::vector<std::string> bases(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    if (assigned[i]) continue;
    bases[i] = base_id(requests[i].id);
    if (taken.insert(bases[i]).second) {
      ids[i] = bases[i];
      assigned[i] = true;
    }
  }
  // The rest get the first suffix that no item uses, in listing order.
  for (size_t i = 0; i < requests.size(); ++i) {
    if (assigned[i]) continue;
    for (int n = 2;; ++n) {
      const std::string candidate = bases[i] + "-" + std::to_string(n);
      if (taken.insert(candidate).second) {
        ids[i] = candidate;
        break;
      }
    }
  }
  return ids;
}

}  // namespace attnmap
