#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "attnmap/error.hpp"
#include "io/npy.hpp"

namespace fs = std::filesystem;

TEST(Npy, RoundTripsFloatAndIntTensors) {
  const fs::path dir = fs::path(ATTNMAP_TEST_WORK_DIR) / "npy";
  fs::create_directories(dir);
  const torch::Tensor f = torch::arange(24, torch::kFloat32).reshape({2, 3, 4}) / 7.0;
  attnmap::save_npy(dir / "f.npy", f);
  EXPECT_TRUE(torch::equal(attnmap::load_npy(dir / "f.npy"), f));
  const torch::Tensor i = torch::tensor({5, -3, 1 << 30}, torch::kInt64);
  attnmap::save_npy(dir / "i.npy", i);
  EXPECT_TRUE(torch::equal(attnmap::load_npy(dir / "i.npy"), i));
}

TEST(Npy, RejectsNonNpyFiles) {
  const fs::path path = fs::path(ATTNMAP_TEST_WORK_DIR) / "not.npy";
  fs::create_directories(path.parent_path());
  std::FILE* f = std::fopen(path.c_str(), "wb");
  std::fputs("hello", f);
  std::fclose(f);
  EXPECT_THROW(attnmap::load_npy(path), attnmap::Error);
}

// --- hostile files: every one is Error(Input) naming the file, never another exception, a crash or
// an allocation sized by a forged header.

namespace {

std::string npy_file_bytes(const std::string& dict, const std::string& data, int major = 1, int64_t header_len = -1) {
  std::string header = dict;
  const size_t preamble = major == 1 ? 10 : 12;
  header.append((64 - (preamble + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  const uint64_t len = header_len >= 0 ? static_cast<uint64_t>(header_len) : header.size();
  std::string out = std::string("\x93NUMPY", 6);
  out.push_back(static_cast<char>(major));
  out.push_back('\0');
  for (size_t i = 0; i < (major == 1 ? 2u : 4u); ++i) out.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  return out + header + data;
}

std::string dict_of(const std::string& shape, const std::string& descr = "<f4", const std::string& fortran = "False") {
  return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
}

void expect_input_error_naming(const std::string& name, const std::string& bytes) {
  const fs::path path = fs::path(ATTNMAP_TEST_WORK_DIR) / "npy_hostile" / (name + ".npy");
  fs::create_directories(path.parent_path());
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
  try {
    attnmap::load_npy(path);
    ADD_FAILURE() << name << ": accepted";
  } catch (const attnmap::Error& e) {
    EXPECT_EQ(e.kind(), attnmap::ErrorKind::Input) << name << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << name << ": " << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << name << ": " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << name << ": threw a non-attnmap exception: " << e.what();
  }
}

}  // namespace

TEST(Npy, HostileHeadersAreInputErrorsNamingTheFile) {
  const std::string data(4 * 6 * 8 * 4, '\0');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"empty", ""},
      {"magic_only", std::string("\x93NUMPY", 6)},
      {"no_length", std::string("\x93NUMPY\x01\x00", 8)},
      {"shape_not_a_number", npy_file_bytes(dict_of("(4, 9, x)"), data)},
      {"negative_dimension", npy_file_bytes(dict_of("(-4, 9, 6)"), data)},
      {"product_overflows", npy_file_bytes(dict_of("(4000000000, 4000000000, 4)"), data)},
      {"huge_allocation", npy_file_bytes(dict_of("(100000, 100000, 4)"), data)},
      {"dimension_over_int64", npy_file_bytes(dict_of("(99999999999999999999999,)"), data)},
      {"element_bytes_overflow", npy_file_bytes(dict_of("(4611686018427387904,)"), data)},
      {"dimension_of_200_digits", npy_file_bytes(dict_of("(" + std::string(200, '1') + ",)"), data)},
      // 18446744073709551620 wraps around uint64 to 4: with 16 bytes of data it would pass as (4,).
      {"dimension_wrapping_to_4", npy_file_bytes(dict_of("(18446744073709551620,)"), std::string(16, '\0'))},
      {"hundred_dims", npy_file_bytes([] {
         std::string s = "(";
         for (int i = 0; i < 100; ++i) s += "1, ";
         return dict_of(s + ")");
       }(), data)},
      {"complex", npy_file_bytes(dict_of("(4, 6, 8)", "<c8"), data + data)},
      {"big_endian", npy_file_bytes(dict_of("(4, 6, 8)", ">f4"), data)},
      {"fortran", npy_file_bytes(dict_of("(4, 6, 8)", "<f4", "True"), data)},
      {"fortran_garbage", npy_file_bytes(dict_of("(4, 6, 8)", "<f4", "Maybe"), data)},
      {"truncated_data", npy_file_bytes(dict_of("(4, 6, 8)"), data.substr(0, 10))},
      {"extra_data", npy_file_bytes(dict_of("(4, 6, 8)"), data + "xx")},
      {"header_past_end", npy_file_bytes(dict_of("(4, 6, 8)"), "", 1, 60000)},
      {"v2_header_4GiB", npy_file_bytes(dict_of("(4, 6, 8)"), data, 2, 0xFFFFFFFFll)},
      {"header_zero", npy_file_bytes("", data, 1, 0)},
      {"version_9", npy_file_bytes(dict_of("(4, 6, 8)"), data, 9)},
      {"not_a_dict", npy_file_bytes("hello", data)},
      {"unterminated_dict", npy_file_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 6, 8)", data)},
      {"unterminated_tuple", npy_file_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 6, 8}", data)},
      {"unterminated_string", npy_file_bytes("{'descr': '<f4, 'fortran_order': False, 'shape': (4,)}", data)},
      {"missing_shape", npy_file_bytes("{'descr': '<f4', 'fortran_order': False}", data)},
      {"missing_descr", npy_file_bytes("{'fortran_order': False, 'shape': (4, 6, 8)}", data)},
      {"shape_string", npy_file_bytes(dict_of("'4, 6, 8'"), data)},
      {"colon_at_end", npy_file_bytes("{'shape':", data)},
      {"key_at_end", npy_file_bytes("{'shape'", data)},
      {"nul_bytes", npy_file_bytes(std::string("{'descr': '<f4'\0\0", 17), data)},
  };
  for (const auto& [name, bytes] : cases) expect_input_error_naming(name, bytes);
}

TEST(Npy, ReadsWhatNumpyWritesWithOtherSpacingAndVersions) {
  const fs::path dir = fs::path(ATTNMAP_TEST_WORK_DIR) / "npy_variants";
  fs::create_directories(dir);
  std::string data(2 * 3 * 4, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i);
  const std::vector<std::string> files = {
      npy_file_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3, 4), }", data),
      npy_file_bytes("{\"descr\":\"|u1\",\"fortran_order\":False,\"shape\":(2,3,4)}", data),
      npy_file_bytes("{'shape': (2, 3, 4), 'fortran_order': False, 'descr': '|u1'}", data, 2),
      npy_file_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3, 4), }", data, 3),
  };
  for (size_t k = 0; k < files.size(); ++k) {
    const fs::path path = dir / ("v" + std::to_string(k) + ".npy");
    std::FILE* f = std::fopen(path.c_str(), "wb");
    std::fwrite(files[k].data(), 1, files[k].size(), f);
    std::fclose(f);
    const torch::Tensor t = attnmap::load_npy(path);
    EXPECT_EQ(t.sizes().vec(), (std::vector<int64_t>{2, 3, 4})) << k;
    EXPECT_EQ(t.flatten()[23].item<int64_t>(), 23) << k;
  }
  // A 1-d shape "(5,)" and a 0-d shape "()".
  const fs::path one = dir / "one.npy";
  attnmap::save_npy(one, torch::arange(5, torch::kInt32));
  EXPECT_EQ(attnmap::load_npy(one).sizes().vec(), (std::vector<int64_t>{5}));
}
