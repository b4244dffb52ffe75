// The model boundary without weights: the family registry, ModelFile's errors on bad files, and the
// Qwen2.5-VL and Qwen2-VL families routing to the prompt, position, preprocessing and video functions.
#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "attnmap/error.hpp"
#include "attnmap/model_file.hpp"
#include "attnmap/prompt.hpp"
#include "attnmap/video.hpp"
#include "model/family.hpp"
#include "qwen_tokenizer_fixture.hpp"

namespace attnmap {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

// A complete format-2 metadata document (the fields ModelMetadata::parse requires).
json valid_metadata() {
  return {{"format", "attnmap-model"},
          {"format_version", kModelFormatVersion},
          {"model_family", "qwen2_5_vl"},
          {"model_name", "fixture"},
          {"dtype", "float32"},
          {"text",
           {{"hidden_size", 64}, {"num_hidden_layers", 4}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
            {"head_dim", 16}, {"vocab_size", 151936}}},
          {"vision",
           {{"depth", 2}, {"hidden_size", 32}, {"num_heads", 2}, {"patch_size", 14}, {"temporal_patch_size", 2},
            {"spatial_merge_size", 2}, {"window_size", 112}, {"fullatt_block_indexes", {1}}}},
          {"tokens",
           {{"image_token_id", 151655}, {"vision_start_token_id", 151652}, {"vision_end_token_id", 151653},
            {"im_start_token_id", 151644}, {"im_end_token_id", 151645}}},
          {"chat", {{"default_system_prompt", "You are a helpful assistant."}}},
          {"preprocess",
           {{"patch_size", 14}, {"temporal_patch_size", 2}, {"merge_size", 2}, {"min_pixels", 3136},
            {"max_pixels", 50176}, {"image_mean", {0.5, 0.5, 0.5}}, {"image_std", {0.25, 0.25, 0.25}},
            {"rescale_factor", 1.0 / 255}, {"resample", "bicubic"}, {"do_convert_rgb", true}}},
          {"generation", {{"source", "generation_config.json"}, {"eos_token_ids", {151645, 151643}},
                          {"repetition_penalty", 1.05}}}};
}

fs::path work_dir() {
  const fs::path dir = fs::path(ATTNMAP_TEST_WORK_DIR) / "model_boundary";
  fs::create_directories(dir);
  return dir;
}

// A TorchScript-style zip archive holding only the given extra files (no code, no weights): all
// ModelFile reads.
fs::path write_archive(const std::string& name, const std::map<std::string, std::string>& extra_files) {
  const fs::path path = work_dir() / name;
  caffe2::serialize::PyTorchStreamWriter writer(path.string());
  for (const auto& [file, text] : extra_files) writer.writeRecord("extra/" + file, text.data(), text.size());
  writer.writeEndOfFile();
  return path;
}

std::string error_of(const std::function<void()>& body, ErrorKind expected_kind = ErrorKind::Model) {
  try {
    body();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), expected_kind) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "not one line: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A `video` section as the exporter writes it; Qwen2-VL's has temporal_positions "index" and no
// tokens_per_second.
json video_section(const std::string& family) {
  json v = valid_metadata()["preprocess"];
  v.update({{"min_frames", 4}, {"max_frames", 768}, {"fps", nullptr}, {"num_frames", nullptr},
            {"do_sample_frames", false}, {"source", "preprocessor_config.json"}});
  if (family == "qwen2_vl") {
    v.update({{"tokens_per_second", nullptr}, {"temporal_positions", "index"}});
  } else {
    v.update({{"tokens_per_second", 2.0}, {"temporal_positions", "seconds"}});
  }
  return v;
}

ModelMetadata metadata_of(const std::string& family) {
  json doc = valid_metadata();
  doc["model_family"] = family;
  doc["tokens"]["video_token_id"] = 151656;
  doc["video"] = video_section(family);
  if (family == "qwen2_vl") {
    doc["vision"]["window_size"] = 0;
    doc["vision"]["fullatt_block_indexes"] = {0, 1};
  }
  return ModelMetadata::parse(doc.dump(), "m.pt");
}

// Four 56x56 frames -> two temporal patches, sampled at `fps`.
PreprocessedVideo four_frames(const VideoParams& params, double fps) {
  std::vector<cv::Mat> frames;
  for (int i = 0; i < 4; ++i) frames.emplace_back(56, 56, CV_8UC3, cv::Scalar(40 * i, 90, 200 - 30 * i));
  return preprocess_video(frames, params, fps);
}

TEST(FamilyRegistry, KnowsQwen2_5_VlAndQwen2_Vl) {
  EXPECT_EQ(supported_families(), (std::vector<std::string>{"qwen2_5_vl", "qwen2_vl", "qwen3_vl"}));
  const ModelMetadata metadata = ModelMetadata::parse(valid_metadata().dump(), "m.pt");
  const auto family = make_family(metadata, "m.pt");
  EXPECT_EQ(family->name(), "qwen2_5_vl");
  EXPECT_EQ(family->special_tokens().image_token_id, 151655);
}

TEST(FamilyRegistry, RefusesAnUnknownFamilyNamingTheSupportedOnes) {
  const std::string message = error_of([] { require_supported_family("qwen3_vl_moe", "moe.pt"); });
  EXPECT_TRUE(contains(message, "model 'moe.pt'")) << message;
  EXPECT_TRUE(contains(message, "'qwen3_vl_moe'")) << message;
  EXPECT_TRUE(contains(message, "(supported: qwen2_5_vl, qwen2_vl, qwen3_vl)")) << message;
  json doc = valid_metadata();
  doc["model_family"] = "qwen3_vl_moe";
  doc.erase("vision");  // the family is refused before its fields are read
  EXPECT_EQ(error_of([&] { (void)ModelMetadata::parse(doc.dump(), "moe.pt"); }), message);
}

TEST(FamilyRegistry, Qwen2_5_VlRoutesToThePromptPositionAndPreprocessFunctions) {
  const ModelMetadata metadata = ModelMetadata::parse(valid_metadata().dump(), "m.pt");
  const auto family = make_family(metadata, "m.pt");
  const Tokenizer& tokenizer = attnmap_test::qwen_tokenizer();
  const ChatPrompt mine = family->build_chat_prompt(tokenizer, "What is it?", VisualGrid{VisualKind::Image, 1, 2, 3, 1.0f, {}}, "");
  const ChatPrompt direct = build_chat_prompt(tokenizer, metadata, "What is it?", 6, "");
  EXPECT_EQ(mine.ids, direct.ids);
  EXPECT_EQ(mine.image_start, direct.image_start);
  const std::vector<std::array<int64_t, 3>> grids = {{1, 2, 3}};
  EXPECT_TRUE(torch::equal(family->position_ids(mine.ids, {VisualGrid{VisualKind::Image, 1, 2, 3, 1.0f, {}}}),
                           mrope_position_ids(mine.ids, 151655, grids)));
  const PreprocessParams params = family->preprocess_params();
  EXPECT_EQ(params.max_pixels, 50176);
  EXPECT_FLOAT_EQ(params.image_std[0], 0.25f);
}

TEST(FamilyRegistry, Qwen2_VlSharesThePromptPositionsAndPreprocessingOfQwen2_5_Vl) {
  const ModelMetadata qwen2 = metadata_of("qwen2_vl");
  const ModelMetadata qwen2_5 = metadata_of("qwen2_5_vl");
  const auto family = make_family(qwen2, "m.pt");
  const auto other = make_family(qwen2_5, "m.pt");
  EXPECT_EQ(family->name(), "qwen2_vl");
  EXPECT_EQ(other->name(), "qwen2_5_vl");
  const Tokenizer& tokenizer = attnmap_test::qwen_tokenizer();
  for (const VisualKind kind : {VisualKind::Image, VisualKind::Video}) {
    const VisualGrid grid{kind, 1, 2, 3, 1.0f, {}};
    const ChatPrompt mine = family->build_chat_prompt(tokenizer, "What is it?", grid, "");
    EXPECT_EQ(mine.ids, other->build_chat_prompt(tokenizer, "What is it?", grid, "").ids);
  }
  const ChatPrompt prompt = family->build_chat_prompt(tokenizer, "What is it?", VisualGrid{VisualKind::Image, 1, 2, 3, 1.0f, {}}, "");
  const std::vector<VisualGrid> grids = {VisualGrid{VisualKind::Image, 1, 2, 3, 1.0f, {}}};
  EXPECT_TRUE(torch::equal(family->position_ids(prompt.ids, grids), other->position_ids(prompt.ids, grids)));
  EXPECT_EQ(family->preprocess_params().max_pixels, 50176);
  EXPECT_EQ(family->special_tokens().video_token_id, qwen2.tokens.video_token_id);
}

TEST(FamilyRegistry, Qwen2_VlVideoPositionsAreTheTemporalPatchIndexWhateverTheFrameRate) {
  // transformers' Qwen2VLModel.get_rope_index: time_interval 1; Qwen2.5-VL's: tokens_per_second *
  // temporal_patch_size / fps (2 * 2 / 8 = 0.5 here, so its second temporal patch stays at time 0).
  const VideoParams qwen2 = make_family(metadata_of("qwen2_vl"), "m.pt")->video_params();
  const VideoParams qwen2_5 = make_family(metadata_of("qwen2_5_vl"), "m.pt")->video_params();
  EXPECT_EQ(qwen2.tokens_per_second, 0.0);
  EXPECT_EQ(qwen2_5.tokens_per_second, 2.0);
  const PreprocessedVideo a = four_frames(qwen2, 8.0);
  const PreprocessedVideo b = four_frames(qwen2_5, 8.0);
  EXPECT_EQ(a.grid_t, 2);
  EXPECT_EQ(a.time_interval, 1.0f);
  EXPECT_EQ(b.time_interval, 0.5f);
  EXPECT_DOUBLE_EQ(a.second_per_grid_t, b.second_per_grid_t);
  EXPECT_TRUE(torch::equal(a.pixel_values_videos, b.pixel_values_videos));
  // Two temporal patches of merged 2x2 (grid 2x4x4): the second patch at t = start + 1 for Qwen2-VL.
  const std::vector<int64_t> ids = {1, 2, 151656, 151656, 151656, 151656, 151656, 151656, 151656, 151656, 3};
  const auto video_grid = [](float interval) { return std::vector<VisualGrid>{{VisualKind::Video, 2, 2, 2, interval, {}}}; };
  const torch::Tensor pos = make_family(metadata_of("qwen2_vl"), "m.pt")->position_ids(ids, video_grid(a.time_interval));
  EXPECT_EQ(pos[0][6].item<int64_t>(), 3);
  EXPECT_EQ(pos[0][2].item<int64_t>(), 2);
  const torch::Tensor pos_2_5 =
      make_family(metadata_of("qwen2_5_vl"), "m.pt")->position_ids(ids, video_grid(b.time_interval));
  EXPECT_EQ(pos_2_5[0][6].item<int64_t>(), 2);
}

TEST(FamilyRegistry, VideoTemporalPositionsDefaultToSecondsAndRefuseOtherValues) {
  json video = video_section("qwen2_5_vl");
  video.erase("temporal_positions");  // an export made before the key: Qwen2.5-VL's scaling
  EXPECT_EQ(VideoParams::from_json(video).tokens_per_second, 2.0);
  video["temporal_positions"] = "frames";
  EXPECT_TRUE(contains(error_of([&] { (void)VideoParams::from_json(video); }),
                       "video.temporal_positions must be \"seconds\", \"index\" or \"frame_runs\""));
  video = video_section("qwen2_5_vl");
  video["tokens_per_second"] = nullptr;  // "seconds" needs the scale
  EXPECT_TRUE(contains(error_of([&] { (void)VideoParams::from_json(video); }), "video.tokens_per_second"));
}

TEST(ModelFile, NamesAMissingPathADirectoryAndANonArchive) {
  const fs::path missing = work_dir() / "missing.pt";
  const std::string message_of_missing = error_of([&] { (void)ModelFile::open(missing); });
  EXPECT_TRUE(contains(message_of_missing, missing.string() + "' does not exist")) << message_of_missing;
  EXPECT_TRUE(contains(error_of([&] { (void)ModelFile::open(work_dir()); }), "is not a file"));
  const fs::path garbage = work_dir() / "garbage.pt";
  std::ofstream(garbage) << std::string(1000, '\0');
  const std::string message = error_of([&] { (void)ModelFile::open(garbage); });
  EXPECT_TRUE(contains(message, garbage.string()) && contains(message, "TorchScript archive")) << message;
}

TEST(ModelFile, NamesTheMissingExtraFile) {
  const ModelFile file = ModelFile::open(write_archive("bare.pt", {}));
  EXPECT_TRUE(
      contains(error_of([&] { (void)file.read_metadata(); }), "not an attnmap export (no attnmap/metadata.json)"));
  EXPECT_TRUE(contains(error_of([&] { (void)file.read_tokenizer(); }), "(no attnmap/tokenizer.json)"));
}

TEST(ModelFile, RefusesAVersion1FileWithTheReExportCommand) {
  json doc = valid_metadata();
  doc["format_version"] = 1;
  const fs::path path = write_archive("v1.pt", {{"attnmap/metadata.json", doc.dump()}});
  EXPECT_EQ(error_of([&] { (void)ModelFile::open(path).read_metadata(); }),
            "model '" + path.string() +
                "' is an attnmap export of format version 1, which this attnmap (format version 2) no longer reads; "
                "re-export its checkpoint: attnmap-export --checkpoint <hugging-face-folder> --out " +
                path.string());
}

TEST(ModelFile, RefusesANewerVersionAskingToUpgrade) {
  json doc = valid_metadata();
  doc["format_version"] = 3;
  const fs::path path = write_archive("v3.pt", {{"attnmap/metadata.json", doc.dump()}});
  const std::string message = error_of([&] { (void)ModelFile::open(path).read_metadata(); });
  EXPECT_TRUE(contains(message, "format version 3") && contains(message, "upgrade attnmap")) << message;
}

TEST(ModelFile, ReadsAValidMetadataDocument) {
  const fs::path path = write_archive("v2.pt", {{"attnmap/metadata.json", valid_metadata().dump()}});
  const ModelMetadata metadata = ModelFile::open(path).read_metadata();
  EXPECT_EQ(metadata.format_version, 2);
  EXPECT_EQ(metadata.model_family, "qwen2_5_vl");
  EXPECT_EQ(metadata.generation.eos_token_ids, (std::vector<int64_t>{151645, 151643}));
  EXPECT_DOUBLE_EQ(metadata.generation.repetition_penalty, 1.05);
}

TEST(ModelFile, RefusesGenerationWithoutEndTokensNamingTheField) {
  json doc = valid_metadata();
  doc["generation"]["eos_token_ids"] = json::array();
  const fs::path path = write_archive("no_eos.pt", {{"attnmap/metadata.json", doc.dump()}});
  const std::string message = error_of([&] { (void)ModelFile::open(path).read_metadata(); });
  EXPECT_TRUE(contains(message, "generation.eos_token_ids") && contains(message, "re-export")) << message;
}

}  // namespace
}  // namespace attnmap
