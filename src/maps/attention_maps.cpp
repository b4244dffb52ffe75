#include "maps/attention_maps.hpp"

#include <algorithm>
#include <cmath>

#include "attnmap/error.hpp"

namespace attnmap {

torch::Tensor image_maps(const std::vector<torch::Tensor>& rows, int64_t head, const std::vector<TokenRun>& runs,
                         int64_t merged_h, int64_t merged_w) {
  int64_t tokens = 0;
  for (const TokenRun& run : runs) tokens += run.size();
  if (runs.empty() || tokens != merged_h * merged_w) {
    throw Error(ErrorKind::Internal, "image token runs do not match the merged grid");
  }
  std::vector<torch::Tensor> maps;
  maps.reserve(rows.size());
  for (const torch::Tensor& layer : rows) {
    const torch::Tensor per_head = layer.select(1, 0);  // [H', S]
    const torch::Tensor chosen = per_head.size(0) == 1 ? per_head[0] : per_head[head];
    std::vector<torch::Tensor> parts;
    for (const TokenRun& run : runs) parts.push_back(chosen.slice(0, run.start, run.end));
    maps.push_back((parts.size() == 1 ? parts.front() : torch::cat(parts)).reshape({merged_h, merged_w}));
  }
  return torch::stack(maps).to(torch::kFloat32).contiguous();
}

double map_entropy(const torch::Tensor& map) {
  const torch::Tensor m = map.to(torch::kFloat64).clamp_min(0);
  const double total = m.sum().item<double>();
  if (total <= 0) return 0.0;
  const torch::Tensor p = m / total;
  return -(p * torch::where(p > 0, p.log(), torch::zeros_like(p))).sum().item<double>();
}

double top_share(const torch::Tensor& map, double fraction) {
  const torch::Tensor m = map.to(torch::kFloat64).clamp_min(0).flatten();
  const double total = m.sum().item<double>();
  if (total <= 0) return 0.0;
  const int64_t k = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(fraction * static_cast<double>(m.numel()))));
  return std::get<0>(m.topk(std::min(k, m.numel()))).sum().item<double>() / total;
}

std::vector<LayerStats> layer_stats(const std::vector<int64_t>& layers, const torch::Tensor& maps) {
  std::vector<LayerStats> stats;
  for (size_t i = 0; i < layers.size(); ++i) {
    const torch::Tensor map = maps[static_cast<int64_t>(i)];
    stats.push_back({layers[i], map.min().item<double>(), map.max().item<double>(),
                     map.to(torch::kFloat64).sum().item<double>(), map_entropy(map), top_share(map)});
  }
  return stats;
}

}  // namespace attnmap
