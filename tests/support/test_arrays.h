// Test-only: small owning Arrays made from C++ vectors (patch and diff inputs).
#pragma once

#include <cstring>
#include <vector>

#include "litelens/array.h"

namespace litelens::testing {

template <class T>
Array array_of(DType dtype, std::vector<std::int64_t> shape, const std::vector<T>& values) {
  std::vector<std::byte> bytes(values.size() * sizeof(T));
  if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return Array::own(dtype, std::move(shape), std::move(bytes));
}

}  // namespace litelens::testing
