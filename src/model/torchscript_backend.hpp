// The TorchScript backend: the .pt written by attnmap-export, run by libtorch's interpreter.
#pragma once

#include <memory>

#include "model/attention_backend.hpp"

namespace attnmap {

std::unique_ptr<AttentionBackend> make_torchscript_backend();

}  // namespace attnmap
