#include "model/device_memory.hpp"

#include <torch/cuda.h>

#include <cstdlib>

// The device-generic allocator interface (at::accelerator) reaches the CUDA caching allocator
// without CUDA headers, so the same sources build against the CPU wheel and the CUDA wheel with
// no CUDA toolkit installed.
#include <ATen/DeviceAccelerator.h>

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

namespace {
c10::DeviceIndex index_of(const torch::Device& device) { return device.index() < 0 ? 0 : device.index(); }
}  // namespace

void reset_peak_device_memory(const torch::Device& device) {
  if (device.is_cuda()) at::accelerator::resetPeakStats(index_of(device));
}

std::optional<int64_t> peak_device_memory_bytes(const torch::Device& device) {
  if (!device.is_cuda()) return std::nullopt;
  const auto stats = at::accelerator::getDeviceStats(index_of(device));
  return stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
}

void release_cached_device_memory(const torch::Device& device) {
  if (device.is_cuda()) at::accelerator::emptyCache();
}

#else

void reset_peak_device_memory(const torch::Device&) {}
std::optional<int64_t> peak_device_memory_bytes(const torch::Device&) { return std::nullopt; }
void release_cached_device_memory(const torch::Device&) {}

#endif

}  // namespace attnmap
