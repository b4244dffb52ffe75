#include "io/npy.hpp"

#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "io/atomic_file.hpp"
#include "attnmap/error.hpp"

namespace attnmap {
namespace fs = std::filesystem;

namespace {

// NumPy writes headers of a few hundred bytes (np.load refuses more than 10000 by default); the
// cap keeps a forged 4-byte length from asking for gigabytes.
constexpr uint64_t kMaxHeaderBytes = 1 << 20;
constexpr size_t kMaxDims = 64;  // NPY_MAXDIMS of numpy 2
constexpr size_t kPreambleV1 = 10, kPreambleV2 = 12;
const char* kFix = "; write it with numpy.save or regenerate it";

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

[[noreturn]] void bad(const std::string& source, const std::string& what) {
  throw Error(ErrorKind::Input, "'" + source + "' " + what + kFix);
}

// Header text is untrusted: quote it only after replacing anything that could break the line.
std::string printable(std::string_view text, size_t max = 40) {
  std::string out;
  for (char c : text.substr(0, max)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (text.size() > max) out += "...";
  return out;
}

torch::ScalarType type_of(const std::string& descr, const std::string& source) {
  if (descr == "<f4") return torch::kFloat32;
  if (descr == "<f8") return torch::kFloat64;
  if (descr == "<i4") return torch::kInt32;
  if (descr == "<i8") return torch::kInt64;
  if (descr == "|u1" || descr == "<u1") return torch::kUInt8;
  const std::string why = !descr.empty() && descr[0] == '>' ? " (big-endian)" : "";
  throw Error(ErrorKind::Input, "'" + source + "' has dtype " + printable(descr) + why +
                                    ", which attnmap does not read; expected little-endian float32/float64/int32/int64/uint8");
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

// The header is a Python dict literal with exactly the keys descr (str), fortran_order (bool) and
// shape (tuple of ints), as numpy writes it; this is a strict parser for that, not a guesser.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& source) : text_(text), source_(source) {}

  void parse(std::string& descr, bool& fortran, std::vector<int64_t>& shape) {
    skip_space();
    expect('{');
    bool seen_descr = false, seen_fortran = false, seen_shape = false;
    for (;;) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = string_literal();
      skip_space();
      expect(':');
      skip_space();
      if (key == "descr" && !seen_descr) {
        descr = string_literal();
        seen_descr = true;
      } else if (key == "fortran_order" && !seen_fortran) {
        fortran = boolean();
        seen_fortran = true;
      } else if (key == "shape" && !seen_shape) {
        shape = tuple();
        seen_shape = true;
      } else {
        fail("unexpected or repeated key '" + printable(key) + "'");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') fail("expected ',' or '}'");
    }
    ++pos_;  // '}'
    skip_space();
    if (pos_ != text_.size()) fail("text after the closing '}'");
    if (!seen_descr) bad(source_, "has a header without 'descr' (the dtype)");
    if (!seen_fortran) bad(source_, "has a header without 'fortran_order'");
    if (!seen_shape) bad(source_, "has a header without 'shape'");
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    bad(source_, "has a malformed header (" + what + " at byte " + std::to_string(pos_) + " of the header dict)");
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) ++pos_;
  }
  void expect(char c) {
    if (peek() != c || pos_ >= text_.size()) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string string_literal() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a quoted string");
    const size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string s(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return s;
  }
  bool boolean() {
    for (const auto& [word, value] : {std::pair<std::string_view, bool>{"True", true}, {"False", false}}) {
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return value;
      }
    }
    bad(source_, "has a malformed header ('fortran_order' must be True or False)");
  }
  std::vector<int64_t> tuple() {
    if (peek() != '(') bad(source_, "has a malformed header ('shape' must be a tuple of integers, e.g. (4, 6, 8))");
    ++pos_;
    std::vector<int64_t> dims;
    for (;;) {
      skip_space();
      if (peek() == ')') break;
      dims.push_back(dimension());
      if (dims.size() > kMaxDims) bad(source_, "has a 'shape' of more than " + std::to_string(kMaxDims) + " dimensions");
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != ')') fail("expected ',' or ')' in 'shape'");
    }
    ++pos_;
    return dims;
  }
  int64_t dimension() {
    const size_t start = pos_;
    uint64_t value = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      // Checked before the multiplication, which could otherwise wrap around uint64.
      const auto digit = static_cast<uint64_t>(text_[pos_] - '0');
      constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
      if (value > (kMax - digit) / 10) bad(source_, "has a dimension in 'shape' that is too large");
      value = value * 10 + digit;
      ++pos_;
    }
    if (pos_ == start) {
      bad(source_, "has a malformed 'shape' (dimensions must be non-negative integers, found '" +
                       printable(text_.substr(start, 12)) + "')");
    }
    return static_cast<int64_t>(value);
  }

  std::string_view text_;
  const std::string& source_;
  size_t pos_ = 0;
};

uint64_t little_endian(std::string_view bytes) {
  uint64_t v = 0;
  for (size_t i = bytes.size(); i-- > 0;) v = (v << 8) | static_cast<unsigned char>(bytes[i]);
  return v;
}

// Bytes the preamble (magic, version, header length) takes, from its first 8 bytes.
size_t preamble_size(std::string_view bytes, const std::string& source) {
  if (bytes.size() < 8 || bytes.substr(0, 6) != std::string_view("\x93NUMPY", 6)) bad(source, "is not a .npy file");
  const auto major = static_cast<unsigned char>(bytes[6]), minor = static_cast<unsigned char>(bytes[7]);
  if (major < 1 || major > 3 || minor != 0) {
    bad(source, "is .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                    ", which attnmap does not read (1.0, 2.0 and 3.0 are read)");
  }
  return major == 1 ? kPreambleV1 : kPreambleV2;
}

torch::Tensor read_data(const NpyHeader& h, const std::function<void(char*, uint64_t)>& fill) {
  torch::Tensor t = torch::empty(h.shape, torch::TensorOptions().dtype(h.dtype));
  if (h.data_bytes > 0) fill(static_cast<char*>(t.data_ptr()), h.data_bytes);
  return t;
}

}  // namespace

std::string npy_shape_text(const std::vector<int64_t>& shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + (shape.size() == 1 ? ",)" : ")");
}

NpyHeader parse_npy_header(std::string_view bytes, uint64_t file_size, const std::string& source) {
  const size_t preamble = preamble_size(bytes, source);
  if (bytes.size() < preamble) bad(source, "is not a .npy file (it ends inside the preamble)");
  const uint64_t header_len = little_endian(bytes.substr(8, preamble - 8));
  if (header_len == 0 || header_len > kMaxHeaderBytes || preamble + header_len > file_size) {
    bad(source, "declares a header of " + std::to_string(header_len) + " bytes in a file of " + std::to_string(file_size) +
                    " bytes (a .npy header is non-empty, at most " + std::to_string(kMaxHeaderBytes) +
                    " bytes and inside the file)");
  }
  if (bytes.size() < preamble + header_len) bad(source, "is truncated (header)");

  NpyHeader h;
  std::string descr;
  bool fortran = false;
  HeaderParser(bytes.substr(preamble, header_len), source).parse(descr, fortran, h.shape);
  if (fortran) bad(source, "is Fortran-ordered; save it in C order (numpy.ascontiguousarray)");
  h.dtype = type_of(descr, source);
  h.data_offset = preamble + header_len;

  // The element count and byte size must fit 64 bits before they are compared with the file.
  uint64_t bytes_needed = c10::elementSize(h.dtype);
  for (int64_t dim : h.shape) {
    if (__builtin_mul_overflow(bytes_needed, static_cast<uint64_t>(dim), &bytes_needed) ||
        bytes_needed > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      bad(source, "declares shape " + npy_shape_text(h.shape) + ", more bytes than any file holds");
    }
  }
  h.data_bytes = bytes_needed;
  const uint64_t present = file_size - h.data_offset;
  if (present < h.data_bytes) {
    bad(source, "is truncated: its header declares shape " + npy_shape_text(h.shape) + " of " + descr + ", " +
                    std::to_string(h.data_bytes) + " bytes, but only " + std::to_string(present) + " bytes follow");
  }
  if (present > h.data_bytes) {
    bad(source, "has " + std::to_string(present) + " bytes of data but its header (shape " + npy_shape_text(h.shape) +
                    " of " + descr + ") declares " + std::to_string(h.data_bytes) + " bytes");
  }
  return h;
}

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

namespace {

// Opens the file and reads its preamble and header; `in` is left at the start of the data.
NpyHeader read_header_from(std::ifstream& in, const fs::path& path) {
  const std::string source = path.string();
  std::error_code ec;
  if (fs::is_directory(path, ec)) bad(source, "is a folder, not a .npy file");
  in.open(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::Input, "cannot open '" + source + "': no such file or not readable");
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) throw Error(ErrorKind::Input, "cannot read '" + source + "': " + ec.message());
  std::string head(kPreambleV2, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  const size_t preamble = preamble_size(head, source);
  if (head.size() < preamble) bad(source, "is not a .npy file (it ends inside the preamble)");
  head.resize(preamble);
  const uint64_t header_len = little_endian(std::string_view(head).substr(8));
  // parse_npy_header checks header_len against the cap and the file size before this read grows.
  if (header_len > 0 && header_len <= kMaxHeaderBytes && preamble + header_len <= size) {
    in.clear();
    in.seekg(static_cast<std::streamoff>(preamble));
    head.resize(preamble + header_len);
    in.read(head.data() + preamble, static_cast<std::streamsize>(header_len));
    if (static_cast<uint64_t>(in.gcount()) != header_len) bad(source, "is truncated (header)");
  }
  return parse_npy_header(head, size, source);
}

}  // namespace

NpyHeader read_npy_header(const fs::path& path) {
  std::ifstream in;
  return read_header_from(in, path);
}

torch::Tensor load_npy(const fs::path& path) {
  std::ifstream in;
  const NpyHeader h = read_header_from(in, path);
  return read_data(h, [&](char* out, uint64_t n) {
    in.read(out, static_cast<std::streamsize>(n));
    if (static_cast<uint64_t>(in.gcount()) != n) bad(path.string(), "is truncated (data)");
  });
}

torch::Tensor load_npy_bytes(std::string_view bytes, const std::string& source) {
  const NpyHeader h = parse_npy_header(bytes, bytes.size(), source);
  return read_data(h, [&](char* out, uint64_t n) { std::memcpy(out, bytes.data() + h.data_offset, n); });
}

}  // namespace attnmap
