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
    torch::NoGradGuard no_grad;
    // The forward contract of docs/design.md: named inputs, named outputs.
    c10::Dict<std::string, torch::Tensor> named_inputs;
    named_inputs.insert("input_ids", inputs.input_ids.to(device_));
    named_inputs.insert("pixel_values", inputs.pixel_values.to(device_));
    named_inputs.insert("image_grid_thw", inputs.image_grid_thw.to(device_));
    named_inputs.insert("position_ids", inputs.position_ids.to(device_));
    std::vector<torch::jit::IValue> args = {named_inputs,
                                            c10::List<int64_t>(request.layers),
                                            torch::tensor(request.query_rows, torch::kInt64).to(device_),
                                            std::string(head_reduce_name(request.head_reduce)),
                                            request.mean_queries,
                                            request.return_logits};
    torch::jit::IValue out;
    // The plain interpreter runs the ops transformers runs, one by one: the profiling executor would
    // spend two calls profiling (the only call of a one-shot run), then on a GPU fuse pointwise ops
    // (other rounding in bf16, no longer transformers' numbers) and re-specialise for every new image
    // size. The flag is thread-local, hence set here, on the thread that runs the forward.
    torch::jit::setGraphExecutorOptimize(false);
    try {
      out = module_.forward(args);
    } catch (const std::exception& e) {
      // Errors raised inside the TorchScript interpreter arrive as std::runtime_error with the traceback.
      const Error error = error_from_exception(e);
      if (error.kind() == ErrorKind::Resource) {
        // The failed forward's tensors are gone by now but their blocks stay cached; handing them back
        // keeps one huge item from fragmenting the pool for every item after it.
        release_cached_device_memory(device_);
        throw Error(ErrorKind::Resource, out_of_memory_message("on " + device_.str() + " for this image",
                                                               MemoryNeed::Forward));
      }
      throw Error(ErrorKind::Internal, std::string("the model's forward failed: ") + error.what());
    }
    const c10::Dict<c10::IValue, c10::IValue> outputs = out.toGenericDict();
    AttentionResult result;
    for (const int64_t layer : request.layers) {
      result.layers.push_back(output(outputs, "layers." + std::to_string(layer)).to(torch::kCPU, torch::kFloat32));
    }
    if (request.return_logits) result.logits = output(outputs, "logits").to(torch::kCPU, torch::kFloat32);
    return result;
  }

 private:
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
};

}  // namespace

std::unique_ptr<AttentionBackend> make_torchscript_backend() { return std::make_unique<TorchScriptBackend>(); }

}  // namespace attnmap
