#include "attnmap/model.hpp"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/python/update_graph_executor_opt.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include <future>

#include "attnmap/device_memory.hpp"
#include "attnmap/error.hpp"
#include "attnmap/sha256.hpp"
#include "attnmap/torch_failure.hpp"

namespace attnmap {
namespace fs = std::filesystem;

namespace {

const char* kMetadataFile = "attnmap/metadata.json";
const char* kTokenizerFile = "attnmap/tokenizer.json";

torch::Device pick_device(const std::string& name, const fs::path& path) {
  if (name == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(name);
  } catch (const c10::Error&) {
    throw Error(ErrorKind::Usage, "--device '" + name + "' is not a device; use auto, cpu, cuda or cuda:N");
  }
  if (device.is_cuda() && !torch::cuda::is_available()) {
    const std::string why = built_with_cuda()
                                ? "no CUDA device is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)"
                                : "this attnmap was built against a libtorch without CUDA (rebuild against a CUDA one)";
    throw Error(ErrorKind::Resource, "--device " + name + " asked for CUDA but " + why +
                                         "; or use --device cpu (model '" + path.string() + "')");
  }
  if (device.is_cuda() && device.has_index() && device.index() >= torch::cuda::device_count()) {
    throw Error(ErrorKind::Resource, "--device " + name + " names GPU " + std::to_string(device.index()) + " but " +
                                         std::to_string(torch::cuda::device_count()) +
                                         " are visible; use cuda:0 to cuda:" +
                                         std::to_string(torch::cuda::device_count() - 1));
  }
  return device;
}

torch::ScalarType pick_dtype(const std::string& name, const torch::Device& device) {
  if (name == "auto") return device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
  if (name == "fp32" || name == "float32") return torch::kFloat32;
  if (name == "bf16" || name == "bfloat16") return torch::kBFloat16;
  if (name == "fp16" || name == "float16") return torch::kFloat16;
  throw Error(ErrorKind::Usage, "--dtype '" + name + "' is not a dtype; use auto, fp32, bf16 or fp16");
}

void check_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw Error(ErrorKind::Model, "model '" + path.string() +
                                      "' does not exist; export one with tools/export.py or run scripts/demo.sh");
  }
  if (!fs::is_regular_file(path, ec)) throw Error(ErrorKind::Model, "model '" + path.string() + "' is not a file");
}

std::string cannot_load(const fs::path& path, const c10::Error& e) {
  return "cannot load model '" + path.string() + "' (" + torch_failure_line(e.what_without_backtrace()) +
         "); it must be a TorchScript file written by tools/export.py with a torch no newer than the libtorch "
         "attnmap was built with";
}

// One extra file of the archive, read without touching the weights (a 7B export is 15 GB).
std::string extra_file(caffe2::serialize::PyTorchStreamReader& reader, const char* name, const fs::path& path) {
  const std::string record = std::string("extra/") + name;
  if (!reader.hasRecord(record)) {
    throw Error(ErrorKind::Model, "'" + path.string() + "' is a TorchScript file but not an attnmap export (no " +
                                      name + "); export the checkpoint with tools/export.py");
  }
  auto [data, size] = reader.getRecord(record);
  std::string text(static_cast<const char*>(data.get()), size);
  if (text.empty()) {
    throw Error(ErrorKind::Model, "'" + path.string() + "' has an empty " + name +
                                      "; export the checkpoint again with tools/export.py");
  }
  return text;
}

torch::jit::Module load_module(const fs::path& path, torch::Device device) {
  try {
    return torch::jit::load(path.string(), device);
  } catch (const c10::Error& e) {
    if (is_out_of_memory(e.what_without_backtrace())) {
      throw Error(ErrorKind::Resource, "out of memory on " + device.str() + " while loading model '" +
                                           path.string() + "'; use a smaller dtype export or another device");
    }
    throw Error(ErrorKind::Model, cannot_load(path, e));
  }
}

// The failed forward's tensors are gone by now but their blocks stay cached; handing them back
// keeps one huge item from fragmenting the pool for every item after it.
Error out_of_memory(const torch::Device& device) {
  release_cached_device_memory(device);
  return Error(ErrorKind::Resource, "out of memory on " + device.str() +
                                        " for this image; lower --max-pixels or ask for fewer --layers");
}

}  // namespace

struct Model::Scripted {
  torch::jit::Module module;
};

Model::Model() : scripted_(std::make_shared<Scripted>()) {}

ModelFileContents read_model_file_contents(const fs::path& path) {
  check_file(path);
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  try {
    reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path.string());
  } catch (const c10::Error& e) {
    throw Error(ErrorKind::Model, cannot_load(path, e));
  }
  ModelFileContents contents;
  contents.metadata = ModelMetadata::parse(extra_file(*reader, kMetadataFile, path), path.string());
  contents.tokenizer_json = extra_file(*reader, kTokenizerFile, path);
  return contents;
}

std::shared_ptr<Model> Model::load(const fs::path& path, const DeviceChoice& choice) {
  std::shared_ptr<Model> model(new Model());
  model->path_ = path;
  prefer_expandable_cuda_segments();
  model->device_ = pick_device(choice.device, path);
  model->dtype_ = pick_dtype(choice.dtype, model->device_);
  // Metadata and tokenizer first: a wrong file fails in milliseconds, before the weights load.
  ModelFileContents contents = read_model_file_contents(path);
  model->metadata_ = std::move(contents.metadata);
  try {
    model->tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_json(contents.tokenizer_json));
  } catch (const Error& e) {
    throw Error(ErrorKind::Model, "model '" + path.string() + "' carries a tokenizer attnmap cannot read: " + e.what());
  }
  // The digest only goes into attention.json: compute it beside the weight load, not after it.
  model->sha256_ = std::async(std::launch::async, [path] { return sha256_file_hex_cached(path); }).share();
  model->scripted_->module = load_module(path, model->device_);
  model->scripted_->module.to(model->device_, model->dtype_);
  model->scripted_->module.eval();
  return model;
}

const std::string& Model::sha256() const { return sha256_.get(); }

std::string Model::device_name() const { return device_.str(); }

std::string Model::dtype_name() const {
  switch (dtype_) {
    // The names of the metadata's "dtype" and of docs/design.md, not the --dtype spelling.
    case torch::kBFloat16: return "bfloat16";
    case torch::kFloat16: return "float16";
    default: return "float32";
  }
}

AttentionResult Model::attention(const ModelInputs& inputs, const AttentionRequest& request) {
  torch::NoGradGuard no_grad;
  c10::List<int64_t> layers(request.layers);
  const torch::Tensor rows = torch::tensor(request.query_rows, torch::kInt64).to(device_);
  std::vector<torch::jit::IValue> args = {
      inputs.input_ids.to(device_),
      inputs.pixel_values.to(device_),
      inputs.image_grid_thw.to(device_),
      inputs.position_ids.to(device_),
      layers,
      rows,
      static_cast<int64_t>(request.head_reduce),
      request.mean_queries,
      request.return_logits};
  torch::jit::IValue out;
  // The plain interpreter runs the ops transformers runs, one by one: the profiling executor would
  // spend two calls profiling (the only call of a one-shot run), then on a GPU fuse pointwise ops
  // (other rounding in bf16, no longer transformers' numbers) and re-specialise for every new image
  // size. The flag is thread-local, hence set here, on the thread that runs the forward.
  torch::jit::setGraphExecutorOptimize(false);
  reset_peak_device_memory(device_);
  try {
    out = scripted_->module.forward(args);
  } catch (const std::exception& e) {
    // Errors raised inside the TorchScript interpreter arrive as std::runtime_error with the traceback.
    const Error error = error_from_exception(e);
    if (error.kind() == ErrorKind::Resource) throw out_of_memory(device_);
    throw Error(ErrorKind::Internal, std::string("the model's forward failed: ") + error.what());
  }
  const auto tuple = out.toTuple();
  AttentionResult result;
  for (const auto& layer : tuple->elements()[0].toList()) {
    result.layers.push_back(layer.get().toTensor().to(torch::kCPU, torch::kFloat32));
  }
  const torch::Tensor logits = tuple->elements()[1].toTensor();
  if (request.return_logits && logits.numel() > 0) result.logits = logits.to(torch::kCPU, torch::kFloat32);
  result.peak_device_memory_bytes = peak_device_memory_bytes(device_);
  return result;
}

}  // namespace attnmap
