// What a Model owns and what validation precomputes, shared by the implementation files.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "litelens/decode.h"
#include "litelens/error.h"
#include "mapped_file.h"
#include "tflite_generated.h"

namespace litelens::detail {

/// Where one Buffer's bytes are, after the inline-or-offset rule.
struct ByteRange {
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  bool present = false;  ///< false: no data in this file
};

struct TensorRecord {
  ByteRange data;
  std::uint64_t element_count = 1;  ///< dense product of the shape
  bool unpacked_subbyte = false;    ///< int4/uint4 stored one value per byte (old writers)
};

struct OperatorRecord {
  ByteRange custom_options;
  bool flexbuffer_ok = false;  ///< custom options verified as a FlexBuffer
};

struct SubgraphRecord {
  std::vector<TensorRecord> tensors;
  std::vector<OperatorRecord> operators;
};

struct ModelData {
  std::string label;
  std::unique_ptr<MappedFile> mapping;     // set by open()
  std::unique_ptr<std::byte[]> owned;      // set by from_bytes()
  const std::byte* base = nullptr;
  std::uint64_t size = 0;

  const tflite::Model* root = nullptr;
  std::uint64_t flatbuffer_size = 0;
  std::vector<std::int32_t> opcodes;       // effective builtin code per OperatorCode
  std::vector<ByteRange> buffers;
  std::vector<SubgraphRecord> subgraphs;
  /// (ExternalBuffer id, position in Model.external_buffers), sorted by id; the first of duplicates.
  std::vector<std::pair<std::uint32_t, std::uint32_t>> external_buffers;
  std::vector<Warning> warnings;

  std::uint64_t offset_of(const void* p) const {
    return static_cast<std::uint64_t>(static_cast<const std::byte*>(p) - base);
  }
  /// Position in Model.external_buffers of the ExternalBuffer with this id, if any.
  std::optional<std::uint32_t> external_buffer_position(std::uint32_t id) const {
    const auto it = std::lower_bound(external_buffers.begin(), external_buffers.end(), std::pair{id, 0u});
    if (it == external_buffers.end() || it->first != id) return std::nullopt;
    return it->second;
  }
  std::span<const std::byte> bytes(const ByteRange& r) const {
    if (!r.present) return {};
    return {base + r.offset, static_cast<std::size_t>(r.size)};
  }
};

/// Runs every check of Model::open over `m.base`/`m.size` and fills the records.
/// Throws Error on a file that reading cannot trust.
void validate(ModelData& m);

/// Sparsity parameters copied into the plain description the decode kernels take.
SparsitySpec to_sparsity_spec(const tflite::SparsityParameters* sp);

/// Builtin operator name for a code, "UNKNOWN" when out of range.
std::string_view builtin_op_name(std::int32_t code) noexcept;

/// Upper bound of known builtin codes.
std::int32_t max_builtin_code() noexcept;

}  // namespace litelens::detail
