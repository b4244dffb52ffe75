// NumPy .npy (format 1.0) reading and writing, so raw maps and debug inputs open with np.load.
#pragma once

#include <torch/types.h>

#include <filesystem>

namespace attnmap {

// Writes a contiguous CPU copy of `tensor` (float32, float64, int32, int64, uint8) atomically.
void save_npy(const std::filesystem::path& path, const torch::Tensor& tensor);

// Reads a little-endian, C-order .npy of those dtypes; throws Error(Input) naming the file otherwise.
torch::Tensor load_npy(const std::filesystem::path& path);

}  // namespace attnmap
