// The time text Qwen3-VL writes before each temporal patch (Qwen3VLProcessor.replace_video_token and
// _calculate_timestamps, transformers v5.23).
#include <cstdio>
#include <string>

#include "attnmap/error.hpp"
#include "attnmap/video.hpp"

namespace attnmap {

std::string TimestampText::format(double seconds) const {
  // printf rounds the double's exact value to nearest (ties to even), as Python's f"{x:.1f}" does.
  char number[64];
  std::snprintf(number, sizeof number, "%.*f", decimals, seconds);
  return before + number + after;
}

std::vector<double> temporal_patch_seconds(const std::vector<int64_t>& indices, double fps, int temporal_patch_size) {
  if (indices.empty() || !(fps > 0) || temporal_patch_size <= 0) {
    throw Error(ErrorKind::Internal, "temporal_patch_seconds: no frames, no rate or no patch size");
  }
  std::vector<int64_t> padded = indices;
  while (padded.size() % static_cast<size_t>(temporal_patch_size) != 0) padded.push_back(indices.back());
  std::vector<double> seconds;
  for (size_t i = 0; i < padded.size(); i += static_cast<size_t>(temporal_patch_size)) {
    const double first = static_cast<double>(padded[i]) / fps;
    const double last = static_cast<double>(padded[i + temporal_patch_size - 1]) / fps;
    seconds.push_back((first + last) / 2);
  }
  return seconds;
}

}  // namespace attnmap
