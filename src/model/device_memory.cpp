#include "attnmap/device_memory.hpp"

#include <torch/cuda.h>

#include <cstdlib>

#ifdef ATTNMAP_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace attnmap {

bool built_with_cuda() {
#ifdef ATTNMAP_WITH_CUDA
  return true;
#else
  return false;
#endif
}

std::string cuda_runtime_summary() {
  if (!built_with_cuda()) return "CPU only (libtorch without CUDA)";
  const auto count = torch::cuda::device_count();
  return "CUDA, " + std::to_string(count) + (count == 1 ? " device" : " devices") + " visible";
}

void prefer_expandable_cuda_segments() {
  if (built_with_cuda()) setenv("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True", /*overwrite=*/0);
}

#ifdef ATTNMAP_WITH_CUDA

void reset_peak_device_memory(const torch::Device& device) {
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index() < 0 ? 0 : device.index());
}

std::optional<int64_t> peak_device_memory_bytes(const torch::Device& device) {
  if (!device.is_cuda()) return std::nullopt;
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index() < 0 ? 0 : device.index());
  return stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
}

void release_cached_device_memory(const torch::Device& device) {
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
}

#else

void reset_peak_device_memory(const torch::Device&) {}
std::optional<int64_t> peak_device_memory_bytes(const torch::Device&) { return std::nullopt; }
void release_cached_device_memory(const torch::Device&) {}

#endif

}  // namespace attnmap
