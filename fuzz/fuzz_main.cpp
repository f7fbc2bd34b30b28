// libFuzzer driver: one binary per entry point, chosen at compile time with
// -DLITELENS_FUZZ_ENTRY=fuzz_<name> (see fuzz/CMakeLists.txt).
#include <cstddef>
#include <cstdint>

#include "walk.h"

#ifndef LITELENS_FUZZ_ENTRY
#error "define LITELENS_FUZZ_ENTRY to one of the entry points in walk.h"
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return litelens::fuzzing::LITELENS_FUZZ_ENTRY(data, size);
}
