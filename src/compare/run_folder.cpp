// compare's view of one run folder, read only through the output module (attnmap/run_folder.hpp),
// which checks every field and names the file and field of any problem.
#include <algorithm>

#include "attnmap/run_folder.hpp"
#include "internal.hpp"

namespace attnmap::compare_detail {

RunFolder load_run_folder(const std::filesystem::path& dir, bool with_maps, bool with_answer_maps) {
  const RunRecord record = RunRecord::read(dir);
  RunFolder run;
  run.dir = dir;
  run.prompt = record.prompt;
  run.grid_t = record.grid.t;
  run.grid_h = record.grid.h;
  run.grid_w = record.grid.w;
  run.merged_h = record.grid.merged_h;
  run.merged_w = record.grid.merged_w;
  int max_layer = 0;
  for (const LayerStats& s : record.layers) {
    run.layers.push_back(static_cast<int>(s.layer));  // < 100000: checked by from_json
    max_layer = std::max(max_layer, static_cast<int>(s.layer));
  }
  run.model_layers = std::max(record.recorded_model_layers(), max_layer + 1);
  run.answer = record.answer;
  if (with_maps) run.maps = output::read_maps(dir, record);
  if (with_maps && with_answer_maps && record.answer) run.answer_maps = output::read_answer_maps(dir, record);
  if (run.maps.defined() && run.maps.dim() == 4) {
    // A video's [layers, t, h, w]: its temporal patches stacked top to bottom, so every metric, peak and
    // diff image works on the whole clip at once (a peak that moves to the next temporal patch moves merged_h rows).
    run.maps = run.maps.reshape({run.maps.size(0), run.maps.size(1) * run.maps.size(2), run.maps.size(3)});
    run.merged_h = run.maps.size(1);
  }
  if (run.answer_maps.defined() && run.answer_maps.dim() == 5) {  // [tokens, layers, t, h, w]: the same stacking
    const auto& a = run.answer_maps;
    run.answer_maps = a.reshape({a.size(0), a.size(1), a.size(2) * a.size(3), a.size(4)});
  }
  return run;
}

}  // namespace attnmap::compare_detail
