#include "tokenizer/bpe.hpp"

#include "tokenizer/byte_level.hpp"

#include <cstring>
#include <functional>
#include <limits>
#include <mutex>
#include <queue>
#include <stdexcept>

namespace attnmap::tokenizer {

// (left id, right id) -> (rank, merged id), open addressing: the hot lookup of BPE, so no
// std::unordered_map node chasing.
struct BpeModel::PairTable {
  struct Slot {
    uint64_t key = kEmpty;
    int32_t rank = 0;
    int32_t id = 0;
  };
  static constexpr uint64_t kEmpty = std::numeric_limits<uint64_t>::max();
  std::vector<Slot> slots;
  uint64_t mask = 0;
  int shift = 0;

  explicit PairTable(size_t count) {
    size_t cap = 16;
    shift = 60;
    while (cap < count * 2) {
      cap <<= 1;
      --shift;
    }
    slots.resize(cap);
    mask = cap - 1;
  }
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  size_t home(uint64_t k) const { return static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> shift) & mask; }
  // Keeps the first (lowest) rank when a pair repeats, as HF does.
  void insert(uint64_t k, int32_t rank, int32_t id) {
    for (size_t i = home(k);; i = (i + 1) & mask) {
      if (slots[i].key == k) return;
      if (slots[i].key == kEmpty) {
        slots[i] = {k, rank, id};
        return;
      }
    }
  }
  const Slot* find(int32_t a, int32_t b) const {
    const uint64_t k = key(a, b);
    for (size_t i = home(k);; i = (i + 1) & mask) {
      if (slots[i].key == k) return &slots[i];
      if (slots[i].key == kEmpty) return nullptr;
    }
  }
};

// Pre-token -> ids. Sharded so concurrent encode() calls rarely wait on one another; bounded, and
// once a shard is full it simply stops growing (HF's cache does the same). Open addressing with keys
// and ids in flat arenas: a lookup touches one slot and two arena ranges, not a chain of nodes.
struct BpeModel::Cache {
  static constexpr size_t kShards = 16;
  static constexpr size_t kSlots = 16384;  // per shard, power of two
  static constexpr size_t kMaxEntries = kSlots / 2;
  static constexpr size_t kMaxWordBytes = 128;
  struct Slot {
    uint64_t hash = 0;  // 0 = empty (hash() never returns 0)
    uint32_t key_off = 0, ids_off = 0;
    uint16_t key_len = 0, n_ids = 0;
  };
  struct Shard {
    std::mutex mutex;
    std::vector<Slot> slots;
    std::string keys;
    std::vector<int32_t> ids;
    size_t entries = 0;
  };
  std::array<Shard, kShards> shards;

  static uint64_t hash(std::string_view w) {
    uint64_t h = 0x243F6A8885A308D3ull ^ w.size();
    size_t i = 0;
    for (; i + 8 <= w.size(); i += 8) {
      uint64_t v;
      std::memcpy(&v, w.data() + i, 8);
      h = (h ^ v) * 0x9E3779B97F4A7C15ull;
      h ^= h >> 29;
    }
    uint64_t tail = 0;
    std::memcpy(&tail, w.data() + i, w.size() - i);
    h = (h ^ tail) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
    return h | 1;
  }

  // Appends the cached ids of `w` to `out`; false when absent.
  bool find(std::string_view w, uint64_t h, std::vector<int64_t>& out) {
    Shard& s = shards[h >> 60];
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.slots.empty()) return false;
    for (size_t i = (h >> 8) & (kSlots - 1);; i = (i + 1) & (kSlots - 1)) {
      const Slot& slot = s.slots[i];
      if (slot.hash == 0) return false;
      if (slot.hash == h && slot.key_len == w.size() && std::memcmp(s.keys.data() + slot.key_off, w.data(), w.size()) == 0) {
        out.insert(out.end(), s.ids.begin() + slot.ids_off, s.ids.begin() + slot.ids_off + slot.n_ids);
        return true;
      }
    }
  }

  void insert(std::string_view w, uint64_t h, const std::vector<int32_t>& ids) {
    Shard& s = shards[h >> 60];
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.entries >= kMaxEntries) return;
    if (s.slots.empty()) s.slots.resize(kSlots);
    size_t i = (h >> 8) & (kSlots - 1);
    for (;; i = (i + 1) & (kSlots - 1)) {
      const Slot& slot = s.slots[i];
      if (slot.hash == 0) break;
      if (slot.hash == h && slot.key_len == w.size() && std::memcmp(s.keys.data() + slot.key_off, w.data(), w.size()) == 0) {
        return;  // another thread got here first
      }
    }
    s.slots[i] = {h, static_cast<uint32_t>(s.keys.size()), static_cast<uint32_t>(s.ids.size()),
                  static_cast<uint16_t>(w.size()), static_cast<uint16_t>(ids.size())};
    s.keys.append(w.data(), w.size());
    s.ids.insert(s.ids.end(), ids.begin(), ids.end());
    ++s.entries;
  }
};

BpeModel::BpeModel(const std::unordered_map<std::string, int32_t>& vocab,
                   const std::vector<std::pair<std::string, std::string>>& merges, bool ignore_merges)
    : pairs_(std::make_unique<PairTable>(merges.size())),
      cache_(std::make_unique<Cache>()),
      ignore_merges_(ignore_merges) {
  for (int b = 0; b < 256; ++b) {
    const auto it = vocab.find(byte_symbol(static_cast<unsigned char>(b)));
    if (it == vocab.end()) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", b);
      throw std::invalid_argument(std::string("the vocab has no token for byte ") + hex +
                                  " (not a byte-level BPE vocab)");
    }
    byte_ids_[static_cast<size_t>(b)] = it->second;
  }
  int32_t rank = 0;
  for (const auto& [a, b] : merges) {
    const auto ia = vocab.find(a), ib = vocab.find(b), iab = vocab.find(a + b);
    if (ia == vocab.end() || ib == vocab.end() || iab == vocab.end()) {
      throw std::invalid_argument("merge #" + std::to_string(rank) + " uses a token that is not in the vocab");
    }
    pairs_->insert(PairTable::key(ia->second, ib->second), rank, iab->second);
    ++rank;
  }
  if (ignore_merges_) {
    for (const auto& [token, id] : vocab) {
      if (auto bytes = symbols_to_bytes(token)) whole_words_.emplace(std::move(*bytes), id);
    }
  }
}

BpeModel::~BpeModel() = default;
BpeModel::BpeModel(BpeModel&&) noexcept = default;

// Few symbols: keep each adjacent pair's rank in an array and rescan it; only the two pairs next
// to a merge are looked up again. Cheaper than a heap for typical words.
void BpeModel::merge_small(std::vector<int32_t>& ids) const {
  constexpr int32_t kNone = std::numeric_limits<int32_t>::max();
  const size_t n = ids.size();
  int32_t ranks[64];
  int32_t merged[64];
  auto look = [&](size_t i) {
    const PairTable::Slot* s = pairs_->find(ids[i], ids[i + 1]);
    ranks[i] = s ? s->rank : kNone;
    merged[i] = s ? s->id : 0;
  };
  size_t len = n;
  for (size_t i = 0; i + 1 < len; ++i) look(i);
  while (len > 1) {
    size_t best = 0;
    int32_t best_rank = kNone;
    for (size_t i = 0; i + 1 < len; ++i) {
      if (ranks[i] < best_rank) {
        best_rank = ranks[i];
        best = i;
      }
    }
    if (best_rank == kNone) break;
    ids[best] = merged[best];
    for (size_t i = best + 1; i + 1 < len; ++i) {
      ids[i] = ids[i + 1];
      ranks[i] = ranks[i + 1];
      merged[i] = merged[i + 1];
    }
    --len;
    if (best + 1 < len) look(best);
    if (best > 0) look(best - 1);
  }
  ids.resize(len);
}

// Many symbols (long runs of letters, e.g. CJK without punctuation): HF's algorithm, a heap of
// candidate merges over a linked list of symbols, stale entries skipped when popped.
void BpeModel::merge_large(std::vector<int32_t>& ids) const {
  const int32_t n = static_cast<int32_t>(ids.size());
  std::vector<int32_t> prev(static_cast<size_t>(n)), next(static_cast<size_t>(n));
  std::vector<char> alive(static_cast<size_t>(n), 1);
  for (int32_t i = 0; i < n; ++i) {
    prev[static_cast<size_t>(i)] = i - 1;
    next[static_cast<size_t>(i)] = i + 1 < n ? i + 1 : -1;
  }
  struct Cand {
    int32_t rank, pos, id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int32_t pos) {
    const int32_t nx = next[static_cast<size_t>(pos)];
    if (nx < 0) return;
    if (const PairTable::Slot* s = pairs_->find(ids[static_cast<size_t>(pos)], ids[static_cast<size_t>(nx)])) {
      heap.push({s->rank, pos, s->id});
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    const auto p = static_cast<size_t>(c.pos);
    if (!alive[p] || next[p] < 0) continue;
    const auto nx = static_cast<size_t>(next[p]);
    const PairTable::Slot* s = pairs_->find(ids[p], ids[nx]);
    if (!s || s->rank != c.rank) continue;
    ids[p] = c.id;
    alive[nx] = 0;
    next[p] = next[nx];
    if (next[p] >= 0) prev[static_cast<size_t>(next[p])] = c.pos;
    if (prev[p] >= 0) push(prev[p]);
    push(c.pos);
  }
  size_t w = 0;
  for (int32_t i = 0; i >= 0; i = next[static_cast<size_t>(i)]) ids[w++] = ids[static_cast<size_t>(i)];
  ids.resize(w);
}

void BpeModel::merge(std::string_view bytes, std::vector<int32_t>& ids) const {
  ids.clear();
  if (ignore_merges_) {
    if (const auto it = whole_words_.find(std::string(bytes)); it != whole_words_.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  for (char b : bytes) ids.push_back(byte_ids_[static_cast<unsigned char>(b)]);
  if (ids.size() <= 64) {
    merge_small(ids);
  } else {
    merge_large(ids);
  }
}

void BpeModel::encode_word(std::string_view bytes, std::vector<int64_t>& out) const {
  if (bytes.size() == 1) {
    out.push_back(byte_ids_[static_cast<unsigned char>(bytes[0])]);
    return;
  }
  thread_local std::vector<int32_t> ids;
  if (bytes.size() > Cache::kMaxWordBytes) {
    merge(bytes, ids);
    out.insert(out.end(), ids.begin(), ids.end());
    return;
  }
  const uint64_t h = Cache::hash(bytes);
  if (cache_->find(bytes, h, out)) return;
  merge(bytes, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  cache_->insert(bytes, h, ids);
}

}  // namespace attnmap::tokenizer
