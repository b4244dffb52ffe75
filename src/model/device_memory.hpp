// The CUDA caching allocator, seen from attnmap: peak memory per item and giving memory back.
// Every function is a no-op (or empty) on the CPU and in builds whose libtorch has no CUDA.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace attnmap {

// True when this binary was built against a CUDA libtorch.
bool built_with_cuda();

// "CPU only" or "CUDA, N devices visible": for `attnmap info` and error messages.
std::string cuda_runtime_summary();

// Asks for expandable allocator segments unless the user set PYTORCH_CUDA_ALLOC_CONF: items of
// different image sizes otherwise fragment the cache until a large item no longer fits. Must run
// before the first CUDA allocation.
void prefer_expandable_cuda_segments();

// Starts a new peak window on `device`.
void reset_peak_device_memory(const torch::Device& device);

// Peak bytes held by tensors on `device` since the last reset (what torch.cuda.max_memory_allocated
// reports); empty for the CPU.
std::optional<int64_t> peak_device_memory_bytes(const torch::Device& device);

// Hands the allocator's cached, unused blocks back to the driver, e.g. after an out-of-memory item
// so that the next item starts from an unfragmented pool.
void release_cached_device_memory(const torch::Device& device);

}  // namespace attnmap
