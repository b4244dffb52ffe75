// The real Qwen tokenizer the C++ tests share (tests/data/tokenizer/qwen_tokenizer.json.gz), loaded once.
#pragma once

#include <zlib.h>

#include <stdexcept>
#include <string>

#include "attnmap/tokenizer.hpp"

namespace attnmap_test {

inline const attnmap::Tokenizer& qwen_tokenizer() {
  static const attnmap::Tokenizer t = [] {
    const std::string path = std::string(ATTNMAP_TEST_DATA_DIR) + "/tokenizer/qwen_tokenizer.json.gz";
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f) throw std::runtime_error("cannot open " + path);
    std::string json;
    char buf[1 << 16];
    for (int n; (n = gzread(f, buf, sizeof buf)) > 0;) json.append(buf, static_cast<size_t>(n));
    gzclose(f);
    return attnmap::Tokenizer::from_json(json, "qwen_tokenizer.json");
  }();
  return t;
}

}  // namespace attnmap_test
