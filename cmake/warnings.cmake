# Compiler warnings for every target this project builds (library, CLI, tests, tools, benches,
# fuzzers). libtorch, OpenCV and the other dependencies come in as imported targets, whose include
# directories are SYSTEM: their headers do not warn. CI configures with -DATTNMAP_WERROR=ON.
option(ATTNMAP_WERROR "Treat compiler warnings as errors (CI turns this on)" OFF)

function(attnmap_target_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow)
  # GCC 12 at -O2/-O3 reports -Wstringop-overflow, -Warray-bounds and -Wrestrict inside libstdc++'s own
  # std::string code for plain concatenations, moves and assignments (GCC bugs 105329, 105651,
  # 106199; fixed in GCC 13): not our code's defect, and -Werror would fail on it.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-stringop-overflow -Wno-array-bounds -Wno-restrict)
  endif()
  if(ATTNMAP_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
