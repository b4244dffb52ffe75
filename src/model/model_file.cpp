#include "attnmap/model_file.hpp"

#include <caffe2/serialize/inline_container.h>

#include "attnmap/error.hpp"
#include "model/torch_failure.hpp"

namespace attnmap {
namespace fs = std::filesystem;

namespace {

const char* kMetadataFile = "attnmap/metadata.json";
const char* kTokenizerFile = "attnmap/tokenizer.json";
const char* kExportCommand = "attnmap-export --checkpoint <hugging-face-folder> --out <model.pt>";

}  // namespace

ModelFile ModelFile::open(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw Error(ErrorKind::Model, "model '" + path.string() + "' does not exist; export one with " + kExportCommand +
                                      " or run scripts/demo.sh");
  }
  if (!fs::is_regular_file(path, ec)) {
    throw Error(ErrorKind::Model, "model '" + path.string() + "' is not a file; pass the exported .pt file");
  }
  ModelFile file;
  file.path_ = path;
  try {
    file.reader_ = std::make_shared<caffe2::serialize::PyTorchStreamReader>(path.string());
  } catch (const std::exception& e) {
    const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
    throw Error(ErrorKind::Model, "cannot read model '" + path.string() + "' as a TorchScript archive (" +
                                      torch_failure_line(torch_error ? torch_error->what_without_backtrace()
                                                                     : e.what()) +
                                      "); it must be a file written by " + kExportCommand);
  }
  return file;
}

std::string ModelFile::extra_file(const std::string& name) const {
  const std::string record = "extra/" + name;
  if (!reader_->hasRecord(record)) {
    throw Error(ErrorKind::Model, "model '" + path_.string() +
                                      "' is a TorchScript file but not an attnmap export (no " + name +
                                      "); export its checkpoint with " + kExportCommand);
  }
  auto [data, size] = reader_->getRecord(record);
  std::string text(static_cast<const char*>(data.get()), size);
  if (text.empty()) {
    throw Error(ErrorKind::Model, "model '" + path_.string() + "' has an empty " + name +
                                      "; export the checkpoint again with " + kExportCommand);
  }
  return text;
}

ModelMetadata ModelFile::read_metadata() const {
  return ModelMetadata::parse(extra_file(kMetadataFile), path_.string());
}

Tokenizer ModelFile::read_tokenizer() const {
  const std::string json = extra_file(kTokenizerFile);
  try {
    return Tokenizer::from_json(json, path_.string() + ":" + kTokenizerFile);
  } catch (const Error& e) {
    throw Error(ErrorKind::Model,
                "model '" + path_.string() + "' carries a tokenizer attnmap cannot read: " + e.what());
  }
}

}  // namespace attnmap
