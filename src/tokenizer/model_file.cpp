// Tokenizer::from_model_file: the model export embeds tokenizer.json as the extra file
// attnmap/tokenizer.json. Reading it straight from the zip archive avoids loading the weights.
#include <caffe2/serialize/inline_container.h>

#include "attnmap/error.hpp"
#include "attnmap/tokenizer.hpp"

namespace attnmap {

Tokenizer Tokenizer::from_model_file(const std::filesystem::path& model_path) {
  static const std::string kRecord = "extra/attnmap/tokenizer.json";
  std::string json;
  try {
    caffe2::serialize::PyTorchStreamReader reader(model_path.string());
    if (!reader.hasRecord(kRecord)) {
      throw Error(ErrorKind::Model, model_path.string() +
                                        ": no embedded attnmap/tokenizer.json (not an attnmap export; "
                                        "re-export with tools/export.py)");
    }
    auto [data, size] = reader.getRecord(kRecord);
    json.assign(static_cast<const char*>(data.get()), size);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));  // c10 errors carry a multi-line backtrace
    throw Error(ErrorKind::Model, model_path.string() + ": cannot read it as a TorchScript archive (" + what + ")");
  }
  try {
    return from_json(json, model_path.string() + ":attnmap/tokenizer.json");
  } catch (const Error& e) {
    throw Error(ErrorKind::Model, e.what());
  }
}

}  // namespace attnmap
