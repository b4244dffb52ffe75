// Animated GIF (GIF89a) output, e.g. one frame per layer of a video's attention maps. Written here
// because OpenCV 4.6 cannot write animated GIFs and its MP4 (mp4v) output does not play in browsers.
#pragma once

#include <opencv2/core.hpp>

#include <filesystem>
#include <vector>

namespace attnmap {

// Writes frames_bgr (BGR CV_8UC3, all of one size, at least one) as an animated GIF at path, atomically.
// One 256-colour palette serves all frames (see render/gif_palette.hpp): exact when the frames hold at
// most 256 colours, otherwise nearest colours without dithering. delay_ms is each frame's display time,
// rounded to GIF's centiseconds and at least 20 ms (browsers show shorter delays as 100 ms). loop is how
// many times to repeat; 0 plays forever. Throws Error(Internal) for invalid frames or arguments and
// Error(Output) naming path when the GIF cannot be written.
void write_gif_atomically(const std::filesystem::path& path, const std::vector<cv::Mat>& frames_bgr, int delay_ms,
                          int loop = 0);

}  // namespace attnmap
