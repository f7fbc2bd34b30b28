// Hardening support shared by the fuzz targets, the corpus replay and the corruption matrix:
// a walk that reads everything an opened Model exposes, and the fuzz entry points.
//
// The walk is the executable form of the promise "after open succeeds, no accessor can fail
// because of file bytes". It calls every accessor, reads every data byte, and runs the decode
// kernels wherever their documented preconditions hold for the tensor. Anything that breaks the
// promise (an Error or std::exception escaping an accessor, a span outside the file, a count
// that disagrees with what open() validated) throws WalkViolation, which a fuzzer reports as a
// crash and a test reports as a failure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>

#include "litelens/model.h"

namespace litelens::fuzzing {

/// A broken promise of the reader (not a bad file: bad files throw litelens::Error at open).
class WalkViolation : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// What a walk saw (useful to check that a walk really went somewhere).
struct WalkStats {
  std::uint64_t subgraphs = 0;
  std::uint64_t tensors = 0;
  std::uint64_t operators = 0;
  std::uint64_t data_bytes = 0;      ///< bytes of tensor data read
  std::uint64_t decoded_values = 0;  ///< elements produced by decode kernels
  std::uint64_t option_nodes = 0;    ///< Value nodes in all decoded options
  std::uint64_t checksum = 0;        ///< folds every byte read, so nothing is optimised away
};

/// Upper bound on what one decode in the walk may produce (bytes). Dense outputs of sparse
/// tensors are not bounded by the file size, so larger ones are skipped, not decoded.
inline constexpr std::uint64_t kMaxWalkDecodeBytes = std::uint64_t{16} << 20;
/// At most this many values go into one fuzz_export run (all its formats and modes).
inline constexpr std::uint64_t kMaxExportElements = std::uint64_t{1} << 16;

/// Reads everything, the metadata entries and the appended archive's files included. Throws
/// WalkViolation when an accessor breaks the open-time promise.
WalkStats walk(const Model& model);

// ---- Fuzz entry points ------------------------------------------------------------------
// Each takes raw bytes, returns 0, and lets a broken promise escape as an exception (libFuzzer
// turns an uncaught exception into a crash report). Add a later feature's entry point (layers,
// export to memory) here and in the `targets()` table, and one word to LITELENS_FUZZ_TARGETS
// in fuzz/CMakeLists.txt.

/// Model::from_bytes only.
int fuzz_open(const std::uint8_t* data, std::size_t size);
/// Open, then walk() everything.
int fuzz_walk(const std::uint8_t* data, std::size_t size);
/// Open, build every layer, decode every stored parameter in every mode and convert layouts.
int fuzz_layers(const std::uint8_t* data, std::size_t size);
/// Open, then export every parameter to memory in every format.
int fuzz_export(const std::uint8_t* data, std::size_t size);

struct FuzzTarget {
  const char* name;  ///< "open", "walk"; the fuzzer binary is fuzz_<name>
  int (*run)(const std::uint8_t*, std::size_t);
};

/// Every entry point, in the order of LITELENS_FUZZ_TARGETS.
std::span<const FuzzTarget> targets();

}  // namespace litelens::fuzzing
