# Locates libtorch for attnmap and defines the imported target attnmap::torch.
#
# Default: the libtorch inside the PyTorch wheel of ${ATTNMAP_PYTHON}, found the way torch's own C++
# extensions find it (torch.utils.cpp_extension): include directories and libraries by path.
# We do not call find_package(Torch) on a wheel because Caffe2Config.cmake of a CUDA wheel (the
# registry's default torch on Linux x86_64) insists on a system CUDA toolkit, which most machines,
# GPU or not, do not have. attnmap needs no CUDA headers: the CUDA kernels live in libtorch_cuda,
# which the wheel's nvidia-* dependencies complete at run time through its own RUNPATH.
#
# With -DTorch_DIR=... (a standalone libtorch archive) the classic find_package(Torch) is used.
#
# Sets ATTNMAP_TORCH_HAS_CUDA (ON when libtorch_cuda is part of this libtorch) and
# ATTNMAP_TORCH_LIBRARY_DIR (for the installed binary's RUNPATH).

if(Torch_DIR OR DEFINED ENV{Torch_DIR})
  find_package(Torch REQUIRED)
  add_library(attnmap::torch INTERFACE IMPORTED)
  target_link_libraries(attnmap::torch INTERFACE ${TORCH_LIBRARIES})
  target_include_directories(attnmap::torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
  get_filename_component(ATTNMAP_TORCH_LIBRARY_DIR "${TORCH_LIBRARY}" DIRECTORY)
  set(ATTNMAP_TORCH_HAS_CUDA OFF)
  if(TORCH_CUDA_LIBRARIES)
    set(ATTNMAP_TORCH_HAS_CUDA ON)
  endif()
  return()
endif()

execute_process(
  COMMAND ${ATTNMAP_PYTHON} -c
    "import os, torch; print(os.path.dirname(torch.__file__)); print(torch.__version__); print(int(torch._C._GLIBCXX_USE_CXX11_ABI))"
  OUTPUT_VARIABLE _torch_info ERROR_VARIABLE _torch_error
  OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _torch_rc)
if(NOT _torch_rc EQUAL 0)
  message(FATAL_ERROR "attnmap: '${ATTNMAP_PYTHON}' cannot import torch, whose wheel carries libtorch. "
                      "Run scripts/bootstrap.sh (it installs tools/requirements.txt into .venv), or pass "
                      "-DATTNMAP_PYTHON=/path/to/python-with-torch or -DTorch_DIR=/path/to/libtorch/share/cmake/Torch.\n${_torch_error}")
endif()
string(REPLACE "\n" ";" _torch_info "${_torch_info}")
list(GET _torch_info 0 _torch_root)
list(GET _torch_info 1 ATTNMAP_TORCH_VERSION)
list(GET _torch_info 2 _torch_cxx11_abi)

set(ATTNMAP_TORCH_LIBRARY_DIR "${_torch_root}/lib")
set(_torch_libs torch torch_cpu c10)
set(ATTNMAP_TORCH_HAS_CUDA OFF)
if(EXISTS "${ATTNMAP_TORCH_LIBRARY_DIR}/libtorch_cuda.so")
  set(ATTNMAP_TORCH_HAS_CUDA ON)
  list(APPEND _torch_libs torch_cuda c10_cuda)
endif()

add_library(attnmap::torch INTERFACE IMPORTED)
target_include_directories(attnmap::torch SYSTEM INTERFACE
  "${_torch_root}/include" "${_torch_root}/include/torch/csrc/api/include")
target_compile_definitions(attnmap::torch INTERFACE _GLIBCXX_USE_CXX11_ABI=${_torch_cxx11_abi})
foreach(_lib IN LISTS _torch_libs)
  set(_path "${ATTNMAP_TORCH_LIBRARY_DIR}/lib${_lib}.so")
  if(NOT EXISTS "${_path}")
    message(FATAL_ERROR "attnmap: ${_path} is missing: the torch at ${_torch_root} is incomplete; reinstall it (scripts/bootstrap.sh).")
  endif()
  target_link_libraries(attnmap::torch INTERFACE "${_path}")
endforeach()
if(ATTNMAP_TORCH_HAS_CUDA)
  # The CUDA wheel's libtorch_cuda needs libcudart & co. from the nvidia-* wheels, found at run time
  # through its own $ORIGIN RUNPATH. The linker of an executable checks those indirect dependencies
  # too and cannot expand $ORIGIN reliably, so it is told they resolve at run time.
  target_link_options(attnmap::torch INTERFACE LINKER:--allow-shlib-undefined)
endif()
message(STATUS "attnmap: libtorch ${ATTNMAP_TORCH_VERSION} from ${_torch_root} (CUDA kernels: ${ATTNMAP_TORCH_HAS_CUDA})")
