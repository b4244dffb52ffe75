// The Split pre-tokenizer of tokenizer.json ("Isolated" behaviour) on PCRE2 with UTF + UCP + JIT.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace attnmap::tokenizer {

// Rewrites a pattern of HF's regex dialect (Oniguruma) for PCRE2. The one difference that matters
// for this family: PCRE2's UCP \s also matches U+180E, Oniguruma's matches exactly White_Space.
std::string to_pcre2_pattern(std::string_view hf_pattern);

class RegexSplitter {
 public:
  // Throws std::invalid_argument naming the PCRE2 error and its offset in the pattern.
  explicit RegexSplitter(std::string_view hf_pattern);
  ~RegexSplitter();
  RegexSplitter(RegexSplitter&&) noexcept;
  RegexSplitter& operator=(RegexSplitter&&) noexcept;

  // Appends to `out` every match and every gap between matches, in order, so the pieces cover
  // `text` (valid UTF-8). Empty matches are dropped, as HF drops empty pieces.
  void split(std::string_view text, std::vector<std::string_view>& out) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace attnmap::tokenizer
