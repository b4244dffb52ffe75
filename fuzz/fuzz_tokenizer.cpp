// Tokenizer: the first byte picks encode (the rest is text, valid UTF-8 or not) or decode (the rest
// is little-endian int32 ids, most of them in range). The real Qwen2.5 tokenizer.json committed for
// the tests is loaded once.
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "attnmap/tokenizer.hpp"
#include "fuzz_common.hpp"

namespace {

const attnmap::Tokenizer& tokenizer() {
  static const attnmap::Tokenizer t = [] {
    const std::string path = std::string(ATTNMAP_FUZZ_DATA_DIR) + "/tokenizer/qwen_tokenizer.json.gz";
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f) {
      std::fprintf(stderr, "cannot open %s\n", path.c_str());
      std::abort();
    }
    std::string json;
    char buf[1 << 16];
    int n;
    while ((n = gzread(f, buf, sizeof buf)) > 0) json.append(buf, static_cast<size_t>(n));
    gzclose(f);
    return attnmap::Tokenizer::from_json(json, path);
  }();
  return t;
}

}  // namespace

// Loading the 7 MB tokenizer.json takes seconds under ASan: do it before the per-input timeout runs.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const attnmap::Tokenizer& tok = tokenizer();
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  ++data, --size;
  if (mode & 1) {
    std::vector<int64_t> ids;
    const int64_t vocab = static_cast<int64_t>(tok.vocab_size());
    for (size_t i = 0; i + 4 <= size; i += 4) {
      int32_t raw;
      std::memcpy(&raw, data + i, 4);
      // Mostly valid ids (unknown ids only test the error path); a few raw values stay raw.
      ids.push_back((mode & 2) ? int64_t(raw) : (int64_t(uint32_t(raw)) % (vocab + 8)));
    }
    attnmap::fuzz::expect_clean_failure([&] { (void)tok.decode(ids, (mode & 4) != 0); });
    return 0;
  }
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<int64_t> ids;
  attnmap::fuzz::expect_clean_failure([&] { ids = tok.encode(text); });
  // Whatever encode returns must decode: every id it produces is a known token.
  try {
    (void)tok.decode(ids);
    for (int64_t id : ids) (void)tok.id_to_token(id);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attnmap fuzz: decode of encode's own ids failed: %s\n", e.what());
    std::abort();
  }
  return 0;
}
