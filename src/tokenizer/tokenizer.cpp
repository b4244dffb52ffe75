// The pipeline of HF's TokenizerImpl::encode for a byte-level BPE tokenizer.json: split out added
// tokens (raw text), NFC the rest, split out normalized added tokens, Split regex, BPE on bytes.
#include "attnmap/tokenizer.hpp"

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>
#include <unordered_map>

#include "attnmap/error.hpp"
#include "tokenizer/added_tokens.hpp"
#include "tokenizer/bpe.hpp"
#include "tokenizer/byte_level.hpp"
#include "tokenizer/pretokenizer.hpp"
#include "tokenizer/utf8.hpp"

namespace attnmap {

using json = nlohmann::json;
using namespace attnmap::tokenizer;

namespace {

// GPT-2's pattern, used by a ByteLevel pre-tokenizer with use_regex=true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

constexpr int64_t kMaxId = 1 << 24;

[[noreturn]] void fail(std::string_view source, const std::string& what) {
  throw Error(ErrorKind::Input, std::string(source) + ": " + what);
}

bool flag(const json& j, const char* key, bool fallback) {
  const auto it = j.find(key);
  return it == j.end() || it->is_null() ? fallback : it->get<bool>();
}

std::string type_of(const json& j) { return j.is_object() && j.contains("type") ? j["type"].get<std::string>() : ""; }

// model.vocab and model.merges hold ~150k entries each; building them as a DOM (std::map nodes)
// and tearing it down took most of the load time. The parse callback takes them out as they stream
// by and keeps the rest of the file as a small DOM.
struct ModelTables {
  std::vector<std::pair<std::string, int64_t>> vocab;
  std::vector<std::pair<std::string, std::string>> merges;  // byte-level symbols, as in the file
  std::string error;                                        // first malformed entry, if any
};

json parse_streaming(std::string_view text, ModelTables& t) {
  std::string key1, key2, pending_token;
  auto note = [&t](const std::string& e) {
    if (t.error.empty()) t.error = e;
  };
  const json::parser_callback_t cb = [&](int depth, json::parse_event_t ev, json& v) -> bool {
    using E = json::parse_event_t;
    if (ev == E::key && depth == 1) key1 = v.get<std::string>();
    if (ev == E::key && depth == 2) key2 = v.get<std::string>();
    if (key1 != "model" || depth < 3) return true;
    if (key2 == "vocab" && depth == 3) {
      if (ev == E::key) {
        pending_token = v.get<std::string>();
      } else if (ev == E::value && v.is_number_integer()) {
        t.vocab.emplace_back(std::move(pending_token), v.get<int64_t>());
      } else {
        note("vocab entry \"" + pending_token + "\" is not an integer id");
      }
      return false;
    }
    if (key2 == "merges" && depth >= 3) {
      const std::string where = "merge #" + std::to_string(t.merges.size());
      if (depth == 3 && ev == E::value && v.is_string()) {
        // "a b": byte-level symbols never contain a space, so the single space separates the parts.
        const std::string& s = v.get_ref<const std::string&>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
          note(where + " \"" + s + "\" is not of the form \"a b\"");
        }
        t.merges.emplace_back(s.substr(0, sp), sp == std::string::npos ? "" : s.substr(sp + 1));
        return false;
      }
      if (depth == 3 && ev == E::array_start) return true;
      if (depth == 4 && ev == E::value) return true;
      if (depth == 3 && ev == E::array_end && v.size() == 2 && v[0].is_string() && v[1].is_string()) {
        t.merges.emplace_back(v[0].get<std::string>(), v[1].get<std::string>());
        return false;
      }
      if (depth == 3 && ev != E::object_end) {
        note(where + " is neither \"a b\" nor [\"a\", \"b\"]");
        t.merges.emplace_back();
      }
      return false;
    }
    return true;
  };
  return json::parse(text.begin(), text.end(), cb);
}

}  // namespace

struct Tokenizer::Impl {
  std::string source;
  bool nfc = false;
  std::vector<RegexSplitter> splitters;
  std::unique_ptr<BpeModel> bpe;
  AddedTokenMatcher raw_added, normalized_added;
  std::vector<std::string> id_token;   // id -> spelling in tokenizer.json ("" when unused)
  std::vector<std::string> id_bytes;   // id -> bytes the ByteLevel decoder produces for it
  std::vector<char> id_special;
  std::unordered_map<std::string, int32_t> token_id;
  std::unordered_map<std::string, int32_t> added_id;  // added token content -> id
  size_t distinct_ids = 0;

  void load(const json& j, ModelTables& tables);
  void load_normalizer(const json& n);
  void load_pre_tokenizer(const json& p);
  void encode_plain(std::string_view text, std::vector<int64_t>& out) const;
};

void Tokenizer::Impl::load_normalizer(const json& n) {
  const std::string type = type_of(n);
  if (n.is_null()) return;
  if (type == "NFC") {
    nfc = true;
  } else if (type == "Sequence") {
    for (const auto& sub : n.at("normalizers")) load_normalizer(sub);
  } else {
    fail(source, "normalizer \"" + type + "\" is not supported (only NFC)");
  }
}

void Tokenizer::Impl::load_pre_tokenizer(const json& p) {
  const std::string type = type_of(p);
  if (type == "Sequence") {
    for (const auto& sub : p.at("pretokenizers")) load_pre_tokenizer(sub);
  } else if (type == "Split") {
    const json& pattern = p.at("pattern");
    if (!pattern.contains("Regex")) fail(source, "Split pre-tokenizer: only a \"Regex\" pattern is supported");
    if (p.value("behavior", "") != "Isolated" || flag(p, "invert", false)) {
      fail(source, "Split pre-tokenizer: only behavior \"Isolated\" without invert is supported");
    }
    try {
      splitters.emplace_back(pattern["Regex"].get<std::string>());
    } catch (const std::invalid_argument& e) {
      fail(source, e.what());
    }
  } else if (type == "ByteLevel") {
    if (flag(p, "add_prefix_space", false)) fail(source, "ByteLevel add_prefix_space=true is not supported");
    if (flag(p, "use_regex", true)) splitters.emplace_back(kGpt2Pattern);
  } else {
    fail(source, "pre-tokenizer \"" + type + "\" is not supported (Split, ByteLevel, Sequence)");
  }
}

void Tokenizer::Impl::load(const json& j, ModelTables& tables) {
  const json& model = j.at("model");
  if (model.value("type", "BPE") != "BPE") fail(source, "model type \"" + type_of(model) + "\" is not BPE");
  if (flag(model, "byte_fallback", false)) fail(source, "BPE byte_fallback is not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && !model[key].is_null() && !model[key].get<std::string>().empty()) {
      fail(source, std::string("BPE ") + key + " is not supported");
    }
  }
  if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"].get<double>() != 0.0) {
    fail(source, "BPE dropout is not supported");
  }
  if (!j.contains("decoder") || type_of(j["decoder"]) != "ByteLevel") {
    fail(source, "decoder must be ByteLevel (this is not a byte-level BPE tokenizer)");
  }
  if (j.contains("post_processor") && !j["post_processor"].is_null() && type_of(j["post_processor"]) != "ByteLevel") {
    fail(source, "post_processor \"" + type_of(j["post_processor"]) + "\" is not supported (it would add tokens)");
  }
  if (j.contains("normalizer")) load_normalizer(j["normalizer"]);
  if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) load_pre_tokenizer(j["pre_tokenizer"]);

  if (!tables.error.empty()) fail(source, tables.error);
  if (!model.at("vocab").is_object() || tables.vocab.empty()) fail(source, "model.vocab must be a non-empty object");
  if (!model.at("merges").is_array()) fail(source, "model.merges must be an array");
  token_id.reserve(tables.vocab.size() + 64);
  int64_t max_id = -1;
  for (auto& [token, id] : tables.vocab) {
    // Ids index flat tables; a bound keeps a corrupt file from asking for gigabytes.
    if (id < 0 || id >= kMaxId) {
      fail(source, "vocab id " + std::to_string(id) + " of \"" + token + "\" is out of range (0.." +
                       std::to_string(kMaxId - 1) + ")");
    }
    token_id.emplace(std::move(token), static_cast<int32_t>(id));
    max_id = std::max(max_id, id);
  }
  tables.vocab = {};
  try {
    bpe = std::make_unique<BpeModel>(token_id, tables.merges, flag(model, "ignore_merges", false));
  } catch (const std::invalid_argument& e) {
    fail(source, e.what());
  }
  tables.merges = {};

  std::vector<AddedToken> added, raw, normalized;
  const auto vocab_count = static_cast<int32_t>(token_id.size());
  int32_t max_added = -1;
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    for (const json& t : j["added_tokens"]) {
      AddedToken a;
      a.content = t.at("content").get<std::string>();
      t.at("id").get<int32_t>();  // required by the format, though HF assigns the id itself
      a.single_word = flag(t, "single_word", false);
      a.lstrip = flag(t, "lstrip", false);
      a.rstrip = flag(t, "rstrip", false);
      a.special = flag(t, "special", false);
      a.normalized = flag(t, "normalized", !a.special);
      if (a.content.empty() || find_invalid_utf8(a.content)) fail(source, "an added token is empty or not UTF-8");
      // HF ignores the file's ids and re-adds the tokens in file order: a content already known
      // keeps its id, a new one gets the next id after the vocab. For files HF itself wrote
      // (Qwen's included) the two agree; where they do not, HF's ids are the ones models saw.
      if (const auto it = token_id.find(a.content); it != token_id.end()) {
        a.id = it->second;
      } else if (const auto ia = added_id.find(a.content); ia != added_id.end()) {
        a.id = ia->second;
      } else {
        a.id = max_added >= vocab_count ? max_added + 1 : vocab_count;
      }
      max_added = std::max(max_added, a.id);
      added_id.emplace(a.content, a.id);
      added.push_back(a);
    }
  }
  for (const AddedToken& a : added) {
    max_id = std::max<int64_t>(max_id, a.id);
    if (!a.normalized) {
      raw.push_back(a);
      continue;
    }
    // Normalized tokens are matched in normalized text, so their own content is normalized first.
    AddedToken m = a;
    std::string storage;
    if (nfc) m.content = std::string(tokenizer::nfc(a.content, storage));
    normalized.push_back(std::move(m));
  }

  const auto n = static_cast<size_t>(max_id + 1);
  id_token.assign(n, {});
  id_bytes.assign(n, {});
  id_special.assign(n, 0);
  std::vector<char> used(n, 0);
  for (const auto& [token, id] : token_id) {
    id_token[static_cast<size_t>(id)] = token;
    used[static_cast<size_t>(id)] = 1;
  }
  for (const AddedToken& a : added) {
    id_token[static_cast<size_t>(a.id)] = a.content;
    used[static_cast<size_t>(a.id)] = 1;
    id_special[static_cast<size_t>(a.id)] = a.special;
  }
  for (const AddedToken& a : added) token_id[a.content] = a.id;
  for (size_t id = 0; id < n; ++id) {
    if (!used[id]) continue;
    ++distinct_ids;
    // HF's ByteLevel decoder: a token all of whose characters are byte symbols becomes those bytes;
    // any other token (e.g. "<think> x" with a real space) passes through as its UTF-8.
    auto bytes = symbols_to_bytes(id_token[id]);
    id_bytes[id] = bytes ? std::move(*bytes) : id_token[id];
  }
  raw_added = AddedTokenMatcher(std::move(raw));
  normalized_added = AddedTokenMatcher(std::move(normalized));
}

void Tokenizer::Impl::encode_plain(std::string_view text, std::vector<int64_t>& out) const {
  thread_local std::vector<std::string_view> pieces, next_pieces;
  pieces.clear();
  pieces.push_back(text);
  for (const RegexSplitter& s : splitters) {
    next_pieces.clear();
    for (std::string_view p : pieces) s.split(p, next_pieces);
    pieces.swap(next_pieces);
  }
  for (std::string_view p : pieces) {
    if (!p.empty()) bpe->encode_word(p, out);
  }
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_json(std::string_view text, std::string_view source) {
  auto impl = std::make_unique<Impl>();
  impl->source = std::string(source);
  json j;
  ModelTables tables;
  try {
    j = parse_streaming(text, tables);
  } catch (const json::parse_error& e) {
    fail(source, std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object()) fail(source, "not a tokenizer.json (the top level is not an object)");
  try {
    impl->load(j, tables);
  } catch (const json::exception& e) {
    // at()/get<>() failures: a missing key or a value of the wrong type.
    fail(source, std::string("malformed tokenizer.json: ") + e.what());
  }
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::from_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::Input, "cannot open tokenizer file " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (!in.good() && !in.eof()) throw Error(ErrorKind::Input, "cannot read tokenizer file " + path.string());
  return from_json(ss.str(), path.string());
}

std::vector<int64_t> Tokenizer::encode(std::string_view text) const {
  if (const auto bad = find_invalid_utf8(text)) {
    throw Error(ErrorKind::Input, "text is not valid UTF-8: invalid byte 0x" +
                                      [&] {
                                        char hex[4];
                                        std::snprintf(hex, sizeof hex, "%02X", static_cast<unsigned char>(text[*bad]));
                                        return std::string(hex);
                                      }() +
                                      " at byte offset " + std::to_string(*bad));
  }
  std::vector<int64_t> out;
  out.reserve(text.size() / 3 + 4);
  std::vector<Segment> raw, norm;
  impl_->raw_added.split(text, raw);
  std::string storage;
  for (const Segment& seg : raw) {
    if (seg.id >= 0) {
      out.push_back(seg.id);
      continue;
    }
    const std::string_view normalized = impl_->nfc ? nfc(seg.text, storage) : seg.text;
    if (impl_->normalized_added.empty()) {
      impl_->encode_plain(normalized, out);
      continue;
    }
    norm.clear();
    impl_->normalized_added.split(normalized, norm);
    for (const Segment& s : norm) {
      if (s.id >= 0) {
        out.push_back(s.id);
      } else {
        impl_->encode_plain(s.text, out);
      }
    }
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  std::string bytes;
  for (const int64_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= impl_->id_token.size() || impl_->id_token[static_cast<size_t>(id)].empty()) {
      throw Error(ErrorKind::Input, "token id " + std::to_string(id) + " is not in the vocabulary of " + impl_->source);
    }
    if (skip_special_tokens && impl_->id_special[static_cast<size_t>(id)]) continue;
    bytes += impl_->id_bytes[static_cast<size_t>(id)];
  }
  return utf8_lossy(bytes);
}

std::optional<int64_t> Tokenizer::token_to_id(std::string_view token) const {
  const auto it = impl_->token_id.find(std::string(token));
  if (it == impl_->token_id.end()) return std::nullopt;
  return it->second;
}

std::string Tokenizer::id_to_token(int64_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= impl_->id_token.size() || impl_->id_token[static_cast<size_t>(id)].empty()) {
    throw Error(ErrorKind::Input, "token id " + std::to_string(id) + " is not in the vocabulary of " + impl_->source);
  }
  return impl_->id_token[static_cast<size_t>(id)];
}

int64_t Tokenizer::special_token_id(std::string_view name) const {
  const auto it = impl_->added_id.find(std::string(name));
  if (it == impl_->added_id.end()) {
    throw Error(ErrorKind::Input, "the tokenizer " + impl_->source + " has no added token \"" + std::string(name) + "\"");
  }
  return it->second;
}

bool Tokenizer::is_special(int64_t id) const {
  return id >= 0 && static_cast<size_t>(id) < impl_->id_special.size() && impl_->id_special[static_cast<size_t>(id)];
}

size_t Tokenizer::vocab_size() const { return impl_->distinct_ids; }

}  // namespace attnmap
