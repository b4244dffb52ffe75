// Byte-level BPE tokenizer (the Qwen2 / GPT-2 family) read from a Hugging Face tokenizer.json.
// encode() gives the same ids as HF `tokenizers` Tokenizer.encode(text).ids for this family:
// added tokens split out first, NFC on the rest, the Split regex of the file, byte-level BPE.
// No BOS/EOS is added (Qwen adds none). All const methods are safe to call from several threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace attnmap {

class Tokenizer {
 public:
  // Throws Error(ErrorKind::Input) naming the file when it is unreadable or not a supported
  // byte-level BPE tokenizer.json.
  static Tokenizer from_file(const std::filesystem::path& path);
  // `source` names the JSON's origin in error messages (a path, "model.pt:attnmap/tokenizer.json").
  static Tokenizer from_json(std::string_view json, std::string_view source = "tokenizer.json");
  // (The tokenizer embedded in an exported model: ModelFile::read_tokenizer, attnmap/model_file.hpp.)

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Throws Error(ErrorKind::Input) naming the byte offset when `text` is not valid UTF-8.
  std::vector<int64_t> encode(std::string_view text) const;
  // Concatenates the tokens' bytes; invalid UTF-8 in the result becomes U+FFFD (as HF does).
  // Special tokens are kept unless skip_special_tokens. Throws ErrorKind::Input on an unknown id.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = false) const;

  // Tokens are spelled as in tokenizer.json: byte-level symbols ("Ġhello") or the added token text.
  std::optional<int64_t> token_to_id(std::string_view token) const;
  // Throws Error(ErrorKind::Input) on an unknown id.
  std::string id_to_token(int64_t id) const;
  // Id of an added token such as "<|image_pad|>"; throws Error(ErrorKind::Input) when there is none.
  int64_t special_token_id(std::string_view name) const;
  bool is_special(int64_t id) const;
  // Number of distinct ids, added tokens included (HF get_vocab_size(with_added_tokens=True)).
  size_t vocab_size() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace attnmap
