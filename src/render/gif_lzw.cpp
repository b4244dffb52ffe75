#include "render/gif_lzw.hpp"

#include <algorithm>
#include <array>

namespace attnmap::gif {
namespace {

constexpr int kMinCodeSize = 8;                     // palette indices are bytes
constexpr uint32_t kClear = 1u << kMinCodeSize;     // 256
constexpr uint32_t kEnd = kClear + 1;               // 257
constexpr uint32_t kFirstFree = kClear + 2;         // 258
constexpr int kMaxCodeSize = 12;
// giflib's limit: the table is cleared once code 4094 is assigned. Stopping one short of 4095 keeps
// every decoder, including those that mishandle a completely full table, in step with us.
constexpr uint32_t kTableLimit = 4095;

// Codes packed least-significant bit first, as GIF requires.
class BitWriter {
 public:
  void put(uint32_t code, int bits) {
    acc_ |= code << fill_;
    fill_ += bits;
    while (fill_ >= 8) {
      out_.push_back(static_cast<char>(acc_ & 0xFF));
      acc_ >>= 8;
      fill_ -= 8;
    }
  }
  std::string finish() {
    if (fill_ > 0) out_.push_back(static_cast<char>(acc_ & 0xFF));
    return std::move(out_);
  }

 private:
  std::string out_;
  uint32_t acc_ = 0;
  int fill_ = 0;
};

// The string table as an open-addressing hash from (prefix code, next index) to code. 8192 slots for at
// most 4096 codes keep probe chains short, and clearing it (every ~3800 codes on noisy images) is cheap.
class CodeTable {
 public:
  CodeTable() { clear(); }
  void clear() { keys_.fill(kEmpty); }
  // The code of prefix+index, or -1.
  int find(uint32_t prefix, uint8_t index) const {
    const uint32_t key = (prefix << 8) | index;
    for (uint32_t slot = hash(key);; slot = (slot + 1) & kMask) {
      if (keys_[slot] == key) return codes_[slot];
      if (keys_[slot] == kEmpty) return -1;
    }
  }
  void insert(uint32_t prefix, uint8_t index, uint32_t code) {
    const uint32_t key = (prefix << 8) | index;
    uint32_t slot = hash(key);
    while (keys_[slot] != kEmpty) slot = (slot + 1) & kMask;
    keys_[slot] = key;
    codes_[slot] = static_cast<uint16_t>(code);
  }

 private:
  static constexpr uint32_t kSlots = 8192, kMask = kSlots - 1, kEmpty = 0xFFFFFFFFu;
  static uint32_t hash(uint32_t key) { return (key * 2654435761u) >> 19; }  // Fibonacci hashing, 13 bits
  std::array<uint32_t, kSlots> keys_;
  std::array<uint16_t, kSlots> codes_{};
};

}  // namespace

std::string lzw_encode(std::span<const uint8_t> indices) {
  BitWriter bits;
  CodeTable table;
  int code_size = kMinCodeSize + 1;
  uint32_t next_code = kFirstFree;
  // The decoder adds its table entry one code later than we do; growing the code size right after
  // writing a code, as giflib does, is what keeps the two in step (also for the final end code).
  const auto emit = [&](uint32_t code) {
    bits.put(code, code_size);
    if (next_code >= (1u << code_size) && code_size < kMaxCodeSize) ++code_size;
  };
  emit(kClear);
  if (indices.empty()) {
    emit(kEnd);
    return bits.finish();
  }
  uint32_t prefix = indices[0];
  for (size_t i = 1; i < indices.size(); ++i) {
    const uint8_t index = indices[i];
    if (const int code = table.find(prefix, index); code >= 0) {
      prefix = static_cast<uint32_t>(code);
      continue;
    }
    emit(prefix);
    if (next_code >= kTableLimit) {
      emit(kClear);
      table.clear();
      code_size = kMinCodeSize + 1;
      next_code = kFirstFree;
    } else {
      table.insert(prefix, index, next_code++);
    }
    prefix = index;
  }
  emit(prefix);
  emit(kEnd);
  return bits.finish();
}

void append_sub_blocks(std::string& out, const std::string& data) {
  for (size_t at = 0; at < data.size(); at += 255) {
    const size_t n = std::min<size_t>(255, data.size() - at);
    out.push_back(static_cast<char>(n));
    out.append(data, at, n);
  }
  out.push_back('\0');
}

}  // namespace attnmap::gif
