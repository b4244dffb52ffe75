#include "attnmap/atomic_file.hpp"
#include "attnmap/compare.hpp"
#include "attnmap/error.hpp"

namespace attnmap {

void write_report(const CompareResult& result, const std::filesystem::path& path) {
  const auto ext = path.extension().string();
  if (ext == ".json") return write_file_atomically(path, report_json(result));
  if (ext == ".md") return write_file_atomically(path, report_markdown(result));
  throw Error(ErrorKind::Usage, "--report '" + path.string() + "': the name must end in .json or .md");
}

void write_compare_outputs(const CompareResult& result) {
  if (!result.options.report_path.empty()) {
    if (result.options.report_path.has_parent_path()) ensure_directory(result.options.report_path.parent_path());
    write_report(result, result.options.report_path);
  }
  if (!result.options.diff_images_dir.empty()) write_diff_images(result, result.options.diff_images_dir);
}

}  // namespace attnmap
