// Heatmap rendering for `attnmap run`: attention maps coloured and blended over the image, a labelled
// montage of all layers, a strip of an answer's tokens, and atomic JPEG writing.
#pragma once

#include <opencv2/core.hpp>
#include <torch/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace attnmap {

struct RenderOptions {
  std::string colormap = "jet";  // jet | viridis | turbo | inferno
  double alpha = 0.5;            // weight of the heatmap in the blend, in [0, 1]
  double blur_sigma = 0;         // Gaussian blur of the upsampled map, in original-image pixels; 0 = off

  // Throws Error(Usage) naming the option and its valid values.
  void validate() const;
};

// The colormap names RenderOptions::colormap accepts, in the order the CLI should list them.
const std::vector<std::string>& colormap_names();

// `map` (float32 [h', w'], any scale) normalised by its own min/max (a constant map renders as all
// "low"), upsampled to the size of `original_rgb` (CV_8UC3, RGB), optionally blurred, coloured and
// alpha-blended over the image. Returns BGR CV_8UC3 at the original size, ready for JPEG encoding.
cv::Mat render_overlay(const cv::Mat& original_rgb, const torch::Tensor& map, const RenderOptions& options);

// One montage of every map (tiles with the longest side at most 256 px, each captioned with its
// label, e.g. "layer 12") and a colour bar. All maps share one min/max, so tiles are comparable;
// the bar says so (`scale_note`) and shows the range. Returns BGR CV_8UC3.
cv::Mat render_grid(const cv::Mat& original_rgb, const std::vector<torch::Tensor>& maps,
                    const std::vector<std::string>& labels, const RenderOptions& options,
                    const std::string& scale_note = "one scale shared by all layers");

// The answer strip of one decoder layer: `maps[k]` is the attention behind answer token k and
// `labels[k]` its decoded text (UTF-8, any script; invalid bytes show as U+FFFD). One tile per token,
// left to right in answer order, eight to a row, then the next row; all tiles share one min/max, and
// a colour bar under them shows the range with "one scale shared by all answer tokens".
//
// Layout: the image is scaled (up or down) so its longest side is 176 px; each cell is that tile,
// at least 112 px wide (the tile centred in it), with a 24-px caption above it; 6 px between cells
// and around them; at least 320 px wide in all; the colour bar adds 56 px at the bottom. The
// caption is "#k" and the token's text, drawn with the system's fonts (fontconfig's sans-serif
// order, falling back font by font per character) and shrunk or cut with "…" to fit; spaces and
// control characters are shown as ␣ ↵ ⇥ etc., so " the" visibly starts with a space. When some
// character of a token has no installed font (or there are no fonts), that caption is "#k" alone and
// `*labels_as_text` (when given) is set to false; else it is set to true.
//
// `original_rgb` CV_8UC3 RGB; each map float32 [h', w']. Error(Internal) for an empty image or
// when maps is empty or its size differs from labels'; Error(Usage) for invalid options. Returns BGR
// CV_8UC3. Safe to call from several threads at once.
cv::Mat render_answer_strip(const cv::Mat& original_rgb, const std::vector<torch::Tensor>& maps,
                            const std::vector<std::string>& labels, const RenderOptions& options,
                            bool* labels_as_text = nullptr);

// The frame strip of one decoder layer of a video: tile k is `maps[k]` (float32 [h', w'], temporal
// patch k) blended over `frames_rgb[k]` (what the patch saw: its frames averaged, CV_8UC3 RGB, all of
// one size), captioned
// with `labels[k]` (e.g. "t0 · 0.00 s"). Tiles 240 px on the longest side, six to a row, one colour
// scale for all (a colour bar says so). Error(Internal) for mismatched sizes; returns BGR CV_8UC3.
cv::Mat render_frame_strip(const std::vector<cv::Mat>& frames_rgb, const std::vector<torch::Tensor>& maps,
                           const std::vector<std::string>& labels, const RenderOptions& options);

// The same tiles one at a time, for an animation: each frame is the temporal patch's map over its
// image (480 px on the longest side) under its caption, over the colour bar of the one shared scale.
// Returns BGR CV_8UC3 frames of one size.
std::vector<cv::Mat> render_frame_sequence(const std::vector<cv::Mat>& frames_rgb, const std::vector<torch::Tensor>& maps,
                                           const std::vector<std::string>& labels, const RenderOptions& options);

// Strips one under another, each under its title ("layer 3"), padded to the widest: a video's grid.jpg.
cv::Mat stack_strips(const std::vector<cv::Mat>& strips_bgr, const std::vector<std::string>& titles);

// Encodes `bgr` as JPEG (quality 1..100) and writes it atomically; Error(Output) on failure.
void write_jpeg_atomically(const std::filesystem::path& path, const cv::Mat& bgr, int quality = 92);

}  // namespace attnmap
