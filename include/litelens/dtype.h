// litelens/dtype.h: element types as the file stores them (the schema's TensorType values).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace litelens {

/// The schema's TensorType, with the schema's numbering (not the runtime's TfLiteType).
enum class DType : std::uint8_t {
  float32 = 0,
  float16 = 1,
  int32 = 2,
  uint8 = 3,
  int64 = 4,
  string = 5,
  bool_ = 6,
  int16 = 7,
  complex64 = 8,
  int8 = 9,
  float64 = 10,
  complex128 = 11,
  uint64 = 12,
  resource = 13,
  variant = 14,
  uint32 = 15,
  uint16 = 16,
  int4 = 17,
  bfloat16 = 18,
  int2 = 19,
  uint4 = 20,
  float8_e4m3fn = 21,
  float8_e5m2 = 22,
};

/// Number of TensorType values this build knows; a file may hold larger (newer) codes.
inline constexpr int kKnownDTypeCount = 23;

/// Facts about one dtype.
struct DTypeInfo {
  std::string_view name;        ///< lowercase schema name: "float32", "int4", "float8_e4m3fn"
  std::uint8_t bits;            ///< storage bits per element; 0 = no fixed size (string, resource)
  std::string_view numpy;       ///< numpy dtype string of the *stored* element ("<f4"), "" if none
};

/// Facts for a known dtype.
const DTypeInfo& dtype_info(DType type) noexcept;

/// The lowercase name of a dtype code, or "unknown" for codes this build does not know.
std::string_view dtype_name(DType type) noexcept;

/// Parses a lowercase dtype name ("float16").
std::optional<DType> dtype_from_name(std::string_view name) noexcept;

/// True for codes this build knows.
constexpr bool is_known(DType type) noexcept {
  return static_cast<int>(type) < kKnownDTypeCount;
}

/// True for int4, uint4 and int2, whose elements are packed several to a byte.
constexpr bool is_packed(DType type) noexcept {
  return type == DType::int4 || type == DType::uint4 || type == DType::int2;
}

/// Stored byte count of `count` elements for fixed-size types (packed types round up);
/// nullopt for types without a fixed size or when the count overflows.
std::optional<std::uint64_t> stored_bytes(DType type, std::uint64_t count) noexcept;

}  // namespace litelens
