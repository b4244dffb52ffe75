// The BPE model on raw bytes: merges applied lowest rank first, leftmost first on ties, exactly as
// HF's BPE::merge_word. Built from the file's spelling (byte symbols); encodes raw bytes, since
// the byte -> symbol mapping is one symbol per byte and so commutes with concatenation.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace attnmap::tokenizer {

class BpeModel {
 public:
  // `vocab` and `merges[r]` (the pair merged at rank r) as spelled in tokenizer.json. Throws
  // std::invalid_argument naming the merge or byte whose token is missing from the vocab.
  BpeModel(const std::unordered_map<std::string, int32_t>& vocab,
           const std::vector<std::pair<std::string, std::string>>& merges, bool ignore_merges);
  ~BpeModel();
  BpeModel(BpeModel&&) noexcept;

  // Appends the ids of one pre-token (non-empty bytes) to `out`. Thread-safe.
  void encode_word(std::string_view bytes, std::vector<int64_t>& out) const;

 private:
  struct PairTable;
  struct Cache;
  void merge(std::string_view bytes, std::vector<int32_t>& ids) const;
  void merge_small(std::vector<int32_t>& ids) const;
  void merge_large(std::vector<int32_t>& ids) const;

  std::unordered_map<std::string, int32_t> whole_words_;  // the vocab, only for ignore_merges
  std::array<int32_t, 256> byte_ids_{};
  std::unique_ptr<PairTable> pairs_;
  std::unique_ptr<Cache> cache_;
  bool ignore_merges_ = false;
};

}  // namespace attnmap::tokenizer
