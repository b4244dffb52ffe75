// The only file that includes torch/script.h: the rest of attnmap sees AttentionBackend.
#include "model/torchscript_backend.hpp"

#include <torch/csrc/jit/python/update_graph_executor_opt.h>
#include <torch/script.h>

#include "model/device_memory.hpp"
#include "attnmap/error.hpp"
#include "model/torch_failure.hpp"

namespace attnmap {
namespace {

class TorchScriptBackend final : public AttentionBackend {
 public:
  void load(const ModelFile& file, torch::Device device, torch::ScalarType dtype) override {
    device_ = device;
    path_ = file.path().string();
    num_layers_ = file.read_metadata().text.num_hidden_layers;
    try {
      module_ = torch::jit::load(file.path().string(), device);
    } catch (const c10::Error& e) {
      const std::string what = e.what_without_backtrace();
      if (is_out_of_memory(what)) {
        throw Error(ErrorKind::Resource,
                    out_of_memory_message("on " + device.str() + " while loading model '" + file.path().string() + "'",
                                          MemoryNeed::Weights));
      }
      throw Error(ErrorKind::Model, "cannot load model '" + file.path().string() + "' (" + torch_failure_line(what) +
                                        "); it must be a TorchScript file written by attnmap-export with a torch no "
                                        "newer than the libtorch attnmap was built with");
    }
    module_.to(device, dtype);
    module_.eval();
  }

  AttentionResult run(const ModelInputs& inputs, const AttentionRequest& request) override {
    std::vector<torch::jit::IValue> args = {named_inputs(inputs),
                                            c10::List<int64_t>(request.layers),
                                            torch::tensor(request.query_rows, torch::kInt64).to(device_),
                                            std::string(head_reduce_name(request.head_reduce)),
                                            request.mean_queries,
                                            request.return_logits};
    const Outputs outputs = call("forward", std::move(args), "for this image");
    return result_of(outputs, request.layers, request.return_logits);
  }

  VisionAttentionResult vision_attention(const ModelInputs& inputs, const VisionAttentionRequest& request) override {
    if (!module_.find_method("vision_attention")) {
      throw Error(ErrorKind::Model, "model '" + path_ + "' has no vision_attention (it was exported before "
                                    "vision-tower maps); re-export it: attnmap-export --checkpoint "
                                    "<hugging-face-folder> --out " + path_);
    }
    const bool video = inputs.pixel_values_videos.defined();
    std::vector<torch::jit::IValue> args = {
        (video ? inputs.pixel_values_videos : inputs.pixel_values).to(device_),
        (video ? inputs.video_grid_thw : inputs.image_grid_thw).to(device_),
        c10::List<int64_t>(request.blocks),
        torch::tensor(request.query_patches, torch::kInt64).to(device_),
        std::string(head_reduce_name(request.head_reduce))};
    const Outputs outputs = call("vision_attention", std::move(args), "in the vision tower");
    VisionAttentionResult result;
    for (const int64_t block : request.blocks) {
      result.blocks.push_back(output(outputs, "vision." + std::to_string(block)).to(torch::kCPU, torch::kFloat32));
    }
    result.windows = output(outputs, "vision.windows").to(torch::kCPU, torch::kInt64);
    return result;
  }

  AttentionResult prefill(const ModelInputs& inputs, const AttentionRequest& request, DecodeCache& cache) override {
    require_generation();
    std::vector<torch::jit::IValue> args = {named_inputs(inputs),
                                            c10::List<int64_t>(request.layers),
                                            torch::tensor(request.query_rows, torch::kInt64).to(device_),
                                            std::string(head_reduce_name(request.head_reduce)),
                                            request.mean_queries};
    const Outputs outputs = call("prefill", std::move(args), "for this image");
    take_cache(outputs, cache);
    return result_of(outputs, request.layers, true);
  }

  AttentionResult decode_step(int64_t token, const torch::Tensor& position_ids, DecodeCache& cache,
                              const std::vector<int64_t>& layers, HeadReduce head_reduce) override {
    require_generation();
    c10::Dict<std::string, torch::Tensor> named_cache;
    for (size_t i = 0; i < cache.keys.size(); ++i) {
      named_cache.insert("cache.k." + std::to_string(i), cache.keys[i]);
      named_cache.insert("cache.v." + std::to_string(i), cache.values[i]);
    }
    std::vector<torch::jit::IValue> args = {torch::tensor({token}, torch::kInt64).to(device_),
                                            position_ids.to(device_), named_cache, c10::List<int64_t>(layers),
                                            std::string(head_reduce_name(head_reduce))};
    named_cache = c10::Dict<std::string, torch::Tensor>();
    // The caller's cache is dropped before the step runs, so that the step's appended copy is the
    // only one alive afterwards (design.md: at most twice the cache during a step).
    cache = {};
    const Outputs outputs = call("decode_step", std::move(args), "while generating the answer");
    take_cache(outputs, cache);
    return result_of(outputs, layers, true);
  }

 private:
  using Outputs = c10::Dict<c10::IValue, c10::IValue>;

  c10::Dict<std::string, torch::Tensor> named_inputs(const ModelInputs& inputs) const {
    // The forward contract of docs/design.md: named inputs, named outputs.
    c10::Dict<std::string, torch::Tensor> named;
    named.insert("input_ids", inputs.input_ids.to(device_));
    named.insert("pixel_values", inputs.pixel_values.to(device_));
    named.insert("image_grid_thw", inputs.image_grid_thw.to(device_));
    named.insert("position_ids", inputs.position_ids.to(device_));
    if (inputs.pixel_values_videos.defined()) {
      named.insert("pixel_values_videos", inputs.pixel_values_videos.to(device_));
      named.insert("video_grid_thw", inputs.video_grid_thw.to(device_));
    }
    return named;
  }

  void require_generation() const {
    if (!module_.find_method("prefill") || !module_.find_method("decode_step")) {
      throw Error(ErrorKind::Model, "model '" + path_ + "' has no prefill/decode_step (it was exported before "
                                    "answer maps); re-export it: attnmap-export --checkpoint <hugging-face-folder> --out " +
                                    path_);
    }
  }

  Outputs call(const std::string& method, std::vector<torch::jit::IValue> args, const std::string& what) {
    torch::NoGradGuard no_grad;
    // The plain interpreter runs the ops transformers runs, one by one: the profiling executor would
    // spend two calls profiling (the only call of a one-shot run), then on a GPU fuse pointwise ops
    // (other rounding in bf16, no longer transformers' numbers) and re-specialise for every new image
    // size. The flag is thread-local, hence set here, on the thread that runs the forward.
    torch::jit::setGraphExecutorOptimize(false);
    try {
      return module_.get_method(method)(std::move(args)).toGenericDict();
    } catch (const std::exception& e) {
      // Errors raised inside the TorchScript interpreter arrive as std::runtime_error with the traceback.
      const Error error = error_from_exception(e);
      if (error.kind() == ErrorKind::Resource) {
        // The failed call's tensors are gone by now but their blocks stay cached; handing them back
        // keeps one huge item from fragmenting the pool for every item after it.
        release_cached_device_memory(device_);
        throw Error(ErrorKind::Resource, out_of_memory_message("on " + device_.str() + " " + what,
                                                               MemoryNeed::Forward));
      }
      throw Error(ErrorKind::Internal, "the model's " + method + " failed: " + error.what());
    }
  }

  static AttentionResult result_of(const Outputs& outputs, const std::vector<int64_t>& layers, bool logits) {
    AttentionResult result;
    for (const int64_t layer : layers) {
      result.layers.push_back(output(outputs, "layers." + std::to_string(layer)).to(torch::kCPU, torch::kFloat32));
    }
    if (logits) result.logits = output(outputs, "logits").to(torch::kCPU, torch::kFloat32);
    return result;
  }

  // The cache stays on the device, in the model's dtype.
  void take_cache(const Outputs& outputs, DecodeCache& cache) const {
    cache = {};
    for (int64_t i = 0; i < num_layers_; ++i) {
      cache.keys.push_back(output(outputs, "cache.k." + std::to_string(i)));
      cache.values.push_back(output(outputs, "cache.v." + std::to_string(i)));
    }
  }

  static torch::Tensor output(const c10::Dict<c10::IValue, c10::IValue>& outputs, const std::string& name) {
    const auto found = outputs.find(name);
    if (found == outputs.end()) {
      throw Error(ErrorKind::Internal, "the model's forward returned no '" + name +
                                           "'; the export does not follow the forward contract of its format version");
    }
    return found->value().toTensor();
  }

  torch::jit::Module module_;
  torch::Device device_{torch::kCPU};
  std::string path_;
  int64_t num_layers_ = 0;
};

}  // namespace

std::unique_ptr<AttentionBackend> make_torchscript_backend() { return std::make_unique<TorchScriptBackend>(); }

}  // namespace attnmap
