#include "model/torch_failure.hpp"

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <torch/torch.h>

#include <new>
#include <stdexcept>

namespace attnmap {
namespace {

// Texts as libtorch 2.13 prints them (CPU allocator inside a scripted forward, CUDA allocator, plain).
const char* kScriptedCpuOom =
    "The following operation failed in the TorchScript interpreter.\n"
    "Traceback of TorchScript, serialized code (most recent call last):\n"
    "  File \"code/__torch__/attnmap_tools/export/vision.py\", line 40, in forward\n"
    "    _9 = torch.scaled_dot_product_attention(q, k, v, scale=0.125)\n"
    "         ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~ <--- HERE\n"
    "RuntimeError: [enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you "
    "tried to allocate 32313335808 bytes. Error code 12 (Cannot allocate memory)\n";
const char* kCudaOom =
    "CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 79.10 GiB of which 3.2 GiB is "
    "free.\n";

TEST(TorchFailure, RecognisesCpuAndCudaOutOfMemory) {
  EXPECT_TRUE(is_out_of_memory(kScriptedCpuOom));
  EXPECT_TRUE(is_out_of_memory(kCudaOom));
  EXPECT_TRUE(is_out_of_memory("OpenCV(4.6.0) ./modules/core/src/alloc.cpp:73: error: (-4:Insufficient memory) "
                               "Failed to allocate 37340352 bytes in function 'OutOfMemoryError'"));
  EXPECT_TRUE(is_out_of_memory("std::bad_alloc"));
  EXPECT_FALSE(is_out_of_memory("shape '[2, 3]' is invalid for input of size 5"));
}

TEST(TorchFailure, PicksTheExceptionLineOfATraceback) {
  EXPECT_EQ(torch_failure_line(kScriptedCpuOom).rfind("RuntimeError: [enforce fail", 0), 0u);
  EXPECT_EQ(torch_failure_line("Expected all tensors to be on the same device\nException raised from x"),
            "Expected all tensors to be on the same device");
  EXPECT_EQ(torch_failure_line("\n  \n"), "unknown libtorch error");
}

// Every out-of-memory error is worded by out_of_memory_message: where, then the way out for what did not fit.
TEST(TorchFailure, WordsOutOfMemoryInOnePlace) {
  EXPECT_EQ(out_of_memory_message("on cuda:0 for this image", MemoryNeed::Forward),
            "out of memory on cuda:0 for this image; lower --max-pixels or ask for fewer --layers");
  EXPECT_EQ(out_of_memory_message("on cpu while loading model 'm.pt'", MemoryNeed::Weights),
            "out of memory on cpu while loading model 'm.pt'; use a smaller dtype export or another device");
  EXPECT_EQ(std::string(error_from_exception(std::bad_alloc()).what()),
            out_of_memory_message("(std::bad_alloc)", MemoryNeed::Forward));
}

// Exceptions as the libraries really throw them: libtorch's shape check, OpenCV's allocator, operator new.
TEST(TorchFailure, MapsRealExceptionsToOneLineErrors) {
  try {
    (void)torch::ones({2, 3}).view({5});
    FAIL() << "libtorch accepted an impossible view";
  } catch (const std::exception& e) {
    const Error error = error_from_exception(e);
    EXPECT_EQ(error.kind(), ErrorKind::Internal);
    EXPECT_EQ(std::string(error.what()).rfind("libtorch: shape '[5]' is invalid", 0), 0u) << error.what();
    EXPECT_EQ(std::string(error.what()).find('\n'), std::string::npos);
  }
  try {
    throw cv::Exception(cv::Error::StsNoMem, "Failed to allocate 37340352 bytes", "OutOfMemoryError", "alloc.cpp", 73);
  } catch (const std::exception& e) {
    const Error error = error_from_exception(e);
    EXPECT_EQ(error.kind(), ErrorKind::Resource);
    EXPECT_NE(std::string(error.what()).find("--max-pixels"), std::string::npos) << error.what();
  }
  try {
    throw std::bad_alloc();
  } catch (const std::exception& e) {
    EXPECT_EQ(error_from_exception(e).kind(), ErrorKind::Resource);
  }
  EXPECT_EQ(error_from_exception(std::runtime_error("plain\nsecond line")).what(), std::string("plain"));
}

}  // namespace
}  // namespace attnmap
