#include <algorithm>

#include "attnmap/error.hpp"
#include "attnmap/prompt.hpp"

namespace attnmap {

torch::Tensor mrope_position_ids(const std::vector<int64_t>& ids, int64_t image_token_id,
                                 const std::vector<std::array<int64_t, 3>>& merged_grids) {
  const int64_t n = static_cast<int64_t>(ids.size());
  torch::Tensor positions = torch::empty({3, n}, torch::kInt64);
  auto pos = positions.accessor<int64_t, 2>();
  int64_t next = 0;  // max position so far + 1
  size_t image = 0;
  for (int64_t i = 0; i < n;) {
    if (ids[i] != image_token_id) {
      for (int axis = 0; axis < 3; ++axis) pos[axis][i] = next;
      ++next;
      ++i;
      continue;
    }
    if (image >= merged_grids.size()) {
      throw Error(ErrorKind::Internal, "more image-pad runs in the prompt than images");
    }
    const auto [t, h, w] = merged_grids[image++];
    const int64_t count = t * h * w;
    if (i + count > n) throw Error(ErrorKind::Internal, "image-pad run shorter than its grid");
    const int64_t base = next;
    for (int64_t k = 0; k < count; ++k) {
      pos[0][i + k] = base + k / (h * w);
      pos[1][i + k] = base + (k % (h * w)) / w;
      pos[2][i + k] = base + k % w;
    }
    // transformers 5 advances by the spatial extent only (still images have t = 1).
    next = base + std::max(h, w);
    i += count;
  }
  return positions;
}

torch::Tensor mrope_decode_position_ids(const torch::Tensor& prompt_position_ids, int64_t index) {
  const int64_t seq = prompt_position_ids.size(-1);
  if (index < seq) {
    throw Error(ErrorKind::Internal, "decode position " + std::to_string(index) + " lies inside the prompt of " +
                                         std::to_string(seq) + " tokens");
  }
  // An image of merged h x w tokens advances the positions by max(h, w) only, so the positions run
  // behind the token count; generation continues from where the prompt's positions ended.
  const int64_t rope_delta = prompt_position_ids.max().item<int64_t>() + 1 - seq;
  return torch::full({3, 1}, index + rope_delta, torch::kInt64);
}

}  // namespace attnmap
