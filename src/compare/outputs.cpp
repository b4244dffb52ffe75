#include <system_error>

#include "io/atomic_file.hpp"
#include "attnmap/compare.hpp"
#include "attnmap/error.hpp"

namespace attnmap {

void write_report(const CompareResult& result, const std::filesystem::path& path) {
  const auto ext = path.extension().string();
  if (ext == ".json") return write_file_atomically(path, report_json(result));
  if (ext == ".md") return write_file_atomically(path, report_markdown(result));
  throw Error(ErrorKind::Usage, "--report '" + path.string() + "': the name must end in .json or .md");
}

namespace {

// ensure_directory's advice names run/batch's --out; compare's output folders come from its own options.
void ensure_output_folder(const std::filesystem::path& dir, const std::string& option) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) {
    throw Error(ErrorKind::Output, "cannot create folder '" + dir.string() + "' for " + option + ": " +
                                       (ec ? ec.message() : std::string("a file of that name exists")) +
                                       "; choose another " + option + " path");
  }
}

}  // namespace

void write_compare_outputs(const CompareResult& result) {
  if (!result.options.report_path.empty()) {
    if (result.options.report_path.has_parent_path()) ensure_output_folder(result.options.report_path.parent_path(), "--report");
    write_report(result, result.options.report_path);
  }
  if (!result.options.diff_images_dir.empty()) {
    if (!result.pass) ensure_output_folder(result.options.diff_images_dir, "--diff-images");
    write_diff_images(result, result.options.diff_images_dir);
  }
}

}  // namespace attnmap
