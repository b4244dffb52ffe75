// --device and --dtype. Whether the device exists is checked when the model loads (Model::load),
// which knows what libtorch sees; here only the spelling.
#include <cctype>

#include "attnmap/error.hpp"
#include "attnmap/options.hpp"

namespace attnmap {
namespace {

bool all_digits(const std::string& s) {
  if (s.empty() || s.size() > 4) return false;
  for (const char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

DeviceChoice parse_device_choice(const std::string& device, const std::string& dtype) {
  DeviceChoice choice;
  if (device == "auto") {
    choice.device = DeviceChoice::Device::Auto;
  } else if (device == "cpu") {
    choice.device = DeviceChoice::Device::Cpu;
  } else if (device == "cuda") {
    choice.device = DeviceChoice::Device::Cuda;
  } else if (device.rfind("cuda:", 0) == 0 && all_digits(device.substr(5))) {
    choice.device = DeviceChoice::Device::Cuda;
    choice.cuda_index = std::stoi(device.substr(5));
  } else {
    throw Error(ErrorKind::Usage, "--device '" + device + "' is not a device; use auto, cpu, cuda or cuda:N");
  }
  if (dtype == "auto") {
    choice.dtype = DeviceChoice::Dtype::Auto;
  } else if (dtype == "fp32" || dtype == "float32") {
    choice.dtype = DeviceChoice::Dtype::Float32;
  } else if (dtype == "bf16" || dtype == "bfloat16") {
    choice.dtype = DeviceChoice::Dtype::BFloat16;
  } else if (dtype == "fp16" || dtype == "float16") {
    choice.dtype = DeviceChoice::Dtype::Float16;
  } else {
    throw Error(ErrorKind::Usage, "--dtype '" + dtype + "' is not a dtype; use auto, fp32, bf16 or fp16");
  }
  return choice;
}

std::string DeviceChoice::device_text() const {
  switch (device) {
    case Device::Cpu: return "cpu";
    case Device::Cuda: return cuda_index < 0 ? "cuda" : "cuda:" + std::to_string(cuda_index);
    default: return "auto";
  }
}

std::string DeviceChoice::dtype_text() const {
  switch (dtype) {
    case Dtype::Float32: return "fp32";
    case Dtype::BFloat16: return "bf16";
    case Dtype::Float16: return "fp16";
    default: return "auto";
  }
}

}  // namespace attnmap
