// NumPy .npy (format 1.0) reading and writing, so raw maps and debug inputs open with np.load.
// Reading treats the file as untrusted: the header is parsed strictly and its shape is checked
// against the file's size before anything is allocated.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace attnmap {

// Writes float32/float64/int32/int64/uint8 tensors (any shape, C order, little-endian).
void save_npy(const std::filesystem::path& path, const torch::Tensor& tensor);

// Reads a little-endian, C-order .npy of those dtypes; throws Error(Input) naming the file otherwise.
torch::Tensor load_npy(const std::filesystem::path& path);

// What a .npy header declares, after checking it against the file's size.
struct NpyHeader {
  torch::ScalarType dtype = torch::kFloat32;
  std::vector<int64_t> shape;
  uint64_t data_offset = 0;  // bytes before the array data (preamble + header)
  uint64_t data_bytes = 0;   // product(shape) * element size; equals the file size - data_offset
};

// Parses the header at the start of `bytes` (at least the preamble and header; the data may be
// absent) of a file of `file_size` bytes. `source` names the file in messages. Throws
// Error(Input) for anything np.load would reject, for dtypes attnmap does not read, for
// Fortran order, and when the data is not exactly as long as the shape needs. Never allocates
// more than the header's own length.
NpyHeader parse_npy_header(std::string_view bytes, uint64_t file_size, const std::string& source);

// Reads and checks only the header of a .npy file (no data), e.g. to compare its shape with
// what another file records before loading it. Throws Error(Input) naming the file.
NpyHeader read_npy_header(const std::filesystem::path& path);

// A whole .npy file held in memory, checked like load_npy (also a fuzzing entry point).
// Throws Error(Input) naming `source`.
torch::Tensor load_npy_bytes(std::string_view bytes, const std::string& source);

// "(4, 6, 8)", "(5,)", "()": a shape as numpy prints it, for messages.
std::string npy_shape_text(const std::vector<int64_t>& shape);

}  // namespace attnmap
