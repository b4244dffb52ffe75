#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretokenizer.hpp"

#include <pcre2.h>

#include <stdexcept>

namespace attnmap::tokenizer {

std::string to_pcre2_pattern(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 64);
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      // \p{White_Space} is valid inside and outside character classes alike.
      if (e == 's') {
        out += "\\p{White_Space}";
      } else if (e == 'S') {
        out += "\\P{White_Space}";
      } else {
        out += p[i];
        out += e;
      }
      ++i;
    } else {
      out += p[i];
    }
  }
  return out;
}

namespace {

// Match data and JIT stack are per thread: encode() runs concurrently and PCRE2 allows sharing
// only the compiled code. One ovector pair is enough: we read only the whole match.
struct Scratch {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
  Scratch() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~Scratch() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

struct RegexSplitter::Impl {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Impl() { pcre2_code_free(code); }
};

RegexSplitter::RegexSplitter(std::string_view hf_pattern) : impl_(std::make_unique<Impl>()) {
  const std::string pattern = to_pcre2_pattern(hf_pattern);
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                              PCRE2_UTF | PCRE2_UCP, &err, &err_offset, nullptr);
  if (!impl_->code) {
    throw std::invalid_argument("pre-tokenizer regex does not compile (" + pcre2_message(err) + " at offset " +
                                std::to_string(err_offset) + "): " + std::string(hf_pattern));
  }
  // Without JIT (e.g. a PCRE2 built without it) the interpreter gives the same matches, slower.
  impl_->jit = pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE) == 0;
}

RegexSplitter::~RegexSplitter() = default;
RegexSplitter::RegexSplitter(RegexSplitter&&) noexcept = default;
RegexSplitter& RegexSplitter::operator=(RegexSplitter&&) noexcept = default;

void RegexSplitter::split(std::string_view text, std::vector<std::string_view>& out) const {
  Scratch& s = scratch();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const PCRE2_SIZE n = text.size();
  PCRE2_SIZE* ov = pcre2_get_ovector_pointer(s.data);
  PCRE2_SIZE offset = 0, emitted = 0;
  while (offset < n) {
    // Input was validated once up front, so PCRE2 need not re-check UTF-8 on every call.
    const int rc = impl_->jit ? pcre2_jit_match(impl_->code, subject, n, offset, 0, s.data, s.context)
                              : pcre2_match(impl_->code, subject, n, offset, PCRE2_NO_UTF_CHECK, s.data, s.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) throw std::runtime_error("pre-tokenizer regex failed: " + pcre2_message(rc));
    const PCRE2_SIZE start = ov[0], end = ov[1];
    if (end == start) {
      offset = start + 1;
      while (offset < n && (static_cast<unsigned char>(text[offset]) & 0xC0) == 0x80) ++offset;
      continue;
    }
    if (start > emitted) out.push_back(text.substr(emitted, start - emitted));
    out.push_back(text.substr(start, end - start));
    emitted = offset = end;
  }
  if (emitted < n) out.push_back(text.substr(emitted));
}

}  // namespace attnmap::tokenizer
