// The Runner's vision-tower maps (--vision-blocks, docs/vision.md): the options checked against the
// tower once, and per item the query patches, the tower's attention and the record.
#include <algorithm>

#include "attnmap/error.hpp"
#include "attnmap/run.hpp"
#include "run/vision_query_patches.hpp"

namespace attnmap {

void Runner::check_vision_options() {
  if (!options_.vision_blocks) return;
  const ModelMetadata& meta = model_->metadata();
  const std::vector<int> blocks = options_.vision_blocks->resolve(meta.vision.depth, kVisionBlockNames);
  vision_blocks_.assign(blocks.begin(), blocks.end());
  if (single_head_ >= meta.vision.num_heads) {
    throw Error(ErrorKind::Usage, "--heads " + std::to_string(single_head_) + ": the vision tower has " +
                                      std::to_string(meta.vision.num_heads) +
                                      " heads and --vision-blocks maps use the same --heads; pick a head below " +
                                      std::to_string(meta.vision.num_heads) + ", or mean or max");
  }
  const VisionQuery& query = options_.vision_query;
  if (query.kind != VisionQuery::Kind::TextPeak) return;
  if (!query.layer && !meta.focus_layer) {
    throw Error(ErrorKind::Usage, "--vision-query text-peak: the model records no focus layer; name the decoder "
                                  "layer whose map's peak to use: text-peak:LAYER");
  }
  peak_layer_ = query.layer ? *query.layer : *meta.focus_layer;
  if (std::find(layers_.begin(), layers_.end(), peak_layer_) == layers_.end()) {
    throw Error(ErrorKind::Usage, "--vision-query " + query.text() + ": decoder layer " + std::to_string(peak_layer_) +
                                      (query.layer ? "" : " (the model's focus layer)") + " is not among --layers '" +
                                      options_.layers.text() + "'; add it to --layers or name one of those layers");
  }
}

std::vector<int64_t> Runner::vision_box_patches(const PreparedItem& prepared) const {
  if (vision_blocks_.empty() || options_.vision_query.kind != VisionQuery::Kind::Box) return {};
  const PatchGrid grid{prepared.image.grid_t, prepared.image.grid_h, prepared.image.grid_w,
                       model_->metadata().vision.spatial_merge_size};
  const std::string source = std::string(prepared.item.is_video() ? "video" : "image") + " '" +
                             prepared.item.input().string() + "'";
  return box_query_patches(options_.vision_query, prepared.original_rgb.cols, prepared.original_rgb.rows, grid, source);
}

std::optional<int64_t> Runner::infer_vision(const PreparedItem& prepared, InferredItem& out) {
  const ModelMetadata& meta = model_->metadata();
  const PatchGrid grid{prepared.image.grid_t, prepared.image.grid_h, prepared.image.grid_w,
                       meta.vision.spatial_merge_size};
  VisionRecord v;
  v.blocks_requested = options_.vision_blocks->text();
  v.query = options_.vision_query.text();
  v.heads = options_.heads.text();
  v.patch_size = meta.vision.patch_size;
  v.window_size = meta.vision.window_size;

  VisionAttentionRequest request;
  request.blocks = vision_blocks_;
  request.head_reduce = head_reduce_;
  switch (options_.vision_query.kind) {
    case VisionQuery::Kind::Mean:
      break;  // no query patches: every patch
    case VisionQuery::Kind::Box:
      request.query_patches = prepared.vision_box_patches;  // resolved by prepare()
      break;
    case VisionQuery::Kind::TextPeak: {
      const auto slot = std::find(prepared.layers.begin(), prepared.layers.end(), peak_layer_) - prepared.layers.begin();
      PeakQuery peak = peak_query_patches(out.maps[slot], grid);
      peak.peak.layer = peak_layer_;
      v.peak = peak.peak;
      request.query_patches = std::move(peak.patches);
      break;
    }
  }
  v.query_patches = request.query_patches;

  VisionAttentionResult result = model_->vision_attention(prepared.inputs, request);
  std::vector<torch::Tensor> maps;
  for (size_t i = 0; i < result.blocks.size(); ++i) {
    const torch::Tensor& rows = result.blocks[i];  // [H', P]
    const torch::Tensor one = rows.size(0) == 1 ? rows[0] : rows[single_head_];
    maps.push_back(one.reshape({grid.t, grid.h, grid.w}));
    VisionRecord::Block b;
    b.index = vision_blocks_[i];
    const bool full = std::find(meta.vision.fullatt_block_indexes.begin(), meta.vision.fullatt_block_indexes.end(),
                                b.index) != meta.vision.fullatt_block_indexes.end();
    b.attention = full || meta.vision.window_size <= 0 ? "full" : "window";
    b.min = one.min().item<double>();
    b.max = one.max().item<double>();
    b.sum = one.to(torch::kFloat64).sum().item<double>();
    v.blocks.push_back(b);
  }
  torch::Tensor stacked = torch::stack(maps);  // [blocks, t, h, w]
  // An image's maps drop the time axis, as maps.npy does.
  out.vision_maps = (prepared.video ? stacked : stacked.squeeze(1)).to(torch::kFloat32).contiguous();
  out.vision_windows = result.windows;
  v.maps_shape = out.vision_maps.sizes().vec();
  out.record.vision = v;
  return result.peak_device_memory_bytes;
}

}  // namespace attnmap
