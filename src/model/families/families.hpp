// One factory per supported family; the registry (family_registry.cpp) lists them by name.
#pragma once

#include <memory>

#include "model/family.hpp"

namespace attnmap {

std::unique_ptr<const Family> make_qwen2_5_vl_family(const ModelMetadata& metadata);
std::unique_ptr<const Family> make_qwen2_vl_family(const ModelMetadata& metadata);
std::unique_ptr<const Family> make_qwen3_vl_family(const ModelMetadata& metadata);

}  // namespace attnmap
