// litelens/decode.h: pure decode kernels for tensor payloads.
//
// Nothing here knows about models, FlatBuffers or files. Every function works on spans of
// bytes or numbers that the caller has already located, so the same kernels serve the model
// reader, the exporters and the Python bindings.
//
// Conventions
//   * All stored data is little-endian (the .tflite format). The implementation refuses to
//     build on big-endian hosts.
//   * Byte sources are std::span<const std::byte> and may be unaligned.
//   * The element count of a kernel is the size of its *typed* span (the destination of a
//     widen/unpack, the source of a narrow/pack). The byte span on the other side must hold at
//     least the bytes those elements need; extra bytes are ignored (sources) or left untouched
//     (destinations).
//   * Argument errors (spans too short, a shape that does not match a span, an axis out of
//     range) throw std::invalid_argument, as API misuse does everywhere in litelens.
//   * Bad *data* (a malformed sparsity description or string buffer read from a file) is found
//     by the check_* functions, which return a short lowercase message instead of throwing.
//     The kernels that consume such data (densify, split_strings) run the same check first and
//     throw std::invalid_argument if it fails, so a hostile buffer can never make them read or
//     write out of bounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace litelens {

// ---------------------------------------------------------------------------------------
// Floating-point formats
// ---------------------------------------------------------------------------------------
//
// Widening is exact: every finite value, signed zero, subnormal and infinity of the source
// format maps to the float32 of the same value. NaNs stay NaNs of the same sign:
//   * float16 and float8_e5m2: the payload bits are kept (shifted into the float32 mantissa)
//     and the quiet bit is set, which is what the x86 F16C and Arm conversions do;
//   * bfloat16: the 16 bits become the upper half of the float32, bit for bit (signalling
//     NaNs stay signalling);
//   * float8_e4m3fn: S.1111.111 becomes the canonical quiet NaN 0x7fc00000 with sign S.
//
// Formats (sign.exponent.mantissa, exponent bias):
//   float16       1.5.10  bias 15   IEEE binary16, inf and NaN at exponent 31
//   bfloat16      1.8.7   bias 127  the upper 16 bits of an IEEE binary32
//   float8_e4m3fn 1.4.3   bias 7    OCP FP8: no infinities, NaN only at S.1111.111, max 448
//   float8_e5m2   1.5.2   bias 15   OCP FP8: IEEE-like (the upper byte of a float16)

/// float16 (2 bytes each, little-endian) -> float32. Needs src.size() >= 2 * dst.size().
void widen_float16(std::span<const std::byte> src, std::span<float> dst);

/// bfloat16 (2 bytes each, little-endian) -> float32. Needs src.size() >= 2 * dst.size().
void widen_bfloat16(std::span<const std::byte> src, std::span<float> dst);

/// OCP float8 E4M3FN (1 byte each) -> float32. Needs src.size() >= dst.size().
void widen_float8_e4m3fn(std::span<const std::byte> src, std::span<float> dst);

/// OCP float8 E5M2 (1 byte each) -> float32. Needs src.size() >= dst.size().
void widen_float8_e5m2(std::span<const std::byte> src, std::span<float> dst);

/// float32 -> float16 (2 bytes each, little-endian), round to nearest, ties to even.
/// Magnitudes from 65520 up become infinity; tiny values become subnormals or signed zero;
/// a NaN becomes a quiet float16 NaN of the same sign that keeps the top 9 payload bits.
/// The result does not depend on the floating-point environment (pure integer arithmetic).
/// Needs dst.size() >= 2 * src.size().
void narrow_to_float16(std::span<const float> src, std::span<std::byte> dst);

/// float32 -> bfloat16 (2 bytes each, little-endian), round to nearest, ties to even; NaN
/// becomes a quiet bfloat16 NaN of the same sign. Needs dst.size() >= 2 * src.size().
void narrow_to_bfloat16(std::span<const float> src, std::span<std::byte> dst);

/// One float16 bit pattern -> float32 (same rules as widen_float16).
float float16_bits_to_float(std::uint16_t bits) noexcept;

/// One float32 -> float16 bit pattern (same rules as narrow_to_float16).
std::uint16_t float_to_float16_bits(float value) noexcept;

// ---------------------------------------------------------------------------------------
// Sub-byte integers (INT4, UINT4, INT2)
// ---------------------------------------------------------------------------------------
//
// Elements are packed across the whole flattened tensor, least-significant bits first:
//   4-bit: byte k holds element 2k in bits 0-3 and element 2k+1 in bits 4-7.
//   2-bit: byte k holds elements 4k..4k+3 in bit pairs 0-1, 2-3, 4-5, 6-7.
// Signed values are two's complement (INT4: -8..7, INT2: -2..1). Unused bits of a final,
// partly filled byte are written as 0 by the pack functions and ignored by the unpackers.
// Examples: INT4 {2,1,4,3} <-> bytes 0x12 0x34; INT2 {0,1,0,-2} <-> byte 0x84.

/// Bytes needed for `count` packed elements of `bits_per_element` (1, 2, 4 or 8) bits.
constexpr std::size_t packed_byte_count(std::size_t count, unsigned bits_per_element) noexcept {
  const std::size_t per_byte = 8u / bits_per_element;
  return count / per_byte + (count % per_byte != 0 ? 1u : 0u);
}

/// INT4 -> int8 (sign-extended). Needs src.size() >= packed_byte_count(dst.size(), 4).
void unpack_int4(std::span<const std::byte> src, std::span<std::int8_t> dst);

/// UINT4 -> uint8 (0..15). Needs src.size() >= packed_byte_count(dst.size(), 4).
void unpack_uint4(std::span<const std::byte> src, std::span<std::uint8_t> dst);

/// INT2 -> int8 (-2..1). Needs src.size() >= packed_byte_count(dst.size(), 2).
void unpack_int2(std::span<const std::byte> src, std::span<std::int8_t> dst);

/// int8 -> INT4. Writes exactly packed_byte_count(src.size(), 4) bytes of dst. Only the low
/// 4 bits of each value are stored, so values outside -8..7 wrap; range-check beforehand.
void pack_int4(std::span<const std::int8_t> src, std::span<std::byte> dst);

/// uint8 -> UINT4. Writes exactly packed_byte_count(src.size(), 4) bytes of dst. Only the low
/// 4 bits of each value are stored (values above 15 wrap).
void pack_uint4(std::span<const std::uint8_t> src, std::span<std::byte> dst);

/// int8 -> INT2. Writes exactly packed_byte_count(src.size(), 2) bytes of dst. Only the low
/// 2 bits of each value are stored (values outside -2..1 wrap).
void pack_int2(std::span<const std::int8_t> src, std::span<std::byte> dst);

// ---------------------------------------------------------------------------------------
// Sparse tensors (the format's TACO-style SparsityParameters)
// ---------------------------------------------------------------------------------------
//
// A tensor of rank n whose storage is split into k block dimensions has L = n + k traversal
// levels. Level i walks dimension traversal_order[i]: values < n are original dimensions,
// values n..n+k-1 are block dimensions, and block dimension n+j subdivides original dimension
// block_map[j]. A blocked original dimension d with block extent b is walked as shape[d]/b
// blocks; its block level is walked with extent b.
//
// levels[i] describes traversal level i (not original dimension i):
//   * dense (is_sparse == false): every index 0..dense_size-1 is present; dense_size must
//     equal the level's extent. segments/indices are ignored.
//   * sparse (CSR): for the p-th entry reaching this level, the indices present are
//     indices[segments[p] .. segments[p+1]-1].
// The stored values are the leaves of this walk in order (for block-sparse data this
// includes the zeros inside each stored block). SparseIndexVector payloads of any width
// (uint8, uint16, int32) are widened to int32 by the caller.
//
// Example (a check worked by hand): shape [4,4], traversal_order [0,1,2,3],
// block_map [0,1], levels DENSE(2), CSR(segments [0,2,3], indices [0,1,1]), DENSE(2),
// DENSE(2), and 12 stored values 1,0,0,4, 2,3,0,0, 5,0,0,6 densify to the rows
// [1,0,2,3], [0,4,0,0], [0,0,5,0], [0,0,0,6].

/// One traversal level (the file's DimensionMetadata, with its index vectors widened).
struct SparseLevel {
  bool is_sparse = false;             ///< false = DENSE, true = SPARSE_CSR
  std::int32_t dense_size = 0;        ///< extent of a DENSE level; block extent of a block level
  std::vector<std::int32_t> segments; ///< CSR row pointers (sparse levels)
  std::vector<std::int32_t> indices;  ///< CSR column indices (sparse levels)
};

/// The file's SparsityParameters.
struct SparsitySpec {
  std::vector<std::int32_t> traversal_order;  ///< length n + k
  std::vector<std::int32_t> block_map;        ///< length k
  std::vector<SparseLevel> levels;            ///< length n + k, one per traversal level
};

/// Upper bound on the stored value count that check_sparsity accepts (2^56), so that
/// stored_count times any element size fits in 64 bits.
inline constexpr std::uint64_t kMaxSparseStoredCount = std::uint64_t{1} << 56;

/// Validates a sparsity description against the tensor's dense shape and computes how many
/// values the buffer stores (the leaves of the walk). On success returns nullopt and sets
/// stored_count; otherwise returns a short lowercase message (e.g. "sparsity level 1:
/// segments decrease at 3") and sets stored_count to 0. Rules:
///   * no negative dimension, and prod(shape) fits in 64 bits;
///   * len(traversal_order) = len(levels) = n + k with k >= 0, len(block_map) = k;
///   * traversal_order[0..n) is a permutation of 0..n-1, traversal_order[n..n+k) one of
///     n..n+k-1;
///   * block_map values lie in [0, n) and are distinct (one block dimension per original
///     dimension, as every known writer does);
///   * each block level has dense_size > 0 (whatever its format), and the original
///     dimension it subdivides is divisible by it;
///   * a dense level's dense_size equals its (blocked) extent;
///   * a sparse level has (entries reaching it) + 1 segments, starting at 0, non-decreasing,
///     ending at len(indices), and every index lies in [0, extent);
///   * the stored count does not exceed kMaxSparseStoredCount.
/// Safe on hostile input: iterative, overflow-checked, and it allocates only in proportion
/// to the spec's own vector sizes.
std::optional<std::string> check_sparsity(const SparsitySpec& spec,
                                          std::span<const std::int32_t> dense_shape,
                                          std::uint64_t& stored_count);

/// Scatters the stored values into a dense row-major tensor. dense_out must be exactly
/// prod(dense_shape) * element_size bytes; it is zero-filled first. stored must hold at least
/// stored_count * element_size bytes. element_size is the byte width of one element (> 0).
/// Runs check_sparsity first and throws std::invalid_argument (message prefixed "densify: ")
/// if the spec is invalid or a span has the wrong size. If CSR indices repeat within a
/// segment, the later stored value wins (the runtime behaves the same).
void densify(const SparsitySpec& spec, std::span<const std::int32_t> dense_shape,
             std::span<const std::byte> stored, std::size_t element_size,
             std::span<std::byte> dense_out);

// ---------------------------------------------------------------------------------------
// Affine dequantization to float32
// ---------------------------------------------------------------------------------------
//
// real = scale * (q - zero_point), computed for every element as
//
//     out = (float)( (double)scale * (double)(q - zero_point) )
//
// where q - zero_point is the exact integer difference (no overflow, even for int64 data and
// a hostile int64 zero point), converted to double with round-to-nearest; the product is
// rounded to double and then to float.
//
// Relation to the TFLite runtime's reference DEQUANTIZE kernels, which compute the
// difference in int32 and then either multiply by a double scale (per-tensor:
// float(double_scale * diff)) or multiply a float scale by the difference converted to float
// (per-channel: float(scale * float(diff)) in single precision):
//   * whenever |q - zero_point| <= 2^24 (always the case for int8, uint8 and int16 data with
//     zero points in a sane range) all three formulas are exact before the final rounding, so
//     the result is bit-identical to both runtime kernels: the correctly rounded float of
//     scale * (q - zero_point). This implementation uses single-precision arithmetic in that
//     case (it is the same value) and double only when a value could exceed 2^24;
//   * for larger differences (int32/int64 data, which the runtime's DEQUANTIZE does not
//     accept anyway) the result equals the runtime's per-tensor double formula whenever the
//     difference fits in int32, and is the more accurate of the two otherwise.
// The runtime narrows zero points to int32; here the file's int64 value is used as is.

/// Affine quantization parameters (views into the file's QuantizationParameters).
struct AffineQuant {
  std::span<const float> scale;           ///< 1 value (per-tensor) or shape[axis] values
  std::span<const std::int64_t> zero_point; ///< 1 value (broadcast) or len(scale) values
  std::int32_t axis = 0;                  ///< quantized_dimension; ignored when len(scale) == 1
};

/// Dequantizes q (row-major, dense shape `shape`) into out. Requirements (else
/// std::invalid_argument): no negative dimension; prod(shape) == q.size() == out.size() (an
/// empty shape is a scalar: one element); scale non-empty; zero_point of length 1 or
/// len(scale); for len(scale) > 1: 0 <= axis < rank and shape[axis] == len(scale).
/// Per-tensor when len(scale) == 1, otherwise per-axis: the slice t[..., c, ...] along
/// `axis` uses scale[c] and zero_point[c] (or zero_point[0]).
void dequantize(std::span<const std::int8_t> q, std::span<const std::int32_t> shape,
                const AffineQuant& quant, std::span<float> out);
void dequantize(std::span<const std::uint8_t> q, std::span<const std::int32_t> shape,
                const AffineQuant& quant, std::span<float> out);
void dequantize(std::span<const std::int16_t> q, std::span<const std::int32_t> shape,
                const AffineQuant& quant, std::span<float> out);
void dequantize(std::span<const std::int32_t> q, std::span<const std::int32_t> shape,
                const AffineQuant& quant, std::span<float> out);
void dequantize(std::span<const std::int64_t> q, std::span<const std::int32_t> shape,
                const AffineQuant& quant, std::span<float> out);

/// Blockwise dequantization of a 2-D weight [rows, cols] (e.g. a FULLY_CONNECTED filter
/// [out, in]): element (r, c) uses scale index r * (cols / block_size) + c / block_size.
/// q holds the already unpacked values (see unpack_int4), scales the row-major
/// rows x (cols / block_size) scale table (a FLOAT16 scale tensor widened with
/// widen_float16), zero_points is empty (all zero) or has one value per scale. Same formula
/// as dequantize(). Requirements (else std::invalid_argument): shape.size() == 2, no
/// negative dimension, block_size > 0, cols divisible by block_size, q.size() == out.size()
/// == rows * cols, scales.size() == rows * (cols / block_size).
void dequantize_blockwise(std::span<const std::int8_t> q, std::span<const std::int32_t> shape,
                          std::span<const float> scales,
                          std::span<const std::int64_t> zero_points, std::int32_t block_size,
                          std::span<float> out);

// ---------------------------------------------------------------------------------------
// STRING tensors
// ---------------------------------------------------------------------------------------
//
// Buffer layout (all int32 little-endian):
//   N, off[0], ..., off[N], then the characters; string i is bytes [off[i], off[i+1]).
//   off[0] == 4 * (N + 2) (the header size), offsets non-decreasing, off[N] == buffer length.
// Example, the strings "AB" and "": 02000000 10000000 12000000 12000000 41 42.

/// Checks a STRING buffer and that it holds expected_count strings (the product of the
/// tensor's shape). Returns nullopt or a short lowercase message. N is bounded by the buffer
/// length before anything is read, and nothing is allocated.
std::optional<std::string> check_string_buffer(std::span<const std::byte> buf,
                                               std::uint64_t expected_count);

/// The strings of a STRING buffer as views into buf (not NUL-terminated; may be empty).
/// Validates the buffer first (for its own N) and throws std::invalid_argument if it is
/// malformed.
std::vector<std::string_view> split_strings(std::span<const std::byte> buf);

}  // namespace litelens
