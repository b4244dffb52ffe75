// The self-contained HTML viewer: checks the plain data, quantises the attention rows (8-bit with
// per-map scales), picks the detail level that fits the size budget, compresses and embeds it with
// the page's assets (compiled in from src/viewer/assets). Format: docs/viewer.md.
#include "attnmap/viewer.hpp"

#include "attnmap/error.hpp"
#include "attnmap_viewer_assets.hpp"

#include <nlohmann/json.hpp>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string_view>
#include <utility>

namespace attnmap {

namespace {

using nlohmann::json;

std::string_view asset(const unsigned char* bytes, std::size_t size) {
  return {reinterpret_cast<const char*>(bytes), size};
}

[[noreturn]] void bad_data(const std::string& message) {
  throw Error(ErrorKind::Input, "viewer: " + message);
}

// The JSON embedded in a <script type="application/json">: no "<" at all (so no "</script>"),
// invalid UTF-8 replaced by U+FFFD.
std::string script_json(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size() + 64);
  for (char c : text) {
    if (c == '<') {
      out += "\\u003c";
    } else {
      out += c;
    }
  }
  return out;
}

std::string html_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// The template with each marker (exactly once in it) replaced by its content, in one pass over the
// template, so that content (a title, the data) is never searched for markers.
std::string assemble(std::string_view page, const std::vector<std::pair<std::string_view, std::string_view>>& parts) {
  std::vector<std::pair<std::size_t, std::size_t>> at;  // (offset in page, index into parts)
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const auto pos = page.find(parts[i].first);
    if (pos == std::string_view::npos)
      throw Error(ErrorKind::Internal, "viewer: asset lacks the marker " + std::string(parts[i].first));
    at.emplace_back(pos, i);
  }
  std::sort(at.begin(), at.end());
  std::size_t size = page.size();
  for (const auto& p : parts) size += p.second.size();
  std::string out;
  out.reserve(size);
  std::size_t from = 0;
  for (const auto& [pos, i] : at) {
    out.append(page.substr(from, pos - from));
    out.append(parts[i].second);
    from = pos + parts[i].first.size();
  }
  out.append(page.substr(from));
  return out;
}

// The tokens of one grid (an image, or one temporal patch of a video).
std::size_t grid_pixels(const ViewerData& d) { return static_cast<std::size_t>(d.merged_h) * d.merged_w; }

// The whole visual span: frames * merged_h * merged_w tokens.
std::size_t span_of(const ViewerData& d) { return static_cast<std::size_t>(d.frames) * grid_pixels(d); }
// Where each frame's grid starts in the sequence.
std::vector<std::size_t> frame_starts_of(const ViewerData& d) {
  if (!d.frame_starts.empty()) return d.frame_starts;
  std::vector<std::size_t> starts;
  for (int f = 0; f < d.frames; ++f) starts.push_back(d.image_start + static_cast<std::size_t>(f) * grid_pixels(d));
  return starts;
}
// Per token of a `seq`-long sequence: the frame whose grid holds it, or -1 for a text token.
std::vector<int> frame_of_tokens(const std::vector<std::size_t>& starts, std::size_t grid, std::size_t seq) {
  std::vector<int> frame(seq, -1);
  for (std::size_t f = 0; f < starts.size(); ++f)
    for (std::size_t k = starts[f]; k < std::min(seq, starts[f] + grid); ++k) frame[k] = static_cast<int>(f);
  return frame;
}

void validate_time_axis(const ViewerData& d) {
  if (d.frames < 1) bad_data("frames must be at least 1");
  if (!d.is_video()) {
    if (d.frames != 1)
      bad_data("frames is " + std::to_string(d.frames) + " but frame_labels is empty (an image has 1 frame)");
    if (!d.frame_jpegs.empty()) bad_data("frame_jpegs is set but frame_labels is empty (an image uses image_jpeg)");
    return;
  }
  const auto t = static_cast<std::size_t>(d.frames);
  if (d.frame_labels.size() != t)
    bad_data("frame_labels has " + std::to_string(d.frame_labels.size()) + " entries, frames " + std::to_string(t));
  if (!d.frame_jpegs.empty() && d.frame_jpegs.size() != t)
    bad_data("frame_jpegs has " + std::to_string(d.frame_jpegs.size()) + " entries, frames " + std::to_string(t));
}

// The vision tower's maps (--vision-blocks): every size follows from blocks x grid_t x grid_h x grid_w.
void validate_vision(const ViewerData& d) {
  const ViewerVision& v = *d.vision;
  const auto bad = [](const std::string& message) { bad_data("vision: " + message); };
  if (v.blocks.empty()) bad("blocks is empty (leave vision unset when no block is requested)");
  for (int b : v.blocks)
    if (b < 0) bad("block " + std::to_string(b) + " is negative");
  if (v.attention.size() != v.blocks.size())
    bad("attention has " + std::to_string(v.attention.size()) + " entries, blocks " + std::to_string(v.blocks.size()));
  bool windowed = false;
  for (const std::string& a : v.attention) {
    if (a != "full" && a != "window") bad("attention \"" + a + "\" is not \"full\" or \"window\"");
    windowed = windowed || a == "window";
  }
  if (v.grid_t < 1 || v.grid_h < 1 || v.grid_w < 1) bad("grid_t, grid_h and grid_w must be positive");
  if (v.grid_t != d.frames)
    bad("grid_t is " + std::to_string(v.grid_t) + " but frames is " + std::to_string(d.frames) +
        " (the vision tower sees the same temporal patches as the decoder)");
  if (v.patch_size < 1) bad("patch_size must be positive");
  if (v.window_patches < 0) bad("window_patches must not be negative");
  if (windowed && v.window_patches == 0) bad("a block's attention is \"window\" but window_patches is 0");
  const std::size_t patches = static_cast<std::size_t>(v.grid_t) * v.grid_h * v.grid_w;
  if (v.maps.size() != v.blocks.size() * patches)
    bad("maps has " + std::to_string(v.maps.size()) + " values, [blocks, grid_t, grid_h, grid_w] needs " +
        std::to_string(v.blocks.size() * patches));
  if (v.windows.size() != patches)
    bad("windows has " + std::to_string(v.windows.size()) + " entries, grid_t * grid_h * grid_w is " + std::to_string(patches));
  for (int w : v.windows)
    if (w < 0) bad("window id " + std::to_string(w) + " is negative");
  const bool mean = v.query == "mean";
  // (bare "text-peak": the model's focus layer, as `attnmap run` records it when no layer is named)
  if (!mean && v.query.rfind("box:", 0) != 0 && v.query != "text-peak" && v.query.rfind("text-peak:", 0) != 0)
    bad("query \"" + v.query + "\" is not \"mean\", \"box:x0,y0,x1,y1\" or \"text-peak:L\"");
  if (mean && !v.query_patches.empty()) bad("query_patches must be empty for the query \"mean\"");
  if (!mean && v.query_patches.empty()) bad("query_patches is empty for the query \"" + v.query + "\"");
  for (int q : v.query_patches)
    if (q < 0 || static_cast<std::size_t>(q) >= patches)
      bad("query patch " + std::to_string(q) + " is outside the grid of " + std::to_string(patches) + " patches");
}

void validate(const ViewerData& d) {
  if (d.merged_h <= 0 || d.merged_w <= 0) bad_data("merged_h and merged_w must be positive");
  validate_time_axis(d);
  if (d.layers.empty()) bad_data("layers is empty");
  if (d.heads <= 0) bad_data("heads must be positive");
  const std::size_t seq = d.tokens.size();
  if (d.roles.size() != seq) bad_data("roles has " + std::to_string(d.roles.size()) + " entries, tokens " + std::to_string(seq));
  const std::size_t grid = grid_pixels(d);
  if (!d.frame_starts.empty()) {
    if (d.frame_starts.size() != static_cast<std::size_t>(d.frames))
      bad_data("frame_starts has " + std::to_string(d.frame_starts.size()) + " entries, frames " + std::to_string(d.frames));
    if (d.frame_starts.front() != d.image_start) bad_data("frame_starts must begin at image_start");
    for (std::size_t f = 1; f < d.frame_starts.size(); ++f)
      if (d.frame_starts[f] < d.frame_starts[f - 1] + grid) bad_data("frame_starts overlap or are not increasing");
  }
  const std::vector<std::size_t> starts = frame_starts_of(d);
  if (starts.back() + grid > seq)
    bad_data(d.is_video() ? "the video's last grid [frame start, start + merged_h*merged_w) exceeds the sequence"
                          : "the image span [image_start, image_start + merged_h*merged_w) exceeds the sequence");
  const std::vector<int> frame = frame_of_tokens(starts, grid, seq);
  for (std::size_t i = 0; i < seq; ++i) {
    const bool in_span = frame[i] >= 0;
    if (in_span != (d.roles[i] == TokenRole::Image))
      bad_data("token " + std::to_string(i) + (in_span ? " is in the image span but its role is not image"
                                                       : " has role image outside the image span"));
  }
  if (d.query_positions.empty()) bad_data("query_positions is empty");
  for (int q : d.query_positions) {
    if (q < 0 || static_cast<std::size_t>(q) >= seq) bad_data("query position " + std::to_string(q) + " is outside the sequence");
    if (d.roles[q] != TokenRole::Prompt && d.roles[q] != TokenRole::Answer)
      bad_data("query position " + std::to_string(q) + " is not a prompt or answer token");
  }
  const std::size_t want_rows = d.layers.size() * d.heads * d.query_positions.size() * seq;
  if (d.rows.size() != want_rows)
    bad_data("rows has " + std::to_string(d.rows.size()) + " values, [layers, heads, queries, seq] needs " + std::to_string(want_rows));
  const std::size_t pixels = span_of(d);
  if (d.maps.size() != d.layers.size() * pixels)
    bad_data("maps has " + std::to_string(d.maps.size()) + " values, " +
             (d.is_video() ? "[layers, frames, merged_h, merged_w]" : "[layers, merged_h, merged_w]") + " needs " +
             std::to_string(d.layers.size() * pixels));
  if (d.vision) validate_vision(d);
}

// A binary payload of named blocks, each at a 4-byte aligned offset.
struct Payload {
  std::vector<std::uint8_t> bytes;
  json layout = json::object();

  std::uint8_t* add(const std::string& name, const std::string& dtype, std::vector<std::size_t> shape) {
    std::size_t n = 1;
    for (auto s : shape) n *= s;
    const std::size_t elem = dtype == "u8" ? 1 : 4;  // f32, i32: little-endian
    const std::size_t offset = (bytes.size() + 3) / 4 * 4;
    bytes.resize(offset + n * elem, 0);
    layout[name] = {{"offset", offset}, {"dtype", dtype}, {"shape", shape}};
    return bytes.data() + offset;
  }
  void add_f32(const std::string& name, std::vector<std::size_t> shape, const std::vector<float>& values) {
    std::uint8_t* at = add(name, "f32", std::move(shape));
    std::memcpy(at, values.data(), values.size() * sizeof(float));
  }
};

// One head slot of the encoded rows: 0 = mean over heads, 1 = max over heads, 2 + h = head h.
class RowSource {
 public:
  explicit RowSource(const ViewerData& d)
      : d_(d), seq_(d.tokens.size()), queries_(d.query_positions.size()) {}

  // Row (layer l, head slot s, query q), float32 [seq].
  void row(std::size_t l, std::size_t slot, std::size_t q, std::vector<float>& out) const {
    out.assign(seq_, 0.0f);
    const std::size_t heads = d_.heads;
    auto at = [&](std::size_t h) { return d_.rows.data() + ((l * heads + h) * queries_ + q) * seq_; };
    if (slot >= 2) {
      std::copy_n(at(slot - 2), seq_, out.begin());
      return;
    }
    if (slot == 0) {
      std::vector<double> sum(seq_, 0.0);
      for (std::size_t h = 0; h < heads; ++h) {
        const float* r = at(h);
        for (std::size_t k = 0; k < seq_; ++k) sum[k] += r[k];
      }
      for (std::size_t k = 0; k < seq_; ++k) out[k] = static_cast<float>(sum[k] / heads);
    } else {
      std::copy_n(at(0), seq_, out.begin());
      for (std::size_t h = 1; h < heads; ++h) {
        const float* r = at(h);
        for (std::size_t k = 0; k < seq_; ++k) out[k] = std::max(out[k], r[k]);
      }
    }
  }

  // The mean of row(l, slot, q) over the queries of a group.
  void group_row(std::size_t l, std::size_t slot, const std::vector<std::size_t>& group, std::vector<float>& out) const {
    std::vector<double> sum(seq_, 0.0);
    std::vector<float> r;
    for (std::size_t q : group) {
      row(l, slot, q, r);
      for (std::size_t k = 0; k < seq_; ++k) sum[k] += r[k];
    }
    out.assign(seq_, 0.0f);
    for (std::size_t k = 0; k < seq_; ++k) out[k] = static_cast<float>(sum[k] / group.size());
  }

 private:
  const ViewerData& d_;
  std::size_t seq_;
  std::size_t queries_;
};

// Quantises one row into `out` [seq]: each frame's grid of the visual span (`starts`, `grid` tokens
// each; one for an image) and the text columns each with their own scale, so a frame the query barely
// looks at keeps its detail. Writes frames + 1 scales (the frames', then the text's) and the exact
// mass of the whole span. `frame` is frame_of_tokens(starts, grid, seq).
void encode_row(const std::vector<float>& row, const std::vector<std::size_t>& starts, const std::vector<int>& frame,
                std::size_t grid, std::uint8_t* out, float* scales, float* image_mass) {
  const std::size_t seq = row.size(), frames = starts.size();
  double mass = 0;
  for (std::size_t f = 0; f < frames; ++f) {
    scales[f] = viewer_encoding::quantise_u8(row.data() + starts[f], grid, out + starts[f]);
    for (std::size_t k = starts[f]; k < starts[f] + grid; ++k) mass += row[k];
  }
  std::vector<float> text;
  text.reserve(seq);
  for (std::size_t k = 0; k < seq; ++k)
    if (frame[k] < 0) text.push_back(row[k]);
  std::vector<std::uint8_t> qtext(text.size());
  scales[frames] = viewer_encoding::quantise_u8(text.data(), text.size(), qtext.data());
  std::size_t t = 0;
  for (std::size_t k = 0; k < seq; ++k)
    if (frame[k] < 0) out[k] = qtext[t++];
  *image_mass = static_cast<float>(mass);
}

struct Groups {
  std::vector<std::string> names;
  std::vector<std::vector<std::size_t>> members;
};

Groups query_groups(const ViewerData& d) {
  Groups g;
  for (TokenRole role : {TokenRole::Prompt, TokenRole::Answer}) {
    std::vector<std::size_t> members;
    for (std::size_t q = 0; q < d.query_positions.size(); ++q)
      if (d.roles[d.query_positions[q]] == role) members.push_back(q);
    if (!members.empty()) {
      g.names.push_back(token_role_name(role));
      g.members.push_back(std::move(members));
    }
  }
  return g;
}

// The vision tower's maps, quantised like the decoder's rows with one scale per block and temporal
// patch; the window ids as int32.
void add_vision(Payload& p, const ViewerVision& v) {
  static_assert(sizeof(int) == 4, "the page reads the window ids as int32");
  const std::size_t B = v.blocks.size(), T = v.grid_t, H = v.grid_h, W = v.grid_w, grid = H * W;
  // Every block first (p.add may move the buffer), then the writes.
  p.add("vision_scale", "f32", {B, T});
  p.add("vision_windows", "i32", {T, H, W});
  p.add("vision_maps", "u8", {B, T, H, W});
  const auto at = [&](const char* name) { return p.bytes.data() + p.layout[name]["offset"].get<std::size_t>(); };
  std::memcpy(at("vision_windows"), v.windows.data(), v.windows.size() * sizeof(int));
  float* scales = reinterpret_cast<float*>(at("vision_scale"));
  std::uint8_t* q = at("vision_maps");
  for (std::size_t i = 0; i < B * T; ++i) scales[i] = viewer_encoding::quantise_u8(v.maps.data() + i * grid, grid, q + i * grid);
}

Payload encode_payload(const ViewerData& d, ViewerDetail detail, const Groups& groups) {
  const std::size_t L = d.layers.size(), H = d.heads, Q = d.query_positions.size(), S = d.tokens.size();
  const std::size_t T = d.frames, grid = grid_pixels(d), P = span_of(d);
  const std::size_t G = groups.names.size();
  Payload p;
  p.add_f32("maps", {L, P}, d.maps);
  if (d.vision) add_vision(p, *d.vision);  // small: carried at every detail level
  if (detail == ViewerDetail::MapsOnly) return p;
  const RowSource source(d);
  const std::vector<std::size_t> starts = frame_starts_of(d);
  const std::vector<int> frame = frame_of_tokens(starts, grid, S);
  const std::size_t gslots = H + 2;
  const std::size_t qslots = detail == ViewerDetail::Full ? H + 2 : (detail == ViewerDetail::NoHeadPerQuery ? 2 : 0);
  // The float blocks first (4-byte aligned), then the bytes.
  p.add("groups_scale", "f32", {L, gslots, G, T + 1});
  p.add("groups_image_mass", "f32", {L, gslots, G});
  if (qslots) {
    p.add("queries_scale", "f32", {L, qslots, Q, T + 1});
    p.add("queries_image_mass", "f32", {L, qslots, Q});
  }
  p.add("groups", "u8", {L, gslots, G, S});
  if (qslots) p.add("queries", "u8", {L, qslots, Q, S});
  auto block = [&](const char* name) { return p.bytes.data() + p.layout[name]["offset"].get<std::size_t>(); };
  std::vector<float> row;
  for (std::size_t l = 0; l < L; ++l)
    for (std::size_t s = 0; s < gslots; ++s)
      for (std::size_t g = 0; g < G; ++g) {
        source.group_row(l, s, groups.members[g], row);
        const std::size_t i = (l * gslots + s) * G + g;
        encode_row(row, starts, frame, grid, block("groups") + i * S,
                   reinterpret_cast<float*>(block("groups_scale")) + i * (T + 1),
                   reinterpret_cast<float*>(block("groups_image_mass")) + i);
      }
  for (std::size_t l = 0; l < L; ++l)
    for (std::size_t s = 0; s < qslots; ++s)
      for (std::size_t q = 0; q < Q; ++q) {
        source.row(l, s, q, row);
        const std::size_t i = (l * qslots + s) * Q + q;
        encode_row(row, starts, frame, grid, block("queries") + i * S,
                   reinterpret_cast<float*>(block("queries_scale")) + i * (T + 1),
                   reinterpret_cast<float*>(block("queries_image_mass")) + i);
      }
  return p;
}

json layer_summary(const ViewerData& d) {
  const std::size_t P = span_of(d);  // a video's summary is over all its frames
  json out = json::array();
  for (std::size_t l = 0; l < d.layers.size(); ++l) {
    const float* m = d.maps.data() + l * P;
    double sum = 0;
    for (std::size_t i = 0; i < P; ++i) sum += std::max(0.0f, m[i]);
    double entropy = 0;
    if (sum > 0)
      for (std::size_t i = 0; i < P; ++i) {
        const double p = std::max(0.0f, m[i]) / sum;
        if (p > 0) entropy -= p * std::log(p);
      }
    out.push_back({{"layer", d.layers[l]}, {"image_mass", sum}, {"entropy", entropy}});
  }
  return out;
}

std::string notes_for(ViewerDetail detail, std::size_t budget) {
  const std::string why = " to keep the page under its size budget of " + std::to_string(budget) + " bytes";
  switch (detail) {
    case ViewerDetail::Full: return "";
    case ViewerDetail::NoHeadPerQuery:
      return "Per-head detail of single query tokens was dropped" + why +
             ": single query tokens show heads mean/max only; each head shows the query groups.";
    case ViewerDetail::NoPerQuery:
      return "Per-query detail was dropped" + why + ": only the query groups (all prompt tokens, all answer tokens) are shown.";
    case ViewerDetail::MapsOnly:
      return "Per-head and per-query detail and text self-attention were dropped" + why +
             ": only the maps of maps.npy (heads mean, all prompt tokens) are shown.";
  }
  return "";
}

// The pictures under the heatmap, as inline base64 blocks: an image's one JPEG ("attnmap-image"), or
// a video's JPEG per temporal patch ("attnmap-frame-K"). They count against the page's budget like
// everything else in it.
std::string picture_scripts(const ViewerData& d) {
  const auto script = [](const std::string& id, const std::vector<unsigned char>& jpeg) {
    return "\n<script type=\"application/octet-stream\" id=\"" + id + "\">" +
           viewer_encoding::base64_encode(jpeg.data(), jpeg.size()) + "</script>";
  };
  if (!d.is_video()) return script("attnmap-image", d.image_jpeg);
  std::string out;
  for (std::size_t k = 0; k < d.frame_jpegs.size(); ++k)
    out += script("attnmap-frame-" + std::to_string(k), d.frame_jpegs[k]);
  return out;
}

}  // namespace

const char* token_role_name(TokenRole role) {
  switch (role) {
    case TokenRole::System: return "system";
    case TokenRole::Image: return "image";
    case TokenRole::Prompt: return "prompt";
    case TokenRole::Answer: return "answer";
  }
  return "system";
}

const char* viewer_detail_name(ViewerDetail detail) {
  switch (detail) {
    case ViewerDetail::Full: return "full";
    case ViewerDetail::NoHeadPerQuery: return "no-head-per-query";
    case ViewerDetail::NoPerQuery: return "no-per-query";
    case ViewerDetail::MapsOnly: return "maps-only";
  }
  return "full";
}

namespace viewer_encoding {

float quantise_u8(const float* values, std::size_t n, std::uint8_t* out) {
  float max = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (std::isfinite(values[i])) max = std::max(max, values[i]);
  if (!(max > 0)) {
    std::fill_n(out, n, std::uint8_t{0});
    return 0.0f;
  }
  const float scale = max / 255.0f;
  for (std::size_t i = 0; i < n; ++i) {
    const float v = values[i];
    if (!std::isfinite(v) || v <= 0) {
      out[i] = 0;
      continue;
    }
    const long q = std::lround(static_cast<double>(v) / scale);
    out[i] = static_cast<std::uint8_t>(std::clamp(q, 0L, 255L));
  }
  return scale;
}

std::vector<std::uint8_t> zlib_compress(const std::vector<std::uint8_t>& bytes, int level) {
  uLongf size = compressBound(static_cast<uLong>(bytes.size()));
  std::vector<std::uint8_t> out(size);
  if (compress2(out.data(), &size, bytes.data(), static_cast<uLong>(bytes.size()), level) != Z_OK)
    throw Error(ErrorKind::Resource, "viewer: zlib could not compress the page's data");
  out.resize(size);
  return out;
}

std::string base64_encode(const std::uint8_t* bytes, std::size_t n) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < n; i += 3) {
    const std::uint32_t v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (i < n) {
    std::uint32_t v = bytes[i] << 16;
    if (i + 1 < n) v |= bytes[i + 1] << 8;
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace viewer_encoding

std::string render_viewer_html(const ViewerData& d, const ViewerOptions& options, ViewerReport* report) {
  validate(d);
  const Groups groups = query_groups(d);
  const std::string pictures = picture_scripts(d);

  json meta;
  meta["format_version"] = 1;
  meta["title"] = d.title;
  meta["metadata"] = d.metadata;
  meta["grid"] = {d.merged_h, d.merged_w};
  meta["layers"] = d.layers;
  meta["heads"] = d.heads;
  meta["tokens"] = d.tokens;
  json roles = json::array();
  for (TokenRole r : d.roles) roles.push_back(token_role_name(r));
  meta["roles"] = roles;
  meta["image_start"] = d.image_start;
  meta["frame_starts"] = frame_starts_of(d);
  meta["image_count"] = span_of(d);
  // Only a video's metadata has the time axis, so an image's page is what it was before videos.
  if (d.is_video())
    meta["video"] = {{"frames", d.frames}, {"labels", d.frame_labels}, {"pictures", !d.frame_jpegs.empty()}};
  if (d.vision) {
    const ViewerVision& v = *d.vision;
    meta["vision"] = {{"blocks", v.blocks}, {"attention", v.attention}, {"grid", {v.grid_t, v.grid_h, v.grid_w}},
                      {"patch_size", v.patch_size}, {"window_patches", v.window_patches}, {"query", v.query},
                      {"query_patches", v.query_patches}};
  }
  meta["query_positions"] = d.query_positions;
  json gj = json::array();
  for (std::size_t g = 0; g < groups.names.size(); ++g) gj.push_back({{"name", groups.names[g]}, {"queries", groups.members[g]}});
  meta["groups"] = gj;
  meta["next_token"] = d.next_token;
  meta["next_token_probability"] = d.next_token_probability;
  meta["answer"] = d.answer;
  meta["layer_summary"] = layer_summary(d);
  meta["initial"] = {{"colormap", options.colormap}, {"opacity", std::clamp(options.opacity, 0.0, 1.0)},
                     {"layer_index", options.initial_layer_index >= 0 && options.initial_layer_index < static_cast<int>(d.layers.size())
                                         ? options.initial_layer_index
                                         : static_cast<int>(d.layers.size()) - 1}};
  meta["quantisation"] = "u8-linear-per-map";
  meta["compression"] = options.compression_level > 0 ? "deflate" : "none";
  meta["budget_bytes"] = options.budget_bytes;

  std::string page;
  ViewerReport rep;
  for (int level = 0; level <= 3; ++level) {
    const auto detail = static_cast<ViewerDetail>(level);
    Payload payload = encode_payload(d, detail, groups);
    std::vector<std::uint8_t> packed =
        options.compression_level > 0 ? viewer_encoding::zlib_compress(payload.bytes, std::clamp(options.compression_level, 1, 9))
                                      : payload.bytes;
    json m = meta;
    m["detail"] = viewer_detail_name(detail);
    m["layout"] = payload.layout;
    m["data_bytes"] = payload.bytes.size();
    rep = {};
    rep.detail = detail;
    rep.data_bytes_raw = payload.bytes.size();
    rep.data_bytes_compressed = packed.size();
    if (const std::string note = notes_for(detail, options.budget_bytes); !note.empty()) rep.notes.push_back(note);
    m["notes"] = rep.notes;

    const std::string title = html_escape(d.title);
    const std::string data = "<script type=\"application/json\" id=\"attnmap-meta\">" + script_json(m) + "</script>" +
                             pictures + "\n<script type=\"application/octet-stream\" id=\"attnmap-data\">" +
                             viewer_encoding::base64_encode(packed.data(), packed.size()) + "</script>";
    page = assemble(asset(viewer_assets::viewer_html, viewer_assets::viewer_html_size),
                    {{"<!--ATTNMAP_TITLE-->", title},
                     {"/*ATTNMAP_CSS*/", asset(viewer_assets::viewer_css, viewer_assets::viewer_css_size)},
                     {"<!--ATTNMAP_DATA-->", data},
                     {"/*ATTNMAP_JS*/", asset(viewer_assets::viewer_js, viewer_assets::viewer_js_size)}});
    rep.html_bytes = page.size();
    if (page.size() <= options.budget_bytes) break;
    if (level == 3) {
      const std::string pictures_note =
          " (the frame pictures alone take " + std::to_string(pictures.size()) + " bytes).";
      rep.notes.push_back("The page is still over its size budget with the maps only" +
                          (d.is_video() ? pictures_note : std::string(".")));
    }
  }
  if (report) *report = rep;
  return page;
}

std::string render_batch_index_html(const std::vector<BatchIndexItem>& items, const BatchIndexOptions& options) {
  json rows = json::array();
  for (const auto& it : items)
    rows.push_back({it.id, it.image, it.prompt, it.answer, it.probability, it.status, it.error, it.viewer_href, it.thumbnail_href});
  json meta = {{"title", options.title}, {"page_size", std::max(1, options.page_size)},
               {"columns", {"id", "image", "prompt", "answer", "probability", "status", "error", "viewer", "thumbnail"}},
               {"items", rows}};
  const std::string title = html_escape(options.title);
  const std::string data = "<script type=\"application/json\" id=\"attnmap-index\">" + script_json(meta) + "</script>";
  std::string page = assemble(asset(viewer_assets::index_html, viewer_assets::index_html_size),
                              {{"<!--ATTNMAP_TITLE-->", title},
                               {"/*ATTNMAP_CSS*/", asset(viewer_assets::viewer_css, viewer_assets::viewer_css_size)},
                               {"<!--ATTNMAP_DATA-->", data},
                               {"/*ATTNMAP_JS*/", asset(viewer_assets::index_js, viewer_assets::index_js_size)}});
  return page;
}

}  // namespace attnmap
