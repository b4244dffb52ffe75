// The main() of the test-only dump tools: run the tool, and on an attnmap::Error print its message and
// exit with its exit code, as the CLI does, so the Python tests can check both.
#pragma once

#include <iostream>

#include "attnmap/error.hpp"

namespace attnmap_test {

inline int run_tool(int argc, char** argv, int (*run)(int, char**)) {
  try {
    return run(argc, argv);
  } catch (const attnmap::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return e.exit_code();
  }
}

}  // namespace attnmap_test
