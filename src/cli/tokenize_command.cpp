#include "cli/tokenize_command.hpp"

#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "attnmap/error.hpp"
#include "attnmap/model_file.hpp"
#include "attnmap/tokenizer.hpp"
#include "cli/cli_common.hpp"

namespace attnmap::cli {
namespace {

struct TokenizeOptions {
  std::string tokenizer_path;  // tokenizer.json
  std::string model_path;      // exported model whose embedded tokenizer.json is used
  std::string text;            // text to encode
  std::string text_file;       // or: file whose bytes are the text
  bool decode = false;         // also print the token strings and the decoded text
};

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::Input, "cannot open text file " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void run_tokenize(const TokenizeOptions& o) {
  const Tokenizer tok = o.model_path.empty() ? Tokenizer::from_file(o.tokenizer_path)
                                             : ModelFile::open(o.model_path).read_tokenizer();
  const std::string text = o.text_file.empty() ? o.text : read_text_file(o.text_file);
  const std::vector<int64_t> ids = tok.encode(text);
  nlohmann::json out;
  if (!o.decode) {
    out = ids;
  } else {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (int64_t id : ids) tokens.push_back(tok.id_to_token(id));
    out = {{"ids", ids}, {"tokens", tokens}, {"decoded", tok.decode(ids)}};
  }
  // Byte-level symbols and the decoded text are valid UTF-8, so dump() cannot throw here.
  std::cout << out.dump() << "\n";
}

}  // namespace

CLI::App* add_tokenize_command(CLI::App& app, int& exit_code) {
  auto opts = std::make_shared<TokenizeOptions>();
  CLI::App* sub = app.add_subcommand("tokenize", "Print the token ids of a text as a JSON array");
  auto* tok_opt = sub->add_option("--tokenizer", opts->tokenizer_path, "tokenizer.json (Hugging Face format)");
  auto* model_opt = sub->add_option("--model", opts->model_path, "exported model .pt: use its embedded tokenizer");
  tok_opt->excludes(model_opt);
  auto* text_opt = sub->add_option("--text", opts->text, "text to tokenize (UTF-8)");
  auto* file_opt = sub->add_option("--text-file", opts->text_file, "read the text from this file instead");
  text_opt->excludes(file_opt);
  sub->add_flag("--decode", opts->decode,
                "print {\"ids\": [...], \"tokens\": [...], \"decoded\": \"...\"} instead of the ids alone");
  sub->callback([opts, &exit_code, tok_opt, model_opt, text_opt, file_opt] {
    if (tok_opt->count() + model_opt->count() == 0) throw CLI::RequiredError("--tokenizer or --model");
    if (text_opt->count() + file_opt->count() == 0) throw CLI::RequiredError("--text or --text-file");
    exit_code = guarded([&] {
      run_tokenize(*opts);
      return 0;
    });
  });
  return sub;
}

}  // namespace attnmap::cli
