// The registry of model families: model_family (the metadata's string) -> factory. Adding a family
// is one line here plus its file under families/.
#include <utility>

#include "attnmap/error.hpp"
#include "model/families/families.hpp"
#include "model/family.hpp"

namespace attnmap {
namespace {

using Factory = std::unique_ptr<const Family> (*)(const ModelMetadata&);

const std::vector<std::pair<std::string, Factory>>& registry() {
  static const std::vector<std::pair<std::string, Factory>> families = {
      {"qwen2_5_vl", &make_qwen2_5_vl_family},
      {"qwen2_vl", &make_qwen2_vl_family},
      {"qwen3_vl", &make_qwen3_vl_family},
  };
  return families;
}

Factory find_factory(const std::string& model_family, const std::string& source) {
  for (const auto& [name, factory] : registry()) {
    if (name == model_family) return factory;
  }
  std::string supported;
  for (const std::string& name : supported_families()) supported += (supported.empty() ? "" : ", ") + name;
  throw Error(ErrorKind::Model, "model '" + source + "' is of model family '" + model_family +
                                    "', which this attnmap does not support (supported: " + supported +
                                    "); export a checkpoint of a supported family or upgrade attnmap");
}

}  // namespace

std::vector<std::string> supported_families() {
  std::vector<std::string> names;
  for (const auto& entry : registry()) names.push_back(entry.first);
  return names;
}

void require_supported_family(const std::string& model_family, const std::string& source) {
  (void)find_factory(model_family, source);
}

std::unique_ptr<const Family> make_family(const ModelMetadata& metadata, const std::string& source) {
  return find_factory(metadata.model_family, source)(metadata);
}

}  // namespace attnmap
