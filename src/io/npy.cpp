#include "attnmap/npy.hpp"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "attnmap/atomic_file.hpp"
#include "attnmap/error.hpp"

namespace attnmap {
namespace fs = std::filesystem;

namespace {

const char* descr_of(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32: return "<f4";
    case torch::kFloat64: return "<f8";
    case torch::kInt32: return "<i4";
    case torch::kInt64: return "<i8";
    case torch::kUInt8: return "|u1";
    default: return nullptr;
  }
}

torch::ScalarType type_of(const std::string& descr, const fs::path& path) {
  if (descr == "<f4") return torch::kFloat32;
  if (descr == "<f8") return torch::kFloat64;
  if (descr == "<i4") return torch::kInt32;
  if (descr == "<i8") return torch::kInt64;
  if (descr == "|u1" || descr == "<u1") return torch::kUInt8;
  throw Error(ErrorKind::Input, "'" + path.string() + "' has dtype " + descr +
                                    ", which attnmap does not read; expected float32/float64/int32/int64/uint8");
}

std::string header_for(const torch::Tensor& t, const char* descr) {
  std::ostringstream dict;
  dict << "{'descr': '" << descr << "', 'fortran_order': False, 'shape': (";
  for (int64_t i = 0; i < t.dim(); ++i) dict << t.size(i) << (t.dim() == 1 || i + 1 < t.dim() ? "," : "");
  dict << "), }";
  std::string header = dict.str();
  // Magic (6) + version (2) + length (2) + header + '\n' must be a multiple of 64.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  return header;
}

std::string field(const std::string& header, const std::string& key) {
  const auto at = header.find("'" + key + "'");
  if (at == std::string::npos) return {};
  auto begin = header.find(':', at) + 1;
  while (begin < header.size() && header[begin] == ' ') ++begin;
  if (header[begin] == '(') return header.substr(begin + 1, header.find(')', begin) - begin - 1);
  if (header[begin] == '\'') return header.substr(begin + 1, header.find('\'', begin + 1) - begin - 1);
  return header.substr(begin, header.find_first_of(",}", begin) - begin);
}

}  // namespace

void save_npy(const fs::path& path, const torch::Tensor& tensor) {
  const char* descr = descr_of(tensor.scalar_type());
  if (!descr) throw Error(ErrorKind::Internal, "save_npy: unsupported dtype for '" + path.string() + "'");
  const torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
  const std::string header = header_for(t, descr);
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
  bytes.push_back(static_cast<char>(header.size() & 0xff));
  bytes.push_back(static_cast<char>((header.size() >> 8) & 0xff));
  bytes += header;
  bytes.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  write_file_atomically(path, bytes);
}

torch::Tensor load_npy(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::Input, "cannot open '" + path.string() + "': no such file or not readable");
  char magic[8];
  in.read(magic, 8);
  if (!in || std::string(magic, 6) != "\x93NUMPY") {
    throw Error(ErrorKind::Input, "'" + path.string() + "' is not a .npy file");
  }
  size_t header_len = 0;
  if (magic[6] == 1) {
    unsigned char len[2];
    in.read(reinterpret_cast<char*>(len), 2);
    header_len = len[0] | (len[1] << 8);
  } else {
    unsigned char len[4];
    in.read(reinterpret_cast<char*>(len), 4);
    header_len = len[0] | (len[1] << 8) | (len[2] << 16) | (static_cast<size_t>(len[3]) << 24);
  }
  std::string header(header_len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  if (!in) throw Error(ErrorKind::Input, "'" + path.string() + "' is truncated (header)");
  if (field(header, "fortran_order") == "True") {
    throw Error(ErrorKind::Input, "'" + path.string() + "' is Fortran-ordered; save it in C order");
  }
  const torch::ScalarType type = type_of(field(header, "descr"), path);
  std::vector<int64_t> shape;
  std::stringstream dims(field(header, "shape"));
  for (std::string dim; std::getline(dims, dim, ',');) {
    if (dim.find_first_not_of(' ') != std::string::npos) shape.push_back(std::stoll(dim));
  }
  torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(type));
  in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * t.element_size()));
  if (!in) throw Error(ErrorKind::Input, "'" + path.string() + "' is truncated (data)");
  return t;
}

}  // namespace attnmap
