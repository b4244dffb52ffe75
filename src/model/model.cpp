#include "attnmap/model.hpp"

#include <torch/cuda.h>

#include <future>

#include "model/device_memory.hpp"
#include "attnmap/error.hpp"
#include "io/sha256.hpp"
#include "model/family.hpp"
#include "model/torchscript_backend.hpp"

namespace attnmap {
namespace fs = std::filesystem;

namespace {

torch::Device pick_device(const DeviceChoice& choice, const fs::path& path) {
  if (choice.device == DeviceChoice::Device::Auto) {
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  }
  if (choice.device == DeviceChoice::Device::Cpu) return torch::Device(torch::kCPU);
  const std::string name = choice.device_text();
  if (!torch::cuda::is_available()) {
    const std::string why = built_with_cuda()
                                ? "no CUDA device is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)"
                                : "this attnmap was built against a libtorch without CUDA (rebuild against a CUDA one)";
    throw Error(ErrorKind::Resource, "--device " + name + " asked for CUDA but " + why +
                                         "; or use --device cpu (model '" + path.string() + "')");
  }
  if (choice.cuda_index < 0) return torch::Device(torch::kCUDA);
  if (choice.cuda_index >= torch::cuda::device_count()) {
    throw Error(ErrorKind::Resource, "--device " + name + " names GPU " + std::to_string(choice.cuda_index) + " but " +
                                         std::to_string(torch::cuda::device_count()) +
                                         " are visible; use cuda:0 to cuda:" +
                                         std::to_string(torch::cuda::device_count() - 1));
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(choice.cuda_index));
}

torch::ScalarType pick_dtype(DeviceChoice::Dtype dtype, const torch::Device& device) {
  switch (dtype) {
    case DeviceChoice::Dtype::Float32: return torch::kFloat32;
    case DeviceChoice::Dtype::BFloat16: return torch::kBFloat16;
    case DeviceChoice::Dtype::Float16: return torch::kFloat16;
    default: return device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
  }
}

}  // namespace

std::string_view head_reduce_name(HeadReduce reduce) {
  switch (reduce) {
    case HeadReduce::None: return "keep";
    case HeadReduce::Max: return "max";
    default: return "mean";
  }
}

Model::Model(ModelFile file) : file_(std::move(file)) {}

Model::~Model() = default;

std::shared_ptr<Model> Model::load(const fs::path& path, const DeviceChoice& choice) {
  prefer_expandable_cuda_segments();
  const torch::Device device = pick_device(choice, path);
  const torch::ScalarType dtype = pick_dtype(choice.dtype, device);
  // Metadata, family and tokenizer first: a wrong file fails in milliseconds, before the weights load.
  std::shared_ptr<Model> model(new Model(ModelFile::open(path)));
  model->device_ = device;
  model->dtype_ = dtype;
  model->metadata_ = model->file_.read_metadata();
  model->family_ = make_family(model->metadata_, path.string());
  model->tokenizer_ = std::make_unique<Tokenizer>(model->file_.read_tokenizer());
  // The digest only goes into attention.json: compute it beside the weight load, not after it.
  model->sha256_ = std::async(std::launch::async, [path] { return sha256_file_hex_cached(path); }).share();
  model->backend_ = make_torchscript_backend();
  model->backend_->load(model->file_, model->device_, model->dtype_);
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
  reset_peak_device_memory(device_);
  AttentionResult result = backend_->run(inputs, request);
  result.peak_device_memory_bytes = peak_device_memory_bytes(device_);
  return result;
}

VisionAttentionResult Model::vision_attention(const ModelInputs& inputs, const VisionAttentionRequest& request) {
  reset_peak_device_memory(device_);
  VisionAttentionResult result = backend_->vision_attention(inputs, request);
  result.peak_device_memory_bytes = peak_device_memory_bytes(device_);
  return result;
}

AttentionResult Model::prefill(const ModelInputs& inputs, const AttentionRequest& request, DecodeCache& cache) {
  reset_peak_device_memory(device_);
  AttentionResult result = backend_->prefill(inputs, request, cache);
  result.peak_device_memory_bytes = peak_device_memory_bytes(device_);
  return result;
}

AttentionResult Model::decode_step(int64_t token, const torch::Tensor& position_ids, DecodeCache& cache,
                                   const std::vector<int64_t>& layers, HeadReduce head_reduce) {
  AttentionResult result = backend_->decode_step(token, position_ids, cache, layers, head_reduce);
  result.peak_device_memory_bytes = peak_device_memory_bytes(device_);
  return result;
}

}  // namespace attnmap
