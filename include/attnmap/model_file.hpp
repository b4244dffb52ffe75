// An exported model file (.pt, a TorchScript zip archive) as attnmap reads it without the weights:
// its metadata (format version and model family checked) and its embedded tokenizer. The one
// reader of the archive's extra files, so every command words a bad file the same way.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "attnmap/metadata.hpp"
#include "attnmap/tokenizer.hpp"

namespace caffe2::serialize {
class PyTorchStreamReader;
}

namespace attnmap {

class ModelFile {
 public:
  // Opens the archive (reads its directory, never the weights: a 7B export is 15 GB). Throws
  // Error(Model) naming the file when it is missing, not a file or not a TorchScript archive.
  static ModelFile open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }

  // attnmap/metadata.json, parsed: Error(Model) when the archive is not an attnmap export, of
  // another format version or of a model family this build does not support.
  ModelMetadata read_metadata() const;

  // attnmap/tokenizer.json, parsed: Error(Model) when it is absent or unreadable. Needs no metadata,
  // so `attnmap tokenize --model` reads the tokenizer of any attnmap export.
  Tokenizer read_tokenizer() const;

 private:
  std::string extra_file(const std::string& name) const;

  std::filesystem::path path_;
  std::shared_ptr<caffe2::serialize::PyTorchStreamReader> reader_;
};

}  // namespace attnmap
