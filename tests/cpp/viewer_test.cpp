// The HTML viewer's encoding (docs/viewer.md): 8-bit quantisation bound, base64, zlib, the budget rule
// and the page's safety (no markup injection, no network). The browser side: test_viewer_browser.py.
#include "attnmap/error.hpp"
#include "attnmap/viewer.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace attnmap;

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// A sequence of `system` tokens, the image span, the prompt, one template token, the answer; softmax
// rows with a sink on token 0 (or uniform noise when `noise`).
ViewerData synthetic(int layers, int heads, int mh, int mw, int prompt, int answer, bool noise = false, unsigned seed = 1) {
  ViewerData d;
  d.merged_h = mh;
  d.merged_w = mw;
  for (int l = 0; l < layers; ++l) d.layers.push_back(l);
  d.heads = heads;
  const int system = 15, pixels = mh * mw;
  auto add = [&](const std::string& t, TokenRole r) { d.tokens.push_back(t); d.roles.push_back(r); };
  for (int i = 0; i < system; ++i) add("<sys" + std::to_string(i) + ">", TokenRole::System);
  d.image_start = system;
  for (int i = 0; i < pixels; ++i) add("<|image_pad|>", TokenRole::Image);
  add("<|vision_end|>", TokenRole::System);
  for (int i = 0; i < prompt; ++i) {
    d.query_positions.push_back(static_cast<int>(d.tokens.size()));
    add(" w" + std::to_string(i), TokenRole::Prompt);
  }
  add("<|im_end|>", TokenRole::System);
  for (int i = 0; i < answer; ++i) {
    d.query_positions.push_back(static_cast<int>(d.tokens.size()));
    add(" a" + std::to_string(i), TokenRole::Answer);
  }
  const std::size_t S = d.tokens.size(), Q = d.query_positions.size();
  d.rows.assign(static_cast<std::size_t>(layers) * heads * Q * S, 0.0f);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  for (std::size_t r = 0; r < static_cast<std::size_t>(layers) * heads * Q; ++r) {
    float* row = d.rows.data() + r * S;
    const std::size_t pos = d.query_positions[r % Q];
    double sum = 0;
    for (std::size_t k = 0; k <= pos; ++k) {
      row[k] = noise ? uniform(rng) : std::exp(normal(rng) + (k == 0 ? 4.0f : 0.0f));
      sum += row[k];
    }
    if (!noise)
      for (std::size_t k = 0; k <= pos; ++k) row[k] = static_cast<float>(row[k] / sum);
  }
  d.maps.assign(static_cast<std::size_t>(layers) * pixels, 0.0f);
  for (int l = 0; l < layers; ++l)
    for (int h = 0; h < heads; ++h)
      for (int q = 0; q < prompt; ++q)
        for (int p = 0; p < pixels; ++p)
          d.maps[l * pixels + p] += d.rows[((static_cast<std::size_t>(l) * heads + h) * Q + q) * S + system + p] / (heads * prompt);
  d.next_token = " green";
  d.next_token_probability = 0.9;
  return d;
}

// A video of `frames` temporal patches: its span is t-major mh x mw grids, so the tokens and values
// are those of an image frames * mh rows tall.
ViewerData synthetic_video(int frames, int layers, int heads, int mh, int mw, int prompt, int answer,
                           bool noise = false) {
  ViewerData d = synthetic(layers, heads, frames * mh, mw, prompt, answer, noise);
  d.merged_h = mh;
  d.frames = frames;
  for (int t = 0; t < frames; ++t)
    d.frame_labels.push_back("t" + std::to_string(t) + " · frames " + std::to_string(2 * t));
  return d;
}

// Incompressible bytes standing in for a JPEG.
std::vector<unsigned char> fake_jpeg(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<unsigned char> out(n);
  for (auto& b : out) b = static_cast<unsigned char>(rng());
  return out;
}

TEST(ViewerEncoding, QuantisationIsWithinHalfAStepOfTheMapsMax) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0.0f, 0.37f);
  std::vector<float> v(5000);
  for (auto& x : v) x = u(rng);
  v[17] = 0.0f;
  std::vector<std::uint8_t> q(v.size());
  const float scale = viewer_encoding::quantise_u8(v.data(), v.size(), q.data());
  const float max = *std::max_element(v.begin(), v.end());
  EXPECT_FLOAT_EQ(scale, max / 255.0f);
  for (std::size_t i = 0; i < v.size(); ++i) EXPECT_LE(std::abs(v[i] - q[i] * scale), scale / 2 * 1.0001f) << i;
  EXPECT_EQ(q[17], 0);
  EXPECT_EQ(*std::max_element(q.begin(), q.end()), 255);
}

TEST(ViewerEncoding, ZeroNegativeAndNonFiniteValuesAreStoredAsZero) {
  std::vector<float> zeros(10, 0.0f);
  std::vector<std::uint8_t> q(10, 7);
  EXPECT_EQ(viewer_encoding::quantise_u8(zeros.data(), zeros.size(), q.data()), 0.0f);
  EXPECT_TRUE(std::all_of(q.begin(), q.end(), [](auto b) { return b == 0; }));
  std::vector<float> odd = {-1.0f, NAN, INFINITY, 2.0f};
  std::vector<std::uint8_t> q2(4);
  EXPECT_FLOAT_EQ(viewer_encoding::quantise_u8(odd.data(), odd.size(), q2.data()), 2.0f / 255);
  EXPECT_EQ(q2, (std::vector<std::uint8_t>{0, 0, 0, 255}));
}

TEST(ViewerEncoding, Base64MatchesRfc4648Vectors) {
  auto b64 = [](const std::string& s) {
    return viewer_encoding::base64_encode(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
  };
  EXPECT_EQ(b64(""), "");
  EXPECT_EQ(b64("f"), "Zg==");
  EXPECT_EQ(b64("fo"), "Zm8=");
  EXPECT_EQ(b64("foo"), "Zm9v");
  EXPECT_EQ(b64("foob"), "Zm9vYg==");
  EXPECT_EQ(b64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(b64("foobar"), "Zm9vYmFy");
  const std::uint8_t high[] = {0xff, 0xfe, 0x00};
  EXPECT_EQ(viewer_encoding::base64_encode(high, 3), "//4A");
}

TEST(ViewerEncoding, ZlibRoundTrips) {
  std::vector<std::uint8_t> bytes(100000);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>((i * 7) % 13);
  const auto packed = viewer_encoding::zlib_compress(bytes, 6);
  EXPECT_LT(packed.size(), bytes.size() / 10);
  EXPECT_EQ(packed[0], 0x78);  // a zlib header: what DecompressionStream("deflate") reads
  std::vector<std::uint8_t> back(bytes.size());
  uLongf size = back.size();
  ASSERT_EQ(uncompress(back.data(), &size, packed.data(), packed.size()), Z_OK);
  EXPECT_EQ(size, bytes.size());
  EXPECT_EQ(back, bytes);
}

TEST(Viewer, PageIsSelfContainedAndItsTextCannotBreakOut) {
  ViewerData d = synthetic(3, 2, 4, 5, 3, 1);
  d.title = "</title><script>alert(1)</script>";
  d.tokens[d.query_positions[0]] = "</script><img src=x>";
  d.tokens[1] = "\xff\xfe";  // invalid UTF-8: shown as U+FFFD, never an exception
  d.metadata = {"model: <b>x</b>", "prompt: 猫 🐱"};
  ViewerReport report;
  const std::string page = render_viewer_html(d, {}, &report);
  EXPECT_EQ(report.detail, ViewerDetail::Full);
  EXPECT_EQ(report.html_bytes, page.size());
  EXPECT_EQ(count(page, "</script>"), 4u);  // the meta, image, data and code blocks only
  EXPECT_EQ(count(page, "<script"), 4u);
  EXPECT_EQ(page.find("<img src=x>"), std::string::npos);
  EXPECT_NE(page.find("&lt;/title&gt;&lt;script&gt;"), std::string::npos);
  EXPECT_EQ(page.find("ATTNMAP_"), std::string::npos) << "a template marker was left in the page";
  EXPECT_NE(page.find("connect-src 'none'"), std::string::npos);
  EXPECT_EQ(page.find("http://"), std::string::npos);
  EXPECT_EQ(page.find("https://"), std::string::npos);
  EXPECT_NE(page.find("\xef\xbf\xbd"), std::string::npos);  // U+FFFD
  EXPECT_NE(page.find("猫 🐱"), std::string::npos);
}

// render_viewer_html refuses `d` with an input error whose message holds `words` (the field's name).
void expect_input_error(const ViewerData& d, const std::string& words) {
  try {
    render_viewer_html(d);
    ADD_FAILURE() << "accepted: " << words;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Input);
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
}

TEST(Viewer, InconsistentDataIsRefusedNamingTheField) {
  const ViewerData ok = synthetic(2, 2, 3, 3, 2, 0);
  ViewerData d = ok;
  d.rows.pop_back();
  expect_input_error(d, "rows has");
  d = ok;
  d.maps.push_back(0);
  expect_input_error(d, "maps has");
  d = ok;
  d.roles[0] = TokenRole::Image;
  expect_input_error(d, "role image outside the image span");
  d = ok;
  d.query_positions[0] = 0;
  expect_input_error(d, "not a prompt or answer token");
  d = ok;
  d.query_positions.push_back(100000);
  expect_input_error(d, "outside the sequence");
  d = ok;
  d.image_start = d.tokens.size();
  expect_input_error(d, "exceeds the sequence");
}

TEST(Viewer, BudgetDropsPerHeadDetailFirstThenPerQueryThenAllButTheMaps) {
  const ViewerData d = synthetic(4, 8, 8, 8, 6, 2, /*noise=*/true);
  ViewerReport full;
  render_viewer_html(d, {}, &full);
  ASSERT_EQ(full.detail, ViewerDetail::Full);
  std::vector<std::size_t> sizes = {full.html_bytes};
  for (ViewerDetail want : {ViewerDetail::NoHeadPerQuery, ViewerDetail::NoPerQuery, ViewerDetail::MapsOnly}) {
    ViewerOptions options;
    options.budget_bytes = sizes.back() - 64;  // (the page states its budget: a shorter number is a few bytes less)
    ViewerReport report;
    const std::string page = render_viewer_html(d, options, &report);
    EXPECT_EQ(report.detail, want);
    EXPECT_LE(report.html_bytes, options.budget_bytes);
    ASSERT_FALSE(report.notes.empty());
    EXPECT_NE(report.notes[0].find("dropped"), std::string::npos);
    EXPECT_NE(page.find(report.notes[0].substr(0, 30)), std::string::npos) << "the page must say what was dropped";
    sizes.push_back(report.html_bytes);
  }
  ViewerOptions tiny;
  tiny.budget_bytes = 1000;
  ViewerReport report;
  render_viewer_html(d, tiny, &report);
  EXPECT_EQ(report.detail, ViewerDetail::MapsOnly);
  EXPECT_EQ(report.notes.size(), 2u);  // dropped, and still over the budget
}

// The budget case: 28 layers x 28 heads, 1,024 image tokens (32 x 32), a 20-token prompt.
TEST(Viewer, BudgetCase28Layers28Heads1024ImageTokens20PromptTokens) {
  const ViewerData d = synthetic(28, 28, 32, 32, 20, 0);
  ViewerReport report;
  const std::string page = render_viewer_html(d, {}, &report);
  const std::size_t S = d.tokens.size();
  // groups: (mean, max, 28 heads) x 1 group; queries: (mean, max, 28 heads) x 20 rows; S bytes each
  const std::size_t quantised = 28 * 30 * (1 + 20) * S;
  EXPECT_GE(report.data_bytes_raw, quantised);
  std::printf("budget case: seq %zu, quantised rows %zu bytes, data %zu bytes raw, %zu compressed, page %zu bytes, detail %s\n",
              S, quantised, report.data_bytes_raw, report.data_bytes_compressed, report.html_bytes,
              viewer_detail_name(report.detail));
  EXPECT_EQ(report.detail, ViewerDetail::Full);
  EXPECT_LE(page.size(), 20'000'000u);
}

TEST(Viewer, VideoTimeAxisIsValidated) {
  const ViewerData ok = synthetic_video(3, 2, 2, 3, 4, 2, 0);
  EXPECT_NO_THROW(render_viewer_html(ok));
  ViewerData d = ok;
  d.frame_labels.pop_back();
  expect_input_error(d, "frame_labels has 2 entries, frames 3");
  d = ok;
  d.frame_jpegs.assign(2, {0xff, 0xd8});
  expect_input_error(d, "frame_jpegs has 2 entries, frames 3");
  d = ok;
  d.frame_labels.clear();
  expect_input_error(d, "frame_labels is empty");
  d = ok;
  d.maps.pop_back();
  expect_input_error(d, "[layers, frames, merged_h, merged_w]");
  d = ok;
  d.frames = 0;
  expect_input_error(d, "frames must be at least 1");
}

TEST(Viewer, VideoPageCarriesEveryFramesPictureWithinTheBudget) {
  ViewerData d = synthetic_video(3, 4, 8, 8, 8, 6, 2, /*noise=*/true);
  ViewerReport bare;
  render_viewer_html(d, {}, &bare);
  ASSERT_EQ(bare.detail, ViewerDetail::Full);
  for (unsigned t = 0; t < 3; ++t) d.frame_jpegs.push_back(fake_jpeg(10'000, t));
  ViewerReport with;
  const std::string page = render_viewer_html(d, {}, &with);
  EXPECT_EQ(count(page, "id=\"attnmap-frame-"), 3u);
  EXPECT_EQ(count(page, "id=\"attnmap-image\""), 0u);
  EXPECT_EQ(count(page, "\"video\":{"), 1u);
  EXPECT_GE(with.html_bytes, bare.html_bytes + 3 * 13'336);  // base64 of each picture
  // The pictures count against the budget: a budget the bare page fits drops detail once they are in.
  ViewerOptions options;
  options.budget_bytes = bare.html_bytes;
  ViewerReport report;
  render_viewer_html(d, options, &report);
  EXPECT_GT(static_cast<int>(report.detail), static_cast<int>(ViewerDetail::Full));
  EXPECT_LE(report.html_bytes, options.budget_bytes);
  // Even the maps alone do not fit a budget under the pictures' size: the note says what takes the room.
  options.budget_bytes = 20'000;
  render_viewer_html(d, options, &report);
  EXPECT_EQ(report.detail, ViewerDetail::MapsOnly);
  ASSERT_EQ(report.notes.size(), 2u);
  EXPECT_NE(report.notes[1].find("frame pictures"), std::string::npos) << report.notes[1];
}

TEST(Viewer, ImagePageHasNoTimeAxis) {
  const std::string page = render_viewer_html(synthetic(2, 2, 3, 4, 2, 0));
  EXPECT_EQ(count(page, "id=\"attnmap-image\""), 1u);
  EXPECT_EQ(count(page, "id=\"attnmap-frame-"), 0u);
  EXPECT_EQ(count(page, "\"video\":"), 0u);
}

// --vision-blocks: two blocks (windowed, full) on the unmerged grid of `d` (2 x its merged grid per
// side), 4x4-patch windows, a box query over the top-left 2x2 patches of every frame.
ViewerVision vision_of(const ViewerData& d) {
  ViewerVision v;
  v.blocks = {3, 7};
  v.attention = {"window", "full"};
  v.grid_t = d.frames;
  v.grid_h = 2 * d.merged_h;
  v.grid_w = 2 * d.merged_w;
  v.window_patches = 4;
  const int per_row = (v.grid_w + 3) / 4;
  for (int t = 0; t < v.grid_t; ++t)
    for (int r = 0; r < v.grid_h; ++r)
      for (int c = 0; c < v.grid_w; ++c) v.windows.push_back((t * 100) + (r / 4) * per_row + c / 4);
  const std::size_t patches = v.windows.size();
  for (std::size_t i = 0; i < v.blocks.size() * patches; ++i) v.maps.push_back(static_cast<float>((i * 37) % 101) / 1000.0f);
  v.query = "box:0,0,28,28";
  for (int t = 0; t < v.grid_t; ++t)
    for (int r = 0; r < 2; ++r)
      for (int c = 0; c < 2; ++c) v.query_patches.push_back((t * v.grid_h + r) * v.grid_w + c);
  return v;
}

TEST(Viewer, VisionMapsAreValidatedNamingTheField) {
  ViewerData ok = synthetic(2, 2, 3, 4, 2, 0);
  ok.vision = vision_of(ok);
  EXPECT_NO_THROW(render_viewer_html(ok));
  ViewerData d = ok;
  d.vision->blocks.clear();
  d.vision->attention.clear();
  d.vision->maps.clear();
  expect_input_error(d, "vision: blocks is empty");
  d = ok;
  d.vision->blocks[0] = -1;
  expect_input_error(d, "vision: block -1 is negative");
  d = ok;
  d.vision->attention.pop_back();
  expect_input_error(d, "vision: attention has 1 entries, blocks 2");
  d = ok;
  d.vision->attention[1] = "sliding";
  expect_input_error(d, "vision: attention \"sliding\" is not");
  d = ok;
  d.vision->window_patches = 0;  // a windowed block needs windows
  expect_input_error(d, "window_patches is 0");
  d = ok;
  d.vision->grid_t = 2;  // an image has one temporal patch
  expect_input_error(d, "vision: grid_t is 2 but frames is 1");
  d = ok;
  d.vision->grid_h = 0;
  expect_input_error(d, "vision: grid_t, grid_h and grid_w must be positive");
  d = ok;
  d.vision->patch_size = 0;
  expect_input_error(d, "vision: patch_size must be positive");
  d = ok;
  d.vision->maps.pop_back();
  expect_input_error(d, "vision: maps has 95 values, [blocks, grid_t, grid_h, grid_w] needs 96");
  d = ok;
  d.vision->grid_w = 4;  // maps and windows no longer fit the grid
  expect_input_error(d, "vision: maps has 96 values");
  d = ok;
  d.vision->windows.pop_back();
  expect_input_error(d, "vision: windows has 47 entries, grid_t * grid_h * grid_w is 48");
  d = ok;
  d.vision->windows[5] = -2;
  expect_input_error(d, "vision: window id -2 is negative");
  d = ok;
  d.vision->query = "centre";
  expect_input_error(d, "vision: query \"centre\" is not");
  d = ok;
  d.vision->query_patches.push_back(48);
  expect_input_error(d, "vision: query patch 48 is outside the grid of 48 patches");
  d = ok;
  d.vision->query_patches[0] = -1;
  expect_input_error(d, "vision: query patch -1 is outside");
  d = ok;
  d.vision->query = "mean";
  expect_input_error(d, "vision: query_patches must be empty for the query \"mean\"");
  d = ok;
  d.vision->query = "text-peak:12";
  d.vision->query_patches.clear();
  expect_input_error(d, "vision: query_patches is empty for the query \"text-peak:12\"");
  // the valid queries
  for (const char* query : {"text-peak:12", "text-peak"}) {
    d = ok;
    d.vision->query = query;
    d.vision->query_patches = {0, 1, 8, 9};
    EXPECT_NO_THROW(render_viewer_html(d)) << query;
  }
  d = ok;
  d.vision->query = "mean";
  d.vision->query_patches.clear();
  EXPECT_NO_THROW(render_viewer_html(d));
}

TEST(Viewer, VideoVisionMapsHaveOneTemporalPatchPerFrame) {
  ViewerData ok = synthetic_video(3, 2, 2, 3, 4, 2, 0);
  ok.vision = vision_of(ok);
  EXPECT_NO_THROW(render_viewer_html(ok));
  ViewerData d = ok;
  d.vision->grid_t = 1;
  d.vision->maps.resize(d.vision->maps.size() / 3);
  d.vision->windows.resize(d.vision->windows.size() / 3);
  d.vision->query_patches.resize(4);
  expect_input_error(d, "vision: grid_t is 1 but frames is 3");
  d = ok;
  d.vision->query_patches.push_back(3 * 48);
  expect_input_error(d, "vision: query patch 144 is outside the grid of 144 patches");
}

TEST(Viewer, VisionMapsAreCarriedAtEveryDetailLevelAndCountInTheBudget) {
  ViewerData d = synthetic(4, 8, 8, 8, 6, 2, /*noise=*/true);
  ViewerReport bare, with;
  const std::string bare_page = render_viewer_html(d, {}, &bare);
  EXPECT_EQ(count(bare_page, "\"vision\":{"), 0u);
  EXPECT_EQ(count(bare_page, "\"vision_maps\":{"), 0u);
  d.vision = vision_of(d);
  std::mt19937 rng(5);  // incompressible maps, so their bytes show in the page's size
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (auto& x : d.vision->maps) x = u(rng);
  const std::size_t cells = d.vision->maps.size();  // 2 blocks x 16 x 16 patches
  ASSERT_EQ(cells, 512u);
  const std::string page = render_viewer_html(d, {}, &with);
  EXPECT_EQ(with.detail, ViewerDetail::Full);
  EXPECT_EQ(count(page, "\"vision\":{"), 1u);
  EXPECT_EQ(count(page, "\"vision_maps\":{"), 1u);
  // 8-bit maps (one byte per patch, base64: 4/3) in the page
  EXPECT_GE(with.html_bytes, bare.html_bytes + cells * 4 / 3 - 64);
  EXPECT_GE(with.data_bytes_raw, bare.data_bytes_raw + cells);
  // a budget only the maps fit: detail is dropped, the vision maps stay
  for (ViewerDetail want : {ViewerDetail::NoHeadPerQuery, ViewerDetail::MapsOnly}) {
    ViewerOptions options;
    options.budget_bytes = want == ViewerDetail::MapsOnly ? 1 : with.html_bytes - 64;
    ViewerReport report;
    const std::string smaller = render_viewer_html(d, options, &report);
    EXPECT_EQ(report.detail, want);
    EXPECT_EQ(count(smaller, "\"vision_maps\":{"), 1u) << viewer_detail_name(want);
    EXPECT_EQ(count(smaller, "\"vision_scale\":{"), 1u) << viewer_detail_name(want);
    EXPECT_EQ(count(smaller, "\"vision_windows\":{"), 1u) << viewer_detail_name(want);
  }
  // the vision maps count against the budget: a budget the page without them fits is not enough
  ViewerOptions options;
  options.budget_bytes = bare.html_bytes;
  ViewerReport report;
  render_viewer_html(d, options, &report);
  EXPECT_GT(static_cast<int>(report.detail), static_cast<int>(ViewerDetail::Full));
}

TEST(Viewer, BatchIndexEmbedsEveryItemSafely) {
  std::vector<BatchIndexItem> items(3);
  items[0] = {"cat", "cat.png", "What is this? 猫", " cat", 0.9, "ok", "", "cat/viewer.html", "cat/layer_00.jpg"};
  items[1] = {"bad", "bad.png", "</script><script>alert(1)</script>", "", -1, "error", "input: cannot decode", "", ""};
  items[2] = {"dog", "dog.png", "x", " dog", 0.5, "ok", "", "dog/viewer.html", ""};
  const std::string page = render_batch_index_html(items, {"batch <1>", 50});
  EXPECT_EQ(count(page, "</script>"), 2u);
  EXPECT_NE(page.find("batch &lt;1&gt;"), std::string::npos);
  EXPECT_NE(page.find("cat/viewer.html"), std::string::npos);
  EXPECT_EQ(page.find("ATTNMAP_"), std::string::npos);
}

}  // namespace
