// The option parsers the CLI calls once: good values become typed values, bad ones one-line
// Error(Usage) messages naming the flag, the value and what to use.
#include <gtest/gtest.h>

#include <array>
#include <functional>
#include <optional>
#include <string>

#include "attnmap/compare.hpp"
#include "attnmap/error.hpp"
#include "attnmap/options.hpp"

namespace {

// The usage message f throws; nullopt when it throws nothing (or another kind), so a test cannot pass by accident.
std::optional<std::string> usage_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const attnmap::Error& e) {
    if (e.kind() == attnmap::ErrorKind::Usage) return std::string(e.what());
  }
  return std::nullopt;
}

void expect_usage(const std::function<void()>& f, const std::vector<std::string>& words) {
  const auto message = usage_message(f);
  ASSERT_TRUE(message.has_value()) << "no usage error for " << words.front();
  for (const std::string& word : words) EXPECT_NE(message->find(word), std::string::npos) << *message;
  EXPECT_EQ(message->find('\n'), std::string::npos) << *message;
}

}  // namespace

TEST(Options, LayerSelectionParsesOnceAndResolvesAgainstTheModel) {
  const attnmap::LayerSelection all = attnmap::parse_layer_selection(" all ");
  EXPECT_TRUE(all.all);
  EXPECT_EQ(all.resolve(3), (std::vector<int>{0, 1, 2}));
  const attnmap::LayerSelection mix = attnmap::parse_layer_selection("30-32, 2,7");
  EXPECT_FALSE(mix.all);
  EXPECT_EQ(mix.text(), "30-32,2,7");
  EXPECT_EQ(mix.resolve(36), (std::vector<int>{30, 31, 32, 2, 7}));
  EXPECT_EQ(attnmap::parse_layer_selection(mix.text()), mix);
  expect_usage([&] { mix.resolve(32); }, {"--layers", "30-32,2,7", "out of range", "0-31"});
  expect_usage([] { attnmap::parse_layer_selection("x"); }, {"--layers", "'x'", "not a layer number", "use all"});
  expect_usage([] { attnmap::parse_layer_selection("5-2"); }, {"--layers", "5-2", "backwards"});
  expect_usage([] { attnmap::parse_layer_selection("0-3,3"); }, {"--layers", "listed twice"});
  expect_usage([] { attnmap::parse_layer_selection(""); }, {"--layers", "empty"});
}

TEST(Options, HeadSelection) {
  EXPECT_EQ(attnmap::parse_head_selection("mean").kind, attnmap::HeadSelection::Kind::Mean);
  EXPECT_EQ(attnmap::parse_head_selection("max").kind, attnmap::HeadSelection::Kind::Max);
  const attnmap::HeadSelection three = attnmap::parse_head_selection("3");
  EXPECT_EQ(three.kind, attnmap::HeadSelection::Kind::Index);
  EXPECT_EQ(three.index, 3);
  EXPECT_EQ(three.text(), "3");
  EXPECT_NO_THROW(three.check(4));
  expect_usage([&] { three.check(3); }, {"--heads '3'", "0..2", "3 attention heads"});
  for (const char* bad : {"", "avg", "-1", "1.5", "2x", "99999999999"}) {
    expect_usage([&] { attnmap::parse_head_selection(bad); }, {"--heads", "use mean, max or a head index"});
  }
}

TEST(Options, QuerySpec) {
  using Kind = attnmap::QuerySpec::Kind;
  EXPECT_EQ(attnmap::parse_query_spec("prompt").kind, Kind::Prompt);
  EXPECT_EQ(attnmap::parse_query_spec("last").kind, Kind::Last);
  EXPECT_EQ(attnmap::parse_query_spec("all").kind, Kind::All);
  const attnmap::QuerySpec rows = attnmap::parse_query_spec("5,7,-1");
  EXPECT_EQ(rows.kind, Kind::Rows);
  EXPECT_EQ(rows.rows, (std::vector<int64_t>{5, 7, -1}));
  EXPECT_EQ(rows.text(), "5,7,-1");
  const attnmap::QuerySpec word = attnmap::parse_query_spec("word:Circle");
  EXPECT_EQ(word.kind, Kind::Word);
  EXPECT_EQ(word.word, "Circle");
  EXPECT_EQ(word.text(), "word:Circle");
  EXPECT_EQ(attnmap::parse_query_spec("answer").kind, Kind::Answer);
  EXPECT_TRUE(attnmap::parse_query_spec("answer").is_answer());
  EXPECT_FALSE(word.is_answer());
  const attnmap::QuerySpec answer_word = attnmap::parse_query_spec("answer:猫");
  EXPECT_EQ(answer_word.kind, Kind::AnswerWord);
  EXPECT_EQ(answer_word.word, "猫");
  EXPECT_EQ(answer_word.text(), "answer:猫");
  const attnmap::QuerySpec answer_index = attnmap::parse_query_spec("answer:-2");
  EXPECT_EQ(answer_index.kind, Kind::AnswerIndex);
  EXPECT_EQ(answer_index.rows, (std::vector<int64_t>{-2}));
  EXPECT_EQ(answer_index.text(), "answer:-2");
  EXPECT_EQ(attnmap::parse_query_spec("answer:2b").kind, Kind::AnswerWord);  // not an integer: a word
  expect_usage([] { attnmap::parse_query_spec("answer:"); }, {"--query", "nothing after 'answer:'"});
  expect_usage([] { attnmap::parse_query_spec("first"); }, {"--query 'first'", "unknown query", "word:WORD"});
  expect_usage([] { attnmap::parse_query_spec("5,x"); }, {"--query", "'x' is not a position"});
  expect_usage([] { attnmap::parse_query_spec("word:"); }, {"--query", "the word is empty"});
  expect_usage([] { attnmap::parse_query_spec("word:\xff"); }, {"--query", "not valid UTF-8"});
  expect_usage([] { attnmap::parse_query_spec(""); }, {"--query"});
}

TEST(Options, Shard) {
  EXPECT_EQ(attnmap::parse_shard("0/1"), (attnmap::Shard{0, 1}));
  EXPECT_EQ(attnmap::parse_shard("3/8"), (attnmap::Shard{3, 8}));
  for (const char* bad : {"", "3", "a/b", "1/2/3", "1 /2", "0/"}) {
    expect_usage([&] { attnmap::parse_shard(bad); }, {"--shard", "use K/N"});
  }
  for (const char* bad : {"3/3", "-1/3", "0/0"}) {
    expect_usage([&] { attnmap::parse_shard(bad); }, {"--shard", "0 <= K < N"});
  }
}

TEST(Options, Metric) {
  EXPECT_EQ(attnmap::parse_metric("cosine"), attnmap::CompareMetric::Cosine);
  expect_usage([] { attnmap::parse_metric("l2"); }, {"--metric 'l2'", "max-abs, cosine, iou-top-k or peak-shift"});
}

TEST(Options, DeviceChoice) {
  using attnmap::DeviceChoice;
  const DeviceChoice automatic = attnmap::parse_device_choice("auto", "auto");
  EXPECT_EQ(automatic.device, DeviceChoice::Device::Auto);
  EXPECT_EQ(automatic.dtype, DeviceChoice::Dtype::Auto);
  const DeviceChoice gpu2 = attnmap::parse_device_choice("cuda:2", "bfloat16");
  EXPECT_EQ(gpu2.device, DeviceChoice::Device::Cuda);
  EXPECT_EQ(gpu2.cuda_index, 2);
  EXPECT_EQ(gpu2.dtype, DeviceChoice::Dtype::BFloat16);
  EXPECT_EQ(gpu2.device_text(), "cuda:2");
  EXPECT_EQ(gpu2.dtype_text(), "bf16");
  EXPECT_EQ(attnmap::parse_device_choice("cuda", "fp16").cuda_index, -1);
  EXPECT_EQ(attnmap::parse_device_choice("cpu", "fp32").device_text(), "cpu");
  for (const std::string bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "CPU", ""}) {
    expect_usage([&] { attnmap::parse_device_choice(bad, "auto"); },
                 {"--device '" + bad + "'", "use auto, cpu, cuda or cuda:N"});
  }
  for (const std::string bad : {"f32", "int8", ""}) {
    expect_usage([&] { attnmap::parse_device_choice("cpu", bad); }, {"--dtype '" + bad + "'", "use auto, fp32, bf16 or fp16"});
  }
}

TEST(Options, VisionBlocksShareTheLayerSyntaxAndNameTheirFlag) {
  EXPECT_FALSE(attnmap::parse_vision_blocks("none").has_value());
  EXPECT_FALSE(attnmap::parse_vision_blocks(" none ").has_value());
  const auto all = attnmap::parse_vision_blocks("all");
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->resolve(32, attnmap::kVisionBlockNames).size(), 32u);
  const auto some = attnmap::parse_vision_blocks("7,15,23,31");
  ASSERT_TRUE(some.has_value());
  EXPECT_EQ(some->resolve(32, attnmap::kVisionBlockNames), (std::vector<int>{7, 15, 23, 31}));
  EXPECT_EQ(attnmap::parse_vision_blocks("0-3")->resolve(32, attnmap::kVisionBlockNames), (std::vector<int>{0, 1, 2, 3}));
  expect_usage([] { attnmap::parse_vision_blocks("x"); }, {"--vision-blocks 'x'", "not a block number", "use none, all"});
  expect_usage([] { attnmap::parse_vision_blocks("3,3"); }, {"--vision-blocks", "block 3 is listed twice"});
  expect_usage([] { attnmap::parse_vision_blocks("0-40")->resolve(32, attnmap::kVisionBlockNames); },
               {"--vision-blocks '0-40'", "block 32 is out of range", "32 vision blocks", "0-31"});
  // --layers keeps its own words.
  expect_usage([] { attnmap::parse_layer_selection("9").resolve(4); }, {"--layers '9'", "layer 9", "4 decoder layers"});
}

TEST(Options, VisionQueryParsesEachKindAndRoundTripsItsText) {
  using Kind = attnmap::VisionQuery::Kind;
  EXPECT_EQ(attnmap::parse_vision_query("mean").kind, Kind::Mean);
  const attnmap::VisionQuery box = attnmap::parse_vision_query("box:10,20.5,110,90");
  EXPECT_EQ(box.kind, Kind::Box);
  EXPECT_EQ(box.box, (std::array<double, 4>{10, 20.5, 110, 90}));
  EXPECT_EQ(box.text(), "box:10,20.5,110,90");
  EXPECT_EQ(attnmap::parse_vision_query(box.text()), box);
  EXPECT_EQ(attnmap::parse_vision_query("box:0,0,4000000,3000000").text(), "box:0,0,4000000,3000000");
  const attnmap::VisionQuery peak = attnmap::parse_vision_query("text-peak");
  EXPECT_EQ(peak.kind, Kind::TextPeak);
  EXPECT_FALSE(peak.layer.has_value());
  EXPECT_EQ(peak.text(), "text-peak");
  EXPECT_EQ(attnmap::parse_vision_query("text-peak:12").layer, 12);
  EXPECT_EQ(attnmap::parse_vision_query("text-peak:12").text(), "text-peak:12");
  expect_usage([] { attnmap::parse_vision_query("centre"); }, {"--vision-query 'centre'", "unknown", "use mean"});
  expect_usage([] { attnmap::parse_vision_query("box:1,2,3"); }, {"four numbers"});
  expect_usage([] { attnmap::parse_vision_query("box:1,2,3,4,"); }, {"four numbers"});
  expect_usage([] { attnmap::parse_vision_query("box:1,2,3,x"); }, {"'x' is not a number"});
  expect_usage([] { attnmap::parse_vision_query("box:-1,2,3,4"); }, {"negative"});
  expect_usage([] { attnmap::parse_vision_query("box:5,2,5,4"); }, {"box is empty", "x0 < x1"});
  expect_usage([] { attnmap::parse_vision_query("box:1,2,3,nan"); }, {"not a number"});
  expect_usage([] { attnmap::parse_vision_query("text-peak:"); }, {"not a decoder layer number"});
  expect_usage([] { attnmap::parse_vision_query("text-peak:-1"); }, {"not a decoder layer number"});
}
