#include "litelens/dtype.h"

#include <array>
#include <limits>

namespace litelens {
namespace {

constexpr std::array<DTypeInfo, kKnownDTypeCount> kInfos = {{
    {"float32", 32, "<f4"},
    {"float16", 16, "<f2"},
    {"int32", 32, "<i4"},
    {"uint8", 8, "|u1"},
    {"int64", 64, "<i8"},
    {"string", 0, ""},
    {"bool", 8, "|b1"},
    {"int16", 16, "<i2"},
    {"complex64", 64, "<c8"},
    {"int8", 8, "|i1"},
    {"float64", 64, "<f8"},
    {"complex128", 128, "<c16"},
    {"uint64", 64, "<u8"},
    {"resource", 0, ""},
    {"variant", 0, ""},
    {"uint32", 32, "<u4"},
    {"uint16", 16, "<u2"},
    {"int4", 4, ""},
    {"bfloat16", 16, ""},
    {"int2", 2, ""},
    {"uint4", 4, ""},
    {"float8_e4m3fn", 8, ""},
    {"float8_e5m2", 8, ""},
}};
static_assert(kInfos.size() == 23, "grow this table with the DType enum");

const DTypeInfo kUnknown{"unknown", 0, ""};

}  // namespace

const DTypeInfo& dtype_info(DType type) noexcept {
  return is_known(type) ? kInfos[static_cast<int>(type)] : kUnknown;
}

std::string_view dtype_name(DType type) noexcept { return dtype_info(type).name; }

std::optional<DType> dtype_from_name(std::string_view name) noexcept {
  for (int i = 0; i < kKnownDTypeCount; ++i)
    if (kInfos[i].name == name) return static_cast<DType>(i);
  return std::nullopt;
}

std::optional<std::uint64_t> stored_bytes(DType type, std::uint64_t count) noexcept {
  const unsigned bits = dtype_info(type).bits;
  if (bits == 0) return std::nullopt;
  if (bits < 8) {
    const unsigned per_byte = 8 / bits;
    return count / per_byte + (count % per_byte != 0);
  }
  const std::uint64_t width = bits / 8;
  if (count > std::numeric_limits<std::uint64_t>::max() / width) return std::nullopt;
  return count * width;
}

}  // namespace litelens
