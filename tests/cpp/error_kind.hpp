// The kind of attnmap::Error a call throws, for tests that expect one. Shared so that every test file
// has the same, strict rule: nothing thrown is nullopt, never mistaken for an expected kind.
#pragma once

#include <functional>
#include <optional>

#include "attnmap/error.hpp"

namespace attnmap_test {

inline std::optional<attnmap::ErrorKind> kind_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const attnmap::Error& e) {
    return e.kind();
  }
  return std::nullopt;
}

}  // namespace attnmap_test
