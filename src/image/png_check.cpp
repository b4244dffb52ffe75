#include "image/png_check.hpp"

#include <png.h>

#include <csetjmp>
#include <cstring>

namespace attnmap::detail {

namespace {

struct ReadState {
  const unsigned char* data;
  size_t size;
  size_t pos;
  char error[256];
};

void on_error(png_structp png, png_const_charp message) {
  auto* state = static_cast<ReadState*>(png_get_error_ptr(png));
  std::strncpy(state->error, message ? message : "unknown error", sizeof state->error - 1);
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}

void on_read(png_structp png, png_bytep out, size_t n) {
  auto* state = static_cast<ReadState*>(png_get_io_ptr(png));
  if (state->size - state->pos < n) png_error(png, "the file ends early");
  std::memcpy(out, state->data + state->pos, n);
  state->pos += n;
}

// Images above OpenCV's own pixel limit are refused by OpenCV before libpng decodes them.
constexpr unsigned long long kMaxPixels = 1ull << 30;

// Only plain C objects live in this frame: longjmp must not skip a destructor.
bool decodes(ReadState* state) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, state, on_error, on_warning);
  if (!png) return true;  // cannot check; OpenCV will judge
  png_infop info = png_create_info_struct(png);
  png_bytep volatile row = nullptr;
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    return true;
  }
  if (setjmp(png_jmpbuf(png))) {
    if (row) png_free(png, row);
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_set_read_fn(png, state, on_read);
  png_read_info(png, info);
  const png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
  if (static_cast<unsigned long long>(width) * height > kMaxPixels) {
    png_destroy_read_struct(&png, &info, nullptr);
    return true;
  }
  const int passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  row = static_cast<png_bytep>(png_malloc(png, png_get_rowbytes(png, info)));
  for (int pass = 0; pass < passes; ++pass) {
    for (png_uint_32 y = 0; y < height; ++y) png_read_row(png, row, nullptr);
  }
  png_read_end(png, nullptr);
  png_free(png, row);
  row = nullptr;
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

}  // namespace

std::string png_decode_error(const std::string& bytes) {
  ReadState state{reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), 0, {}};
  return decodes(&state) ? std::string() : std::string(state.error);
}

}  // namespace attnmap::detail
