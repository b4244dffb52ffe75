// A program outside attnmap that uses the library through its installed package: one image and
// one prompt through the three stages, then the cell of the focus layer's map that the prompt
// attends to most, in image pixels. Usage: where_it_looks MODEL.pt IMAGE "PROMPT"
#include <torch/types.h>

#include <iostream>

#include "attnmap/error.hpp"
#include "attnmap/model.hpp"
#include "attnmap/options.hpp"
#include "attnmap/run.hpp"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: where_it_looks MODEL.pt IMAGE \"PROMPT\"\n";
    return 2;
  }
  try {
    auto model = attnmap::Model::load(argv[1], attnmap::parse_device_choice("cpu", "fp32"));
    attnmap::RunSpec spec;  // the defaults: prompt query, every layer, mean of heads
    spec.predict = false;
    attnmap::Runner runner(model, spec);
    attnmap::RunItem item;
    item.id = "consumer";
    item.image = argv[2];
    item.prompt = argv[3];
    // prepare and infer only: nothing is written, the maps stay in memory.
    const attnmap::InferredItem result = runner.infer(runner.prepare(item));
    const int64_t layers = result.maps.size(0);
    const int64_t layer = model->metadata().focus_layer.value_or(static_cast<int>(layers - 1));
    const torch::Tensor map = result.maps[layer < layers ? layer : layers - 1];
    const int64_t cell = map.argmax().item<int64_t>(), w = map.size(1);
    const auto& grid = result.record.grid;
    const auto& image = result.record.image;
    std::cout << "layer " << layer << ": peak at cell (row " << cell / w << ", col " << cell % w << ") of "
              << grid.merged_h << "x" << grid.merged_w << ", about pixel (" << (cell % w * 2 + 1) * image.width / (2 * w)
              << ", " << (cell / w * 2 + 1) * image.height / (2 * grid.merged_h) << ") of " << image.width << "x"
              << image.height << ", weight " << map.max().item<float>() << "\n";
    return 0;
  } catch (const attnmap::Error& e) {
    std::cerr << "where_it_looks: " << e.what() << "\n";
    return e.exit_code();
  }
}
