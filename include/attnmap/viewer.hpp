// The self-contained HTML viewer (docs/viewer.md): one run's attention as plain data in, one HTML
// document out (inline script, style and data; no network), plus the batch index page. No libtorch
// types here: the caller copies its tensors into std::vector<float> with the shapes documented below.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace attnmap {

// What a token of the sequence is. Everything the chat template adds (im_start, "system", "user",
// vision_start/end, "assistant", newlines) is System.
enum class TokenRole { System, Image, Prompt, Answer };

const char* token_role_name(TokenRole role);  // "system" | "image" | "prompt" | "answer"

// `attnmap run --vision-blocks` (issue #17): attention inside the vision tower, one map per requested
// block on the unmerged patch grid (before the 2x2 merge), in the original image's orientation.
// The page's "Vision tower" section (docs/viewer.md) draws block b's map of temporal patch t,
// maps[b, t], over the same picture as the decoder's map of t, with the query patches outlined and,
// for a windowed block, the window borders (where `windows` changes between neighbouring patches).
struct ViewerVision {
  std::vector<int> blocks;              // vision block indexes, in the order of `maps`
  std::vector<std::string> attention;   // per block: "full" | "window"
  int grid_t = 1, grid_h = 0, grid_w = 0;  // the patch grid; grid_t equals ViewerData::frames for a video (1 for an image)
  int patch_size = 14;                  // pixels of the resized image per patch side (for labels)
  int window_patches = 8;               // a window's side in patches (0: the model has no windows)
  std::vector<float> maps;              // float32 [blocks, grid_t, grid_h, grid_w]
  std::vector<int> windows;             // [grid_t * grid_h * grid_w]: each patch's attention window id, raster order
  std::string query;                    // "mean" | "box:x0,y0,x1,y1" | "text-peak:L" as attention.json records it
  std::vector<int> query_patches;       // raster indexes (t, row, col) of the query patches; empty for "mean"
};

struct ViewerData {
  // The original image, as JPEG bytes (shown under the heatmap; the browser decodes it). Unused for a
  // video, whose pictures are `frame_jpegs`.
  std::vector<unsigned char> image_jpeg;
  // The merged image-token grid: the image tokens are merged_h * merged_w, in raster order.
  int merged_h = 0;
  int merged_w = 0;
  // The time axis: 1 for an image. A video (frame_labels not empty) has `frames` temporal patches (t),
  // each a merged_h x merged_w grid; its visual span is t * merged_h * merged_w tokens, t-major.
  int frames = 1;
  // A video: per temporal patch, the picture its map is drawn over (JPEG; empty: no pictures) and the
  // slider's label, e.g. "t1 · frames 8–12 · 1.00–1.50 s". Both empty for an image.
  std::vector<std::vector<unsigned char>> frame_jpegs;
  std::vector<std::string> frame_labels;
  bool is_video() const { return !frame_labels.empty(); }
  // The requested decoder layers, in the order of the first axis of `rows` and `maps`.
  std::vector<int> layers;
  int heads = 0;  // attention heads per layer (the second axis of `rows`)
  // Every token of the sequence (seq of them): its text as the page should show it (UTF-8; invalid
  // bytes, e.g. half of a byte-level emoji, are shown as U+FFFD) and its role.
  std::vector<std::string> tokens;
  std::vector<TokenRole> roles;
  // The image span: tokens [image_start, image_start + frames * merged_h * merged_w) are the image
  // (or video) tokens (their roles must be Image), in raster order of the merged grid, t-major.
  std::size_t image_start = 0;
  // The first token of each temporal patch's grid when the prompt writes text between them (Qwen3-VL's
  // timestamps): `frames` increasing starts, each grid merged_h * merged_w tokens; image_start must be
  // the first. Empty: the grids follow each other from image_start.
  std::vector<std::size_t> frame_starts;
  // Sequence positions of the query rows (prompt tokens, then answer tokens when there are any);
  // each one's role must be Prompt or Answer.
  std::vector<int> query_positions;
  // float32 [layers, heads, queries, seq]: the full attention row of every query over every key.
  // A query's image map is the slice [image_start, image_start + frames*merged_h*merged_w); the other
  // columns are its text-to-text attention.
  std::vector<float> rows;
  // float32 [layers, frames, merged_h, merged_w]: the maps of maps.npy (heads mean, mean over the prompt
  // query rows). The page shows these exact values for "heads: mean, query: all prompt tokens".
  std::vector<float> maps;
  // The next token after the prompt (the model's first answer token) and its probability; the
  // probability is < 0 when unknown.
  std::string next_token;
  double next_token_probability = -1;
  std::string answer;  // the generated answer text, empty when none
  // Lines shown on the page under the title, e.g. "model: Qwen2.5-VL-7B-Instruct", "prompt: ...".
  std::vector<std::string> metadata;
  std::string title = "attnmap viewer";
  std::optional<ViewerVision> vision;  // absent: no --vision-blocks
};

// How much of the per-head, per-query data the page carries (the budget rule drops detail in
// this order, and the page says what was dropped).
enum class ViewerDetail {
  Full = 0,           // every head x every query row (+ heads mean/max), and the query groups
  NoHeadPerQuery = 1, // each query row only for heads mean/max; each head only for the query groups
  NoPerQuery = 2,     // only the query groups (all prompt tokens, all answer tokens), every head
  MapsOnly = 3,       // only the maps of maps.npy
};

const char* viewer_detail_name(ViewerDetail detail);

struct ViewerOptions {
  // Upper bound on the size of the whole HTML document in bytes (20 MB = 20,000,000 bytes).
  std::size_t budget_bytes = 20'000'000;
  int compression_level = 6;  // zlib level 1..9 of the embedded data; 0 = not compressed
  std::string colormap = "jet";  // initial colormap: jet | viridis | turbo | inferno | gray
  double opacity = 0.5;           // initial heatmap opacity in [0, 1]
  int initial_layer_index = -1;   // index into ViewerData::layers; -1 = the last layer
};

// What render_viewer_html produced.
struct ViewerReport {
  ViewerDetail detail = ViewerDetail::Full;
  std::size_t html_bytes = 0;
  std::size_t data_bytes_raw = 0;         // the quantised data before compression
  std::size_t data_bytes_compressed = 0;  // after zlib (equal to raw when not compressed)
  std::vector<std::string> notes;         // what was dropped and why (also shown on the page)
};

// One self-contained HTML document (docs/viewer.md). Throws Error(Input) when the data's shapes
// or roles are inconsistent (the message names the field).
std::string render_viewer_html(const ViewerData& data, const ViewerOptions& options = {},
                               ViewerReport* report = nullptr);

// One row of the batch index page.
struct BatchIndexItem {
  std::string id;
  std::string image;           // the input image path, as given
  std::string prompt;
  std::string answer;          // next token or answer text; empty when none
  double probability = -1;     // of the next token; < 0 when unknown
  std::string status;          // "ok" | "error"
  std::string error;           // the error message when status is "error"
  std::string viewer_href;     // relative link to the item's viewer, e.g. "cat/viewer.html"; empty: no link
  std::string thumbnail_href;  // relative link to a small image, e.g. "cat/layer_12.jpg"; empty: none
};

struct BatchIndexOptions {
  std::string title = "attnmap batch";
  int page_size = 100;  // rows per page
};

// DIR/index.html for a batch: one row per item, sortable, filterable, paged (usable at 10,000+ items).
std::string render_batch_index_html(const std::vector<BatchIndexItem>& items, const BatchIndexOptions& options = {});

// The encoding helpers, public for the tests.
namespace viewer_encoding {

// Linear 8-bit with a per-map scale: scale = max(values) / 255 (0 for an all-zero map),
// q = round(v / scale) clamped to 0..255; decoded as q * scale, so |v - decoded| <= scale / 2.
// Negative and non-finite values are stored as 0.
float quantise_u8(const float* values, std::size_t n, std::uint8_t* out);

// zlib format (RFC 1950; the browser's DecompressionStream("deflate")).
std::vector<std::uint8_t> zlib_compress(const std::vector<std::uint8_t>& bytes, int level);
std::string base64_encode(const std::uint8_t* bytes, std::size_t n);

}  // namespace viewer_encoding

}  // namespace attnmap
