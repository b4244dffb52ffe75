// The tokenizer against Hugging Face `tokenizers` 0.23.3: every expected id and decoded string in
// tests/data/tokenizer/ was produced by attnmap_tools.testing.tokenizer_reference (tools/) from HF, never by attnmap.
#include <gtest/gtest.h>
#include <zlib.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>
#include <thread>

#include "attnmap/error.hpp"
#include "attnmap/tokenizer.hpp"

namespace {

using attnmap::Error;
using attnmap::ErrorKind;
using attnmap::Tokenizer;
using json = nlohmann::json;

const std::string kDir = std::string(ATTNMAP_TEST_DATA_DIR) + "/tokenizer/";

std::string gunzip_file(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot open " + path);
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  const bool bad = n < 0;
  gzclose(f);
  if (bad) throw std::runtime_error("corrupt gzip " + path);
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<json> read_jsonl_gz(const std::string& path) {
  std::vector<json> rows;
  std::istringstream in(gunzip_file(path));
  std::string line;
  while (std::getline(in, line)) rows.push_back(json::parse(line));
  return rows;
}

const std::string& qwen_json() {
  static const std::string s = gunzip_file(kDir + "qwen_tokenizer.json.gz");
  return s;
}

const Tokenizer& qwen() {
  static const Tokenizer t = Tokenizer::from_json(qwen_json(), "qwen_tokenizer.json");
  return t;
}

std::string show(const std::string& s) { return json(s).dump().substr(0, 200); }

// Compares every row's ids; reports the first few mismatches with their text.
void expect_ids(const Tokenizer& tok, const std::vector<json>& rows) {
  size_t bad = 0;
  for (const json& r : rows) {
    const std::string text = r["text"];
    const auto expected = r["ids"].get<std::vector<int64_t>>();
    const auto got = tok.encode(text);
    if (got != expected && ++bad <= 5) {
      ADD_FAILURE() << "text " << show(text) << "\n  HF:   " << json(expected).dump().substr(0, 300)
                    << "\n  ours: " << json(got).dump().substr(0, 300);
    }
  }
  EXPECT_EQ(bad, 0u) << "of " << rows.size() << " strings differ from HF";
}

TEST(Tokenizer, CorpusMatchesHuggingFace) {
  const auto rows = read_jsonl_gz(kDir + "corpus.jsonl.gz");
  ASSERT_GE(rows.size(), 300u);
  expect_ids(qwen(), rows);
}

TEST(Tokenizer, RandomStringsMatchHuggingFace) {
  const auto rows = read_jsonl_gz(kDir + "random.jsonl.gz");
  ASSERT_GE(rows.size(), 2000u);
  expect_ids(qwen(), rows);
}

TEST(Tokenizer, DecodeOfEncodeIsNfcAndMatchesHuggingFace) {
  for (const json& r : read_jsonl_gz(kDir + "corpus.jsonl.gz")) {
    const std::string text = r["text"];
    const std::string decoded = qwen().decode(qwen().encode(text));
    EXPECT_EQ(decoded, r["nfc"].get<std::string>()) << show(text);
    EXPECT_EQ(decoded, r["decoded"].get<std::string>()) << show(text);
  }
}

TEST(Tokenizer, DecodeMatchesHuggingFaceOnPartialAndSpecialTokens) {
  const json cases = json::parse(read_file(kDir + "decode.json"));
  ASSERT_FALSE(cases.empty());
  for (const json& c : cases) {
    const auto ids = c["ids"].get<std::vector<int64_t>>();
    EXPECT_EQ(qwen().decode(ids), c["decoded"].get<std::string>()) << c["ids"].dump();
    EXPECT_EQ(qwen().decode(ids, true), c["decoded_skip_special"].get<std::string>()) << c["ids"].dump();
  }
}

TEST(Tokenizer, MergesInStringFormGiveTheSameIds) {
  json j = json::parse(qwen_json());
  ASSERT_TRUE(j["model"]["merges"][0].is_array()) << "fixture changed: expected the list form";
  for (json& m : j["model"]["merges"]) m = m[0].get<std::string>() + " " + m[1].get<std::string>();
  const Tokenizer tok = Tokenizer::from_json(j.dump());
  auto rows = read_jsonl_gz(kDir + "corpus.jsonl.gz");
  rows.resize(300);
  expect_ids(tok, rows);
}

TEST(Tokenizer, AddedTokenFlagsFollowHuggingFace) {
  // lstrip / rstrip / single_word / normalized, swapped into the real tokenizer as the script did.
  const json variant = json::parse(read_file(kDir + "flags_variant.json"));
  json j = json::parse(qwen_json());
  int64_t next_id = 0;
  for (const json& t : j["added_tokens"]) next_id = std::max(next_id, t["id"].get<int64_t>() + 1);
  for (const json& f : variant["added_tokens"]) {
    bool found = false;
    for (json& t : j["added_tokens"]) {
      if (t["content"] == f["content"]) {
        t.update(f);
        found = true;
      }
    }
    if (!found) {
      json t = f;
      t["id"] = next_id++;
      t["special"] = false;
      j["added_tokens"].push_back(t);
    }
  }
  const Tokenizer tok = Tokenizer::from_json(j.dump());
  std::vector<json> cases(variant["cases"].begin(), variant["cases"].end());
  ASSERT_GE(cases.size(), 10u);
  expect_ids(tok, cases);
  for (const json& c : cases) {
    EXPECT_EQ(tok.decode(c["ids"].get<std::vector<int64_t>>()), c["decoded"].get<std::string>()) << show(c["text"]);
  }
}

TEST(Tokenizer, Lookups) {
  const Tokenizer& t = qwen();
  EXPECT_EQ(t.vocab_size(), 151669u);  // HF get_vocab_size(with_added_tokens=True)
  EXPECT_EQ(t.special_token_id("<|image_pad|>"), 151655);
  EXPECT_EQ(t.special_token_id("<|im_end|>"), 151645);
  EXPECT_EQ(t.token_to_id("<|vision_start|>"), std::optional<int64_t>(151652));
  EXPECT_EQ(t.token_to_id("Hello"), std::optional<int64_t>(9707));
  EXPECT_EQ(t.token_to_id("Ġworld"), t.encode(" world").at(0));
  EXPECT_FALSE(t.token_to_id("<|not_special|>").has_value());
  EXPECT_EQ(t.id_to_token(9707), "Hello");
  EXPECT_EQ(t.id_to_token(151644), "<|im_start|>");
  EXPECT_TRUE(t.is_special(151644));
  EXPECT_FALSE(t.is_special(151657));  // <tool_call> is added but not special
  EXPECT_FALSE(t.is_special(9707));
  EXPECT_THROW(t.special_token_id("<|nope|>"), Error);
  EXPECT_THROW(t.id_to_token(-1), Error);
  EXPECT_THROW(t.id_to_token(10'000'000), Error);
  EXPECT_THROW(t.decode({151669}), Error);
}

ErrorKind kind_of_encode(std::string_view text, std::string* message) {
  try {
    qwen().encode(text);
  } catch (const Error& e) {
    *message = e.what();
    return e.kind();
  }
  return ErrorKind::Internal;
}

TEST(Tokenizer, InvalidUtf8NamesTheByteOffset) {
  const std::pair<std::string, size_t> cases[] = {
      {std::string("abc\xff"), 3},          {std::string("ok \xe4\xbd"), 3},      // stray byte; truncated
      {std::string("\xc0\xaf"), 0},         {std::string("x\xed\xa0\x80y"), 1},   // overlong; surrogate
      {std::string("\xf4\x90\x80\x80"), 0}, {std::string("\xe4\xbd\xa0\x80"), 3},  // > U+10FFFF; lone continuation
      {std::string("<|im_start|>\xfe"), 12},
  };
  for (const auto& [text, offset] : cases) {
    std::string msg;
    EXPECT_EQ(kind_of_encode(text, &msg), ErrorKind::Input) << show(text);
    EXPECT_NE(msg.find("byte offset " + std::to_string(offset)), std::string::npos) << msg;
    EXPECT_NE(msg.find("UTF-8"), std::string::npos) << msg;
  }
}

std::string load_error(const std::string& json_text) {
  try {
    Tokenizer::from_json(json_text, "bad/tokenizer.json");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Input);
    return e.what();
  }
  return "(no error)";
}

TEST(Tokenizer, MalformedTokenizerJsonNamesTheFileAndTheProblem) {
  const std::string base = R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                               "decoder": {"type": "ByteLevel"}})";
  for (const auto& [text, what] : std::vector<std::pair<std::string, std::string>>{
           {"{not json", "not valid JSON"},
           {"[1, 2]", "top level"},
           {R"({"decoder": {"type": "ByteLevel"}})", "model"},
           {base, "no token for byte"},
           {R"({"model": {"type": "WordPiece", "vocab": {}}, "decoder": {"type": "ByteLevel"}})", "not BPE"},
           {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]}, "decoder": {"type": "ByteLevel"}})",
            "merge #0"},
           {R"({"model": {"type": "BPE", "vocab": {"a": "x"}, "merges": []}, "decoder": {"type": "ByteLevel"}})",
            "vocab entry \"a\" is not an integer id"},
           {R"({"model": {"type": "BPE", "vocab": {"a": 2000000000}, "merges": []}, "decoder": {"type": "ByteLevel"}})",
            "vocab id 2000000000 of \"a\" is out of range"},
           {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a"]]}, "decoder": {"type": "ByteLevel"}})",
            "merge #0 is neither"},
           {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "decoder": {"type": "WordPiece"}})",
            "decoder"},
           {R"({"normalizer": {"type": "Lowercase"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                "decoder": {"type": "ByteLevel"}})", "Lowercase"},
       }) {
    const std::string msg = load_error(text);
    EXPECT_EQ(msg.rfind("bad/tokenizer.json: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
  }
  // A merge whose parts are not in the vocab.
  json j = json::parse(qwen_json());
  j["model"]["merges"][5] = json::array({"Ġ", "notintokens"});
  const std::string msg = load_error(j.dump());
  EXPECT_NE(msg.find("merge #5"), std::string::npos) << msg;
}

TEST(Tokenizer, FromFileNamesAMissingFile) {
  try {
    Tokenizer::from_file("/nonexistent/dir/tokenizer.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Input);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/tokenizer.json"), std::string::npos);
  }
}

TEST(Tokenizer, EncodeFromSeveralThreadsMatchesHuggingFace) {
  auto rows = read_jsonl_gz(kDir + "random.jsonl.gz");
  std::vector<int> bad(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = static_cast<size_t>(t); i < rows.size(); i += 2) {  // overlapping halves
        if (qwen().encode(rows[i]["text"].get<std::string>()) != rows[i]["ids"].get<std::vector<int64_t>>()) ++bad[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad, std::vector<int>(4, 0));
}

}  // namespace
