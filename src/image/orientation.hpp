// EXIF orientation as Pillow's ImageOps.exif_transpose finds and applies it (internal to src/image).
#pragma once

#include <opencv2/core.hpp>

#include <string_view>

namespace attnmap::detail {

// The orientation (1..8) Pillow's Image.getexif() reports for these file bytes: the first EXIF block
// of a JPEG (APP1), PNG (eXIf or "Raw profile type exif" text) or WebP (EXIF chunk), IFD0 of a TIFF,
// else an XMP tiff:Orientation. 1 when absent or unparseable, as exif_transpose then does nothing.
int read_orientation(std::string_view file_bytes);

// Pillow's Image.transpose for the method exif_transpose picks for `orientation`.
cv::Mat apply_orientation(const cv::Mat& image, int orientation);

}  // namespace attnmap::detail
