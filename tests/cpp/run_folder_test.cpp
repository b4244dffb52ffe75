// The output module: file names, the one completeness rule, RunRecord's JSON round trip and its
// checks on hostile documents, and the all-or-nothing folder writer.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>

#include "test_files.hpp"
#include "attnmap/error.hpp"
#include "attnmap/run_folder.hpp"

namespace fs = std::filesystem;
using attnmap::RunRecord;
namespace output = attnmap::output;

namespace {

fs::path fresh_dir(const std::string& name) { return attnmap_test::fresh_dir("run_folder", name); }

void write(const fs::path& path, const std::string& text) { attnmap_test::write_bytes(path, text); }

// The Error thrown by f; nullopt when it throws nothing, so an expected error cannot pass unseen.
std::optional<attnmap::Error> error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const attnmap::Error& e) {
    return e;
  }
  return std::nullopt;
}

RunRecord full_record() {
  RunRecord r;
  r.attnmap_version = "0.1.0";
  r.model = {"models/demo.pt", std::string(64, 'a'), "qwen2_5_vl", "demo", "float32", 1,
             nlohmann::json{{"text", {{"num_hidden_layers", 4}}}, {"focus_layer", 2}}};
  r.options.query = attnmap::parse_query_spec("word:circle");
  r.options.layers = attnmap::parse_layer_selection("0-1,3");
  r.options.heads = attnmap::parse_head_selection("2");
  r.options.colormap = "viridis";
  r.options.alpha = 0.25;
  r.options.blur = 1.5;
  r.options.predict = false;
  r.options.system_prompt = "Be brief.";
  r.options.min_pixels = 3136;
  r.options.max_pixels = 12845056;
  r.device = "cpu";
  r.dtype = "float32";
  r.image = {"in.png", 64, 48, 56, 56};
  r.grid = {1, 4, 4, 2, 2};
  r.id = "in";
  r.prompt = "What color is the circle? \xe2\xad\x90";
  r.token_ids = {151644, 8948, 151655};
  r.token_strings = {"<|im_start|>", "system", "<|image_pad|>"};
  r.image_token_span = {15, 19};
  r.prompt_token_span = {20, 27};
  r.query_positions = {20, 21, 26};
  r.layers = {{0, 0.0, 0.01, 0.4, 5.1, 0.25}, {1, 1e-9, 0.125, 0.3333333333333333, 1.0 / 3.0, 0.5}, {3, 0, 0.5, 1, 0, 1}};
  r.maps_shape = {3, 2, 2};
  r.focus_layer = 2;
  r.prediction = attnmap::Prediction{1234, "\xc4\xa0red", " red", 0.93};
  r.timings = {{"decode", 1.5}, {"preprocess", 2}, {"tokenize", 0.25}, {"forward", 100}, {"maps", 3},
               {"render", 4}, {"write", 5}, {"total", 115.75}};
  r.peak_device_memory_mib = 17012.4;
  r.answer = attnmap::AnswerRecord{"Red\xe7\x8c\xab.",
                                   {{6033, "Red", "Red", 0.91, 27}, {100, "\xe7\x8c\xab", "\xe7\x8c\xab", 0.5, 28}},
                                   true, 32, 1.05, {1}, "index", {2, 3, 2, 2}};
  r.baseline = attnmap::BaselineRecord{"Write a general description of the image.", {1, 2, 3}, {2}, 1e-6,
                                       {{0, 0, 0.1, 0.5, 1.0, 0.3}}, {3, 2, 2}};
  r.viewer = attnmap::ViewerRecord{"viewer.html", "no-per-query", 123456, {"per-head rows dropped"}};
  r.vision = attnmap::VisionRecord{"7,15", "text-peak:3", "mean",
                                   {{7, "full", 0, 0.5, 1}, {15, "window", 0, 0.25, 1.0000001}},
                                   {8, 9, 12, 13}, attnmap::VisionRecord::Peak{3, 0, 1, 2, 0.75}, 112, 14,
                                   {2, 4, 4}};
  return r;
}

nlohmann::json with(nlohmann::json doc, const nlohmann::json::json_pointer& at, const nlohmann::json& value) {
  doc[at] = value;
  return doc;
}

}  // namespace

TEST(RunFolderFiles, NamesAreTheDocumentedOnes) {
  EXPECT_EQ(output::layer_file_name(0), "layer_00.jpg");
  EXPECT_EQ(output::layer_file_name(7), "layer_07.jpg");
  EXPECT_EQ(output::layer_file_name(35), "layer_35.jpg");
  EXPECT_EQ(output::layer_file_name(123), "layer_123.jpg");
  EXPECT_EQ(output::summary_file_name({0, 1}), "summary.jsonl");
  EXPECT_EQ(output::summary_file_name({2, 8}), "summary.shard-2-of-8.jsonl");
  EXPECT_EQ(output::index_file_name({0, 1}), "index.html");
  EXPECT_EQ(output::index_file_name({2, 8}), "index.shard-2-of-8.html");
  EXPECT_EQ(output::answer_strip_file_name(7), "answer_strip_layer_07.jpg");
  EXPECT_EQ(output::relative_layer_file_name(12), "relative_layer_12.jpg");
  EXPECT_EQ(output::vision_block_file_name(7), "vision_block_07.jpg");
  EXPECT_STREQ(output::kVisionMapsFile, "vision_maps.npy");
  EXPECT_STREQ(output::kVisionGridFile, "vision_grid.jpg");
  EXPECT_STREQ(output::kViewerFile, "viewer.html");
  EXPECT_STREQ(output::kAnswerMapsFile, "answer_maps.npy");
  EXPECT_STREQ(output::kRelativeMapsFile, "relative_maps.npy");
  EXPECT_STREQ(output::kAttentionFile, "attention.json");
  EXPECT_STREQ(output::kMapsFile, "maps.npy");
  EXPECT_STREQ(output::kGridFile, "grid.jpg");
}

TEST(RunFolderFiles, CompleteMeansAttentionJsonAndMapsNpy) {
  const fs::path dir = fresh_dir("complete");
  EXPECT_FALSE(output::is_complete(dir / "missing"));
  EXPECT_FALSE(output::is_complete(dir));
  write(dir / "maps.npy", "x");
  EXPECT_FALSE(output::is_complete(dir)) << "maps.npy alone: killed before attention.json";
  write(dir / "attention.json", "{}");
  EXPECT_TRUE(output::is_complete(dir)) << "contents are not parsed: compare reports a damaged file by name";
  fs::remove(dir / "maps.npy");
  EXPECT_FALSE(output::is_complete(dir)) << "attention.json without maps.npy";
  fs::create_directory(dir / "maps.npy");
  EXPECT_FALSE(output::is_complete(dir)) << "a folder named maps.npy is not a file";
}

TEST(RunRecord, RoundTripsThroughJson) {
  const RunRecord r = full_record();
  const std::string text = r.to_json().dump(2);
  const RunRecord back = RunRecord::from_json(nlohmann::json::parse(text), "attention.json");
  EXPECT_EQ(back, r);
  EXPECT_EQ(back.recorded_model_layers(), 4);
  // Defaults round-trip too: no prediction, no focus layer, no peak memory.
  RunRecord bare = full_record();
  bare.prediction.reset();
  bare.focus_layer.reset();
  bare.peak_device_memory_mib.reset();
  bare.answer.reset();
  bare.baseline.reset();
  bare.viewer.reset();
  bare.vision.reset();
  bare.options.query = {};
  bare.options.layers = {};
  bare.options.heads = attnmap::parse_head_selection("max");
  EXPECT_EQ(RunRecord::from_json(nlohmann::json::parse(bare.to_json().dump()), "a.json"), bare);
}

TEST(RunRecord, WritesTheDocumentedKeysInOrder) {
  const nlohmann::ordered_json doc = full_record().to_json();
  std::vector<std::string> keys;
  for (const auto& [key, value] : doc.items()) keys.push_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{"schema_version", "attnmap_version", "model", "options", "device", "dtype",
                                            "image", "grid", "id", "prompt", "tokens", "image_token_span", "image_token_runs",
                                            "prompt_token_span", "query_positions", "layers", "maps", "focus_layer",
                                            "prediction", "timings_ms", "peak_device_memory_mib", "answer",
                                            "baseline", "viewer", "vision"}));
  EXPECT_EQ(doc["schema_version"], attnmap::kAttentionSchemaVersion);
  EXPECT_EQ(doc["options"]["query"], "word:circle");
  EXPECT_EQ(doc["options"]["layers"], "0-1,3");
  EXPECT_EQ(doc["options"]["heads"], "2");
  EXPECT_EQ(doc["maps"]["file"], "maps.npy");
  EXPECT_EQ(doc["vision"]["maps"]["file"], "vision_maps.npy");
  EXPECT_EQ(doc["vision"]["blocks"][1]["attention"], "window");
  EXPECT_EQ(doc["vision"]["peak"]["layer"], 3);
  RunRecord mean_query = full_record();
  mean_query.vision->peak.reset();
  EXPECT_FALSE(mean_query.to_json()["vision"].contains("peak"));
  EXPECT_EQ(RunRecord::from_json(nlohmann::json::parse(mean_query.to_json().dump()), "a.json"), mean_query);
  EXPECT_TRUE(full_record().to_json().contains("prediction"));
  RunRecord no_peak = full_record();
  no_peak.peak_device_memory_mib.reset();
  no_peak.prediction.reset();
  EXPECT_FALSE(no_peak.to_json().contains("peak_device_memory_mib"));
  EXPECT_TRUE(no_peak.to_json()["prediction"].is_null());
}

TEST(RunRecord, ReadsAMinimalHandMadeDocument) {
  const auto doc = nlohmann::json::parse(
      R"({"schema_version": 1, "prompt": "p", "grid": {"merged_h": 2, "merged_w": 3}, "layers": [{"layer": 5}]})");
  const RunRecord r = RunRecord::from_json(doc, "min.json");
  EXPECT_EQ(r.grid.merged_w, 3);
  EXPECT_EQ(r.grid.t, 1);
  ASSERT_EQ(r.layers.size(), 1u);
  EXPECT_EQ(r.layers[0].layer, 5);
  EXPECT_EQ(r.recorded_model_layers(), 0);
  EXPECT_TRUE(r.options.layers.all);
}

TEST(RunRecord, NaNStatisticsWrittenAsNullReadBack) {
  RunRecord r = full_record();
  r.layers[0].entropy = std::nan("");
  const RunRecord back = RunRecord::from_json(nlohmann::json::parse(r.to_json().dump()), "nan.json");
  EXPECT_TRUE(std::isnan(back.layers[0].entropy));
}

TEST(RunRecord, RefusesHostileFieldsNamingFileAndField) {
  const nlohmann::json good = nlohmann::json::parse(full_record().to_json().dump());
  using ptr = nlohmann::json::json_pointer;
  const std::vector<std::pair<nlohmann::json, std::string>> cases = {
      {with(good, ptr("/schema_version"), 2), "schema_version"},
      {with(good, ptr("/schema_version"), "1"), "schema_version"},
      {with(good, ptr("/prompt"), 7), "prompt"},
      {with(good, ptr("/grid/merged_h"), "2"), "grid.merged_h"},
      {with(good, ptr("/grid/merged_w"), -2), "grid"},
      {with(good, ptr("/layers"), nlohmann::json::array()), "layers"},
      {with(good, ptr("/layers/1/layer"), 0), "layer 0 twice"},
      {with(good, ptr("/layers/1/layer"), 1LL << 40), "layers[].layer"},
      {with(good, ptr("/layers/0/entropy"), "high"), "layers[].entropy"},
      {with(good, ptr("/model/metadata/text/num_hidden_layers"), "36"), "num_hidden_layers"},
      {with(good, ptr("/model"), "demo"), "'model'"},
      {with(good, ptr("/options/layers"), "9-1"), "options.layers"},
      {with(good, ptr("/options/heads"), "some"), "options.heads"},
      {with(good, ptr("/options/alpha"), "half"), "options.alpha"},
      {with(good, ptr("/tokens/ids"), nlohmann::json::array({1, "x"})), "tokens.ids"},
      {with(good, ptr("/prediction"), 3), "prediction"},
      {with(good, ptr("/prediction/probability"), "high"), "prediction.probability"},
      {with(good, ptr("/timings_ms/forward"), "slow"), "timings_ms.forward"},
      {with(good, ptr("/focus_layer"), "2"), "focus_layer"},
      {with(good, ptr("/answer/tokens"), "Red"), "answer.tokens"},
      {with(good, ptr("/answer/tokens/0"), 5), "answer.tokens[]"},
      {with(good, ptr("/answer/tokens/1/probability"), "likely"), "answer.tokens[].probability"},
      {with(good, ptr("/baseline/epsilon"), "tiny"), "baseline.epsilon"},
      {with(good, ptr("/baseline/layers/0/top1_share"), "most"), "baseline.layers[].top1_share"},
      {with(good, ptr("/viewer/html_bytes"), "big"), "viewer.html_bytes"},
      {nlohmann::json::array(), "not a JSON object"},
  };
  for (const auto& [doc, field] : cases) {
    const auto error = error_of([&] { (void)RunRecord::from_json(doc, "dir/attention.json"); });
    ASSERT_TRUE(error.has_value()) << field << ": accepted";
    EXPECT_EQ(error->kind(), attnmap::ErrorKind::Input) << error->what();
    const std::string message = error->what();
    EXPECT_NE(message.find("'dir/attention.json'"), std::string::npos) << message;
    EXPECT_NE(message.find(field), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(RunFolderWriter, CommitsAttentionJsonLastAndRemovesEverythingOnFailure) {
  const fs::path dir = fresh_dir("writer");
  const torch::Tensor maps = torch::rand({3, 2, 2});
  {
    output::RunFolderWriter writer(dir);
    writer.write_maps(maps);
    EXPECT_FALSE(output::is_complete(dir));
    writer.commit(full_record());
  }
  EXPECT_TRUE(output::is_complete(dir));
  const RunRecord back = RunRecord::read(dir);
  EXPECT_EQ(back, full_record());
  EXPECT_TRUE(torch::equal(output::read_maps(dir, back), maps));

  // A second write that fails midway: the stale attention.json goes first, then what it wrote.
  {
    output::RunFolderWriter writer(dir);
    EXPECT_FALSE(fs::exists(dir / "attention.json"));
    writer.write_maps(maps);
  }
  EXPECT_FALSE(fs::exists(dir / "maps.npy"));
  EXPECT_FALSE(output::is_complete(dir));
}

TEST(RunFolderWriter, MapsWhoseShapeDisagreesWithTheRecordAreRefused) {
  const fs::path dir = fresh_dir("shape");
  {
    output::RunFolderWriter writer(dir);
    writer.write_maps(torch::rand({2, 2, 2}));
    writer.commit(full_record());
  }
  const auto error = error_of([&] { (void)output::read_maps(dir, RunRecord::read(dir)); });
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->kind(), attnmap::ErrorKind::Input);
  EXPECT_NE(std::string(error->what()).find("maps.npy"), std::string::npos) << error->what();
}

namespace {

// A committed folder with full_record() (2 answer tokens, 3 layers, 2x2 cells) as attention.json
// and `answer_maps` (when defined) as answer_maps.npy.
fs::path answered_folder(const std::string& name, const torch::Tensor& answer_maps, const RunRecord& record = full_record()) {
  const fs::path dir = fresh_dir(name);
  output::RunFolderWriter writer(dir);
  writer.write_maps(torch::rand({3, 2, 2}));
  if (answer_maps.defined()) writer.write_answer_maps(answer_maps);
  writer.commit(record);
  return dir;
}

// The Error(Input) of read_answer_maps on `dir`, checked to be one line naming `file` and `needle`.
void expect_answer_maps_refused(const fs::path& dir, const std::string& file, const std::string& needle) {
  const auto error = error_of([&] { (void)output::read_answer_maps(dir, RunRecord::read(dir)); });
  ASSERT_TRUE(error.has_value()) << "accepted: " << dir;
  EXPECT_EQ(error->kind(), attnmap::ErrorKind::Input) << error->what();
  const std::string message = error->what();
  EXPECT_NE(message.find((dir / file).string()), std::string::npos) << message;
  EXPECT_NE(message.find(needle), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

}  // namespace

TEST(RunFolderAnswerMaps, ReadBackAsWritten) {
  const torch::Tensor maps = torch::rand({2, 3, 2, 2});
  const fs::path dir = answered_folder("answer_maps", maps);
  EXPECT_TRUE(torch::equal(output::read_answer_maps(dir, RunRecord::read(dir)), maps));
}

TEST(RunFolderAnswerMaps, HeaderDisagreeingWithTheRecordIsRefusedByName) {
  expect_answer_maps_refused(answered_folder("answer_tokens", torch::rand({3, 3, 2, 2})), "answer_maps.npy", "(3, 3, 2, 2)");
  expect_answer_maps_refused(answered_folder("answer_layers", torch::rand({2, 2, 2, 2})), "answer_maps.npy", "shape");
  expect_answer_maps_refused(answered_folder("answer_grid", torch::rand({2, 3, 2, 3})), "answer_maps.npy", "shape");
  expect_answer_maps_refused(answered_folder("answer_rank", torch::rand({2, 3, 4})), "answer_maps.npy", "shape");
  expect_answer_maps_refused(answered_folder("answer_int", torch::zeros({2, 3, 2, 2}, torch::kInt32)), "answer_maps.npy",
                             "not a float array");
  expect_answer_maps_refused(answered_folder("answer_missing", torch::Tensor()), "answer_maps.npy", "cannot open");
  const fs::path forged = answered_folder("answer_forged", torch::rand({2, 3, 2, 2}));
  write(forged / "answer_maps.npy",
        std::string("\x93NUMPY\x01\x00\x76\x00", 10) +
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2000000000, 3, 2, 2), }" + std::string(43, ' ') + "\n");
  expect_answer_maps_refused(forged, "answer_maps.npy", "");
}

TEST(RunFolderAnswerMaps, RecordWhoseAnswerShapeDisagreesOrLacksAnAnswerIsRefused) {
  RunRecord wrong = full_record();
  wrong.answer->maps_shape = {5, 3, 2, 2};
  expect_answer_maps_refused(answered_folder("answer_record_shape", torch::rand({5, 3, 2, 2}), wrong), "attention.json",
                             "answer.maps.shape");
  RunRecord none = full_record();
  none.answer.reset();
  expect_answer_maps_refused(answered_folder("answer_none", torch::rand({2, 3, 2, 2}), none), "attention.json", "answer");
  // A hand-made record without answer.maps.shape is read against its tokens, layers and grid.
  RunRecord bare = full_record();
  bare.answer->maps_shape.clear();
  const fs::path dir = answered_folder("answer_bare", torch::rand({2, 3, 2, 2}), bare);
  EXPECT_EQ(output::read_answer_maps(dir, RunRecord::read(dir)).sizes().vec(), (std::vector<int64_t>{2, 3, 2, 2}));
}
