#include <nlohmann/json.hpp>

#include "attnmap/error.hpp"
#include "attnmap/image.hpp"

namespace attnmap {

namespace {
[[noreturn]] void bad_field(const std::string& key, const std::string& what) {
  throw Error(ErrorKind::Model, "model metadata: preprocess." + key + " " + what +
                                    "; re-export the model with tools/export.py");
}

const nlohmann::json& field(const nlohmann::json& obj, const std::string& key) {
  if (!obj.is_object() || !obj.contains(key)) bad_field(key, "is missing");
  return obj.at(key);
}

int64_t positive_int(const nlohmann::json& obj, const std::string& key) {
  const auto& v = field(obj, key);
  if (!v.is_number_integer() || v.get<int64_t>() <= 0) bad_field(key, "must be a positive integer");
  return v.get<int64_t>();
}

double positive_number(const nlohmann::json& obj, const std::string& key) {
  const auto& v = field(obj, key);
  if (!v.is_number() || !(v.get<double>() > 0)) bad_field(key, "must be a positive number");
  return v.get<double>();
}

// Narrowing double -> float here matches numpy's np.array(mean, dtype=float32) in the processor.
std::array<float, 3> three_floats(const nlohmann::json& obj, const std::string& key, bool positive) {
  const auto& v = field(obj, key);
  if (!v.is_array() || v.size() != 3) bad_field(key, "must be an array of 3 numbers (RGB)");
  std::array<float, 3> out{};
  for (size_t i = 0; i < 3; ++i) {
    if (!v[i].is_number() || (positive && !(v[i].get<double>() > 0))) {
      bad_field(key, positive ? "must hold 3 positive numbers" : "must hold 3 numbers");
    }
    out[i] = static_cast<float>(v[i].get<double>());
  }
  return out;
}
}  // namespace

PreprocessParams PreprocessParams::from_json(const nlohmann::json& preprocess) {
  PreprocessParams p;
  p.patch_size = static_cast<int>(positive_int(preprocess, "patch_size"));
  p.temporal_patch_size = static_cast<int>(positive_int(preprocess, "temporal_patch_size"));
  p.merge_size = static_cast<int>(positive_int(preprocess, "merge_size"));
  p.min_pixels = positive_int(preprocess, "min_pixels");
  p.max_pixels = positive_int(preprocess, "max_pixels");
  if (p.max_pixels < p.min_pixels) bad_field("max_pixels", "is smaller than min_pixels");
  p.image_mean = three_floats(preprocess, "image_mean", false);
  p.image_std = three_floats(preprocess, "image_std", true);
  p.rescale_factor = positive_number(preprocess, "rescale_factor");
  return p;
}

}  // namespace attnmap
