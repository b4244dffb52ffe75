#include <algorithm>

#include "attnmap/error.hpp"
#include "attnmap/prompt.hpp"

namespace attnmap {

torch::Tensor mrope_position_ids(const std::vector<int64_t>& ids, int64_t image_token_id,
                                 const std::vector<std::array<int64_t, 3>>& merged_grids) {
  std::vector<VisualGrid> grids;
  for (const auto& [t, h, w] : merged_grids) grids.push_back({VisualKind::Image, t, h, w, 1.0f, {}});
  return mrope_position_ids(ids, image_token_id, /*video_token_id=*/-1, grids);
}

torch::Tensor mrope_position_ids(const std::vector<int64_t>& ids, int64_t image_token_id, int64_t video_token_id,
                                 const std::vector<VisualGrid>& grids) {
  const int64_t n = static_cast<int64_t>(ids.size());
  torch::Tensor positions = torch::empty({3, n}, torch::kInt64);
  auto pos = positions.accessor<int64_t, 2>();
  int64_t next = 0;  // max position so far + 1
  size_t visual = 0;
  for (int64_t i = 0; i < n;) {
    const bool image_pad = ids[i] == image_token_id, video_pad = video_token_id >= 0 && ids[i] == video_token_id;
    if (!image_pad && !video_pad) {
      for (int axis = 0; axis < 3; ++axis) pos[axis][i] = next;
      ++next;
      ++i;
      continue;
    }
    if (visual >= grids.size()) {
      throw Error(ErrorKind::Internal, "more image/video-pad runs in the prompt than images and videos");
    }
    const VisualGrid& g = grids[visual++];
    if ((g.kind == VisualKind::Video) != video_pad) {
      throw Error(ErrorKind::Internal, "an image/video-pad run does not match the kind of its grid");
    }
    const int64_t count = g.t * g.h * g.w;
    if (i + count > n) throw Error(ErrorKind::Internal, "image/video-pad run shorter than its grid");
    const int64_t base = next;
    for (int64_t k = 0; k < count; ++k) {
      const int64_t frame = k / (g.h * g.w);
      // transformers: (arange(t) * time_interval).long() in float32; images have frame 0 only.
      const int64_t time =
          g.kind == VisualKind::Video ? static_cast<int64_t>(static_cast<float>(frame) * g.time_interval) : frame;
      pos[0][i + k] = base + time;
      pos[1][i + k] = base + (k % (g.h * g.w)) / g.w;
      pos[2][i + k] = base + k % g.w;
    }
    // transformers 5 advances by the spatial extent only (still images have t = 1; videos ignore time).
    next = base + std::max(g.h, g.w);
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
