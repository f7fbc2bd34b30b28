// Decode kernels: float formats, sub-byte integers, sparse tensors, dequantization, strings.
//
// Performance notes. The hot loops are written so that GCC and Clang vectorise them at -O2
// (GCC 12's -O2 uses the "very cheap" cost model, which only vectorises loops whose trip
// count is a known multiple of the vector width and that need no runtime alias checks).
// Each kernel is therefore a small always-inlined template over its element count, with
// __restrict parameters, called on fixed blocks of kBlock elements; a scalar call handles the
// remainder. Selects are written as bit masks over values computed unconditionally, so no
// floating-point operation sits in a conditional arm (with -ftrapping-math, the default, GCC
// will not if-convert those). float16 <-> float32 additionally uses the x86 F16C instructions
// when the CPU has them (checked once at run time); the portable code is then used only for
// the last few elements, and gives identical bits.
#include "litelens/decode.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(LITELENS_NO_F16C)
#include <cpuid.h>
#include <immintrin.h>
#endif

static_assert(std::endian::native == std::endian::little,
              "litelens decode kernels assume a little-endian host");
static_assert(std::numeric_limits<float>::is_iec559 && sizeof(float) == 4);
static_assert(std::numeric_limits<double>::is_iec559 && sizeof(double) == 8);

#if defined(__GNUC__) || defined(__clang__)
#define LITELENS_RESTRICT __restrict__
#define LITELENS_ALWAYS_INLINE [[gnu::always_inline]] inline
#elif defined(_MSC_VER)
#define LITELENS_RESTRICT __restrict
#define LITELENS_ALWAYS_INLINE __forceinline
#else
#define LITELENS_RESTRICT
#define LITELENS_ALWAYS_INLINE inline
#endif

namespace litelens {
namespace {

using u8 = std::uint8_t;
using u16 = std::uint16_t;
using u32 = std::uint32_t;
using u64 = std::uint64_t;

// ---- shared helpers ------------------------------------------------------------------

// Elements per vectorised block; a multiple of every vector width in use.
constexpr std::size_t kBlock = 64;

template <std::size_t N>
using Count = std::integral_constant<std::size_t, N>;

// Calls body(first, count) on consecutive blocks: full blocks get a compile-time count
// (Count<kBlock>), the remainder a run-time one.
template <class Body>
LITELENS_ALWAYS_INLINE void for_blocks(std::size_t n, Body&& body) {
  std::size_t i = 0;
  for (; n - i >= kBlock; i += kBlock) body(i, Count<kBlock>{});
  if (i < n) body(i, n - i);
}

[[noreturn]] void throw_arg(const std::string& message) { throw std::invalid_argument(message); }

const u8* bytes_of(std::span<const std::byte> s) { return reinterpret_cast<const u8*>(s.data()); }
u8* bytes_of(std::span<std::byte> s) { return reinterpret_cast<u8*>(s.data()); }

LITELENS_ALWAYS_INLINE u16 load_u16(const u8* p) {
  u16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

LITELENS_ALWAYS_INLINE std::int32_t load_i32(const u8* p) {
  std::int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// All-ones when cond holds, else zero.
LITELENS_ALWAYS_INLINE constexpr u32 mask_if(bool cond) { return 0u - static_cast<u32>(cond); }

// Checked a * b for unsigned 64-bit values.
bool mul_overflows(u64 a, u64 b, u64& out) {
  if (a != 0 && b > std::numeric_limits<u64>::max() / a) return true;
  out = a * b;
  return false;
}

// Product of a shape's dimensions; throws on a negative dimension or overflow.
u64 element_count_or_throw(std::span<const std::int32_t> shape, const char* who) {
  u64 total = 1;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] < 0) throw_arg(fmt::format("{}: dimension {} is negative ({})", who, d, shape[d]));
    if (mul_overflows(total, static_cast<u64>(shape[d]), total))
      throw_arg(fmt::format("{}: element count overflows", who));
  }
  return total;
}

// ---- float16 / bfloat16 / float8 -------------------------------------------------------

// float16 bit pattern -> float32 bit pattern. Branch-free so that it vectorises.
// * normal: rebias the exponent (127 - 15 = 112) and move the fields up by 13 bits;
// * subnormal (exponent 0): the value is em * 2^-24 with em < 2^10, computed exactly as a
//   float (int -> float is exact, the product is a power-of-two scaling into the normal float
//   range, so flush-to-zero modes cannot affect it); em == 0 gives +0;
// * exponent 31: infinity, or NaN with the payload kept and the quiet bit set.
LITELENS_ALWAYS_INLINE constexpr u32 f16_to_f32_bits(u32 h) {
  const u32 sign = (h & 0x8000u) << 16;
  const u32 em = h & 0x7fffu;
  const u32 normal = (em << 13) + (112u << 23);
  const u32 subnormal =
      std::bit_cast<u32>(static_cast<float>(static_cast<std::int32_t>(em)) * 0x1p-24f);
  const u32 special = (em << 13) | 0x7f800000u | (mask_if(em > 0x7c00u) & 0x00400000u);
  const u32 is_sub = mask_if(em < 0x0400u);
  const u32 is_special = mask_if(em >= 0x7c00u);
  const u32 finite = (subnormal & is_sub) | (normal & ~is_sub);
  return sign | (special & is_special) | (finite & ~is_special);
}

// float32 -> float16 bits, round to nearest even, integer arithmetic only.
constexpr u16 f32_to_f16_bits(float value) {
  const u32 x = std::bit_cast<u32>(value);
  const u32 sign = (x >> 16) & 0x8000u;
  const u32 a = x & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<u16>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // NaN
  if (a >= 0x477ff000u) return static_cast<u16>(sign | 0x7c00u);  // >= 65520 (a tie) or inf
  if (a >= 0x38800000u) {                                         // normal half: >= 2^-14
    // Round at bit 13 (ties to even); a carry out of the mantissa bumps the exponent.
    const u32 rounded = a + 0x0fffu + ((a >> 13) & 1u);
    return static_cast<u16>(sign | ((rounded - (112u << 23)) >> 13));
  }
  // Subnormal half or zero. The value is mant * 2^(e-150) = mant * 2^(e-126) half units
  // (2^-24). Below 2^-25 (e <= 101) everything rounds to zero, as do float subnormals.
  const u32 e = a >> 23;
  if (e < 102u) return static_cast<u16>(sign);
  const u32 mant = (a & 0x7fffffu) | 0x800000u;
  const u32 shift = 126u - e;  // 14..24
  u32 q = mant >> shift;
  const u32 rem = mant & ((1u << shift) - 1u);
  const u32 half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (q & 1u))) ++q;  // may become 0x400, the smallest normal
  return static_cast<u16>(sign | q);
}

constexpr u16 f32_to_bf16_bits(float value) {
  const u32 x = std::bit_cast<u32>(value);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<u16>((x >> 16) | 0x0040u);  // quiet NaN
  // Round to nearest even at bit 16; overflow carries into the exponent and yields infinity.
  return static_cast<u16>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

// OCP float8 E4M3FN: bias 7, no infinities, S.1111.111 is NaN, subnormals m * 2^-9.
constexpr std::array<float, 256> make_e4m3fn_table() {
  std::array<float, 256> table{};
  for (u32 b = 0; b < 256; ++b) {
    const u32 sign = (b & 0x80u) << 24;
    const u32 e = (b >> 3) & 0xfu;
    const u32 m = b & 0x7u;
    u32 bits;
    if (e == 0xfu && m == 0x7u) {
      bits = 0x7fc00000u;
    } else if (e == 0) {
      bits = std::bit_cast<u32>(static_cast<float>(m) * 0x1p-9f);
    } else {
      bits = ((e + (127u - 7u)) << 23) | (m << 20);
    }
    table[b] = std::bit_cast<float>(bits | sign);
  }
  return table;
}

// OCP float8 E5M2 is the upper byte of a float16.
constexpr std::array<float, 256> make_e5m2_table() {
  std::array<float, 256> table{};
  for (u32 b = 0; b < 256; ++b) table[b] = std::bit_cast<float>(f16_to_f32_bits(b << 8));
  return table;
}

constexpr std::array<float, 256> kE4M3FN = make_e4m3fn_table();
constexpr std::array<float, 256> kE5M2 = make_e5m2_table();

template <class N>
LITELENS_ALWAYS_INLINE void f16_kernel(const u8* LITELENS_RESTRICT s, float* LITELENS_RESTRICT d,
                                       N n) {
  for (std::size_t i = 0; i < n; ++i) d[i] = std::bit_cast<float>(f16_to_f32_bits(load_u16(s + 2 * i)));
}

template <class N>
LITELENS_ALWAYS_INLINE void bf16_kernel(const u8* LITELENS_RESTRICT s, float* LITELENS_RESTRICT d,
                                        N n) {
  for (std::size_t i = 0; i < n; ++i) d[i] = std::bit_cast<float>(static_cast<u32>(load_u16(s + 2 * i)) << 16);
}

template <class N>
LITELENS_ALWAYS_INLINE void table_kernel(const u8* LITELENS_RESTRICT s, float* LITELENS_RESTRICT d,
                                         const float* LITELENS_RESTRICT table, N n) {
  for (std::size_t i = 0; i < n; ++i) d[i] = table[s[i]];
}

// x86 F16C conversions (vcvtph2ps / vcvtps2ph), used when the CPU has them. They give the
// same results as the portable code, bit for bit: exact widening, NaN payload kept with the
// quiet bit set; narrowing rounds to nearest even and quiets NaNs keeping the top payload
// bits. The decode tests compare both paths over all float16 patterns. Define
// LITELENS_NO_F16C to build the portable code only.
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(LITELENS_NO_F16C)
#define LITELENS_F16C 1

// CPUID leaf 1: ECX bit 27 OSXSAVE, 28 AVX, 29 F16C; XCR0 bits 1-2: the OS saves XMM and YMM.
bool detect_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
  constexpr unsigned needed = (1u << 27) | (1u << 28) | (1u << 29);
  if ((ecx & needed) != needed) return false;
  unsigned xcr0_lo = 0, xcr0_hi = 0;
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  return (xcr0_lo & 6u) == 6u;
}

bool cpu_has_f16c() {
  static const bool has = detect_f16c();
  return has;
}

// Converts the first n - n % 8 elements; returns how many it converted.
__attribute__((target("avx,f16c"))) std::size_t widen_f16_f16c(const u8* s, float* d, std::size_t n) {
  std::size_t i = 0;
  for (; n - i >= 8; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 2 * i));
    _mm256_storeu_ps(d + i, _mm256_cvtph_ps(h));
  }
  return i;
}

__attribute__((target("avx,f16c"))) std::size_t narrow_f16_f16c(const float* s, u8* d, std::size_t n) {
  std::size_t i = 0;
  for (; n - i >= 8; i += 8) {
    const __m256 f = _mm256_loadu_ps(s + i);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 2 * i),
                     _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  return i;
}
#endif

void require_source(std::size_t have, std::size_t need, const char* who) {
  if (have < need) throw_arg(fmt::format("{}: source has {} bytes, needs {}", who, have, need));
}

void require_dest(std::size_t have, std::size_t need, const char* who) {
  if (have < need) throw_arg(fmt::format("{}: destination has {} bytes, needs {}", who, have, need));
}

// ---- sub-byte integers -----------------------------------------------------------------

// Sign-extends the low `bits` bits of v (as an unsigned value) into a byte: (v ^ m) - m with
// m = 2^(bits-1) maps 0..2^bits-1 onto -m..m-1 in two's complement.
template <unsigned Bits>
LITELENS_ALWAYS_INLINE constexpr u8 sign_extend(u32 v) {
  constexpr u32 m = 1u << (Bits - 1);
  return static_cast<u8>(((v & ((1u << Bits) - 1u)) ^ m) - m);
}

// One input byte -> two output bytes. The arithmetic stays in 8-bit lanes (the xor/subtract
// form of sign extension needs no arithmetic byte shift, which SSE2 lacks).
template <bool Signed, class N>
LITELENS_ALWAYS_INLINE void unpack4_kernel(const u8* LITELENS_RESTRICT s, u8* LITELENS_RESTRICT d, N n) {
  for (std::size_t k = 0; k < n; ++k) {
    const u8 b = s[k];
    const u8 lo = static_cast<u8>(b & 0x0fu);
    const u8 hi = static_cast<u8>(b >> 4);
    d[2 * k] = Signed ? static_cast<u8>((lo ^ 0x08u) - 0x08u) : lo;
    d[2 * k + 1] = Signed ? static_cast<u8>((hi ^ 0x08u) - 0x08u) : hi;
  }
}

// One input byte -> four output bytes, one 32-bit little-endian store.
template <class N>
LITELENS_ALWAYS_INLINE void unpack2_kernel(const u8* LITELENS_RESTRICT s, u8* LITELENS_RESTRICT d, N n) {
  for (std::size_t k = 0; k < n; ++k) {
    const u32 b = s[k];
    const u32 quad = static_cast<u32>(sign_extend<2>(b)) | (static_cast<u32>(sign_extend<2>(b >> 2)) << 8) |
                     (static_cast<u32>(sign_extend<2>(b >> 4)) << 16) |
                     (static_cast<u32>(sign_extend<2>(b >> 6)) << 24);
    std::memcpy(d + 4 * k, &quad, 4);
  }
}

template <class N>
LITELENS_ALWAYS_INLINE void pack4_kernel(const u8* LITELENS_RESTRICT s, u8* LITELENS_RESTRICT d, N n) {
  for (std::size_t k = 0; k < n; ++k)
    d[k] = static_cast<u8>((s[2 * k] & 0xfu) | ((s[2 * k + 1] & 0xfu) << 4));
}

template <class N>
LITELENS_ALWAYS_INLINE void pack2_kernel(const u8* LITELENS_RESTRICT s, u8* LITELENS_RESTRICT d, N n) {
  for (std::size_t k = 0; k < n; ++k)
    d[k] = static_cast<u8>((s[4 * k] & 3u) | ((s[4 * k + 1] & 3u) << 2) | ((s[4 * k + 2] & 3u) << 4) |
                           ((s[4 * k + 3] & 3u) << 6));
}

template <bool Signed>
void unpack4(std::span<const std::byte> src, u8* dst, std::size_t n, const char* who) {
  require_source(src.size(), packed_byte_count(n, 4), who);
  const u8* s = bytes_of(src);
  const std::size_t full = n / 2;
  for_blocks(full, [&](std::size_t i, auto len) { unpack4_kernel<Signed>(s + i, dst + 2 * i, len); });
  if (n % 2 != 0) {
    const u32 b = s[full];
    dst[n - 1] = Signed ? sign_extend<4>(b) : static_cast<u8>(b & 0xfu);
  }
}

template <class T>
void pack4(std::span<const T> src, std::span<std::byte> dst, const char* who) {
  const std::size_t n = src.size();
  require_dest(dst.size(), packed_byte_count(n, 4), who);
  const u8* s = reinterpret_cast<const u8*>(src.data());
  u8* d = bytes_of(dst);
  const std::size_t full = n / 2;
  for_blocks(full, [&](std::size_t i, auto len) { pack4_kernel(s + 2 * i, d + i, len); });
  if (n % 2 != 0) d[full] = static_cast<u8>(s[n - 1] & 0xfu);
}

// ---- dequantization --------------------------------------------------------------------

// The exact difference a - b (no overflow), rounded to double.
LITELENS_ALWAYS_INLINE double exact_difference(std::int64_t a, std::int64_t b) {
  constexpr std::int64_t lo = std::numeric_limits<std::int64_t>::min();
  constexpr std::int64_t hi = std::numeric_limits<std::int64_t>::max();
  const bool overflows = (b > 0 && a < lo + b) || (b < 0 && a > hi + b);
  if (!overflows) return static_cast<double>(a - b);
  // |a - b| lies in [2^63, 2^64): its magnitude is exact in uint64 (modular subtraction).
  if (a > b) return static_cast<double>(static_cast<u64>(a) - static_cast<u64>(b));
  return -static_cast<double>(static_cast<u64>(b) - static_cast<u64>(a));
}

template <class T>
LITELENS_ALWAYS_INLINE float dequant_exact(T q, float scale, std::int64_t zero_point) {
  return static_cast<float>(static_cast<double>(scale) *
                            exact_difference(static_cast<std::int64_t>(q), zero_point));
}

// True when every value of T minus this zero point has magnitude <= 2^24, so that the
// single-precision formula float(q - z) * scale equals the exact one (see the header).
template <class T>
bool single_precision_ok(std::int64_t zero_point) {
  if constexpr (sizeof(T) > 2) {
    return false;
  } else {
    constexpr std::int64_t limit = std::int64_t{1} << 24;
    constexpr std::int64_t qmin = std::numeric_limits<T>::min();
    constexpr std::int64_t qmax = std::numeric_limits<T>::max();
    return zero_point >= qmax - limit && zero_point <= qmin + limit;
  }
}

// Same scale and zero point for n elements (single precision).
template <class T, class N>
LITELENS_ALWAYS_INLINE void dequant_run_fast(const T* LITELENS_RESTRICT q, float* LITELENS_RESTRICT out,
                                             float scale, std::int32_t zero_point, N n) {
  for (std::size_t i = 0; i < n; ++i)
    out[i] = static_cast<float>(static_cast<std::int32_t>(q[i]) - zero_point) * scale;
}

// One scale and zero point per element (single precision): the last-axis case.
template <class T, class N>
LITELENS_ALWAYS_INLINE void dequant_cols_fast(const T* LITELENS_RESTRICT q, float* LITELENS_RESTRICT out,
                                              const float* LITELENS_RESTRICT scale,
                                              const std::int32_t* LITELENS_RESTRICT zero_point, N n) {
  for (std::size_t i = 0; i < n; ++i)
    out[i] = static_cast<float>(static_cast<std::int32_t>(q[i]) - zero_point[i]) * scale[i];
}

template <class T>
void dequant_run(const T* q, float* out, std::size_t n, float scale, std::int64_t zero_point) {
  if (single_precision_ok<T>(zero_point)) {
    const auto z = static_cast<std::int32_t>(zero_point);
    for_blocks(n, [&](std::size_t i, auto len) { dequant_run_fast(q + i, out + i, scale, z, len); });
  } else {
    for (std::size_t i = 0; i < n; ++i) out[i] = dequant_exact(q[i], scale, zero_point);
  }
}

template <class T>
void dequantize_impl(std::span<const T> q, std::span<const std::int32_t> shape, const AffineQuant& quant,
                     std::span<float> out) {
  const u64 count = element_count_or_throw(shape, "dequantize");
  if (count != q.size())
    throw_arg(fmt::format("dequantize: shape has {} elements, data has {}", count, q.size()));
  if (out.size() != q.size())
    throw_arg(fmt::format("dequantize: output has {} elements, expected {}", out.size(), q.size()));
  const std::size_t channels = quant.scale.size();
  if (channels == 0) throw_arg("dequantize: no scale");
  const std::size_t nzp = quant.zero_point.size();
  if (nzp != 1 && nzp != channels)
    throw_arg(fmt::format("dequantize: {} zero points for {} scales", nzp, channels));

  if (channels == 1) {
    dequant_run(q.data(), out.data(), q.size(), quant.scale[0], quant.zero_point[0]);
    return;
  }

  const std::size_t rank = shape.size();
  if (quant.axis < 0 || static_cast<std::size_t>(quant.axis) >= rank)
    throw_arg(fmt::format("dequantize: axis {} out of range for rank {}", quant.axis, rank));
  const auto axis = static_cast<std::size_t>(quant.axis);
  if (static_cast<std::size_t>(shape[axis]) != channels)
    throw_arg(fmt::format("dequantize: {} scales for dimension {} of size {}", channels, axis, shape[axis]));

  // No overflow below: every partial product divides count.
  std::size_t outer = 1;
  for (std::size_t d = 0; d < axis; ++d) outer *= static_cast<std::size_t>(shape[d]);
  std::size_t inner = 1;
  for (std::size_t d = axis + 1; d < rank; ++d) inner *= static_cast<std::size_t>(shape[d]);
  if (count == 0) return;

  auto zero_point_of = [&](std::size_t c) { return quant.zero_point[nzp == 1 ? 0 : c]; };
  bool fast = true;
  for (std::size_t c = 0; c < channels && fast; ++c) fast = single_precision_ok<T>(zero_point_of(c));

  if (inner == 1 && fast) {
    // Channels are the innermost dimension: one scale per element of each row.
    std::vector<std::int32_t> zero_points(channels);
    for (std::size_t c = 0; c < channels; ++c) zero_points[c] = static_cast<std::int32_t>(zero_point_of(c));
    const float* scales = quant.scale.data();
    const std::int32_t* zps = zero_points.data();
    for (std::size_t o = 0; o < outer; ++o) {
      const T* qrow = q.data() + o * channels;
      float* orow = out.data() + o * channels;
      for_blocks(channels, [&](std::size_t i, auto len) {
        dequant_cols_fast(qrow + i, orow + i, scales + i, zps + i, len);
      });
    }
    return;
  }
  for (std::size_t o = 0; o < outer; ++o) {
    for (std::size_t c = 0; c < channels; ++c) {
      const std::size_t first = (o * channels + c) * inner;
      dequant_run(q.data() + first, out.data() + first, inner, quant.scale[c], zero_point_of(c));
    }
  }
}

// ---- sparsity --------------------------------------------------------------------------

// What densify needs per traversal level, derived by analyze_sparsity.
struct LevelPlan {
  bool sparse = false;
  u64 size = 0;                        // dense levels: the extent
  const std::int32_t* segments = nullptr;
  const std::int32_t* indices = nullptr;
  u64 weight = 0;                      // flat-offset contribution of one index step
};

struct SparsityPlan {
  std::vector<LevelPlan> levels;
  u64 stored_count = 0;
  u64 dense_count = 0;
};

// Validates spec and fills plan. Iterative; allocations are bounded by the spec's sizes.
std::optional<std::string> analyze_sparsity(const SparsitySpec& spec, std::span<const std::int32_t> shape,
                                            SparsityPlan& plan) {
  const std::size_t n = shape.size();
  const std::size_t total_levels = spec.traversal_order.size();
  if (total_levels < n)
    return fmt::format("sparsity: traversal_order has {} entries, fewer than rank {}", total_levels, n);
  if (spec.levels.size() != total_levels)
    return fmt::format("sparsity: {} dim_metadata entries, expected {}", spec.levels.size(), total_levels);
  const std::size_t k = total_levels - n;
  if (spec.block_map.size() != k)
    return fmt::format("sparsity: block_map has {} entries, expected {}", spec.block_map.size(), k);

  u64 dense_count = 1;
  for (std::size_t d = 0; d < n; ++d) {
    if (shape[d] < 0) return fmt::format("sparsity: dimension {} is negative ({})", d, shape[d]);
    if (mul_overflows(dense_count, static_cast<u64>(shape[d]), dense_count))
      return std::string("sparsity: dense element count overflows");
  }

  // traversal_order: level_of[t] = the level that walks dimension t.
  constexpr std::size_t none = std::numeric_limits<std::size_t>::max();
  std::vector<std::size_t> level_of(total_levels, none);
  for (std::size_t lv = 0; lv < total_levels; ++lv) {
    const std::int64_t t = spec.traversal_order[lv];
    const std::int64_t lo = lv < n ? 0 : static_cast<std::int64_t>(n);
    const std::int64_t hi = lv < n ? static_cast<std::int64_t>(n) : static_cast<std::int64_t>(total_levels);
    if (t < lo || t >= hi)
      return fmt::format("sparsity: traversal_order[{}] = {} is not in [{}, {})", lv, t, lo, hi);
    if (level_of[static_cast<std::size_t>(t)] != none)
      return fmt::format("sparsity: traversal_order repeats {}", t);
    level_of[static_cast<std::size_t>(t)] = lv;
  }

  // block_map: block_of[d] = the block dimension j subdividing original dimension d.
  std::vector<std::size_t> block_of(n, none);
  std::vector<u64> block_extent(k);
  for (std::size_t j = 0; j < k; ++j) {
    const std::int32_t d = spec.block_map[j];
    if (d < 0 || static_cast<std::size_t>(d) >= n)
      return fmt::format("sparsity: block_map[{}] = {} is not in [0, {})", j, d, n);
    const auto du = static_cast<std::size_t>(d);
    if (block_of[du] != none) return fmt::format("sparsity: block_map maps two block dims to dim {}", d);
    block_of[du] = j;
    const std::int32_t b = spec.levels[level_of[n + j]].dense_size;
    if (b <= 0) return fmt::format("sparsity: block dim {} has size {}", n + j, b);
    if (shape[du] % b != 0)
      return fmt::format("sparsity: dim {} ({}) is not divisible by block size {}", d, shape[du], b);
    block_extent[j] = static_cast<u64>(b);
  }

  // Row-major strides of the dense tensor (all < dense_count, so no overflow).
  std::vector<u64> stride(n, 1);
  for (std::size_t d = n; d-- > 1;) stride[d - 1] = stride[d] * static_cast<u64>(shape[d]);

  plan.levels.assign(total_levels, LevelPlan{});
  u64 count = 1;  // entries reaching the current level
  for (std::size_t lv = 0; lv < total_levels; ++lv) {
    const auto t = static_cast<std::size_t>(spec.traversal_order[lv]);
    u64 extent;
    u64 weight;
    if (t < n) {
      const bool blocked = block_of[t] != none;
      const u64 b = blocked ? block_extent[block_of[t]] : 1;
      extent = static_cast<u64>(shape[t]) / b;
      weight = stride[t] * b;
    } else {
      extent = block_extent[t - n];
      weight = stride[static_cast<std::size_t>(spec.block_map[t - n])];
    }
    const SparseLevel& m = spec.levels[lv];
    LevelPlan& p = plan.levels[lv];
    p.sparse = m.is_sparse;
    p.weight = weight;
    if (!m.is_sparse) {
      if (m.dense_size < 0 || static_cast<u64>(m.dense_size) != extent)
        return fmt::format("sparsity level {}: dense_size {}, expected {}", lv, m.dense_size, extent);
      p.size = extent;
      if (mul_overflows(count, extent, count) || count > kMaxSparseStoredCount)
        return std::string("sparsity: stored element count overflows");
      continue;
    }
    const std::vector<std::int32_t>& seg = m.segments;
    const std::vector<std::int32_t>& idx = m.indices;
    // count <= kMaxSparseStoredCount, so count + 1 cannot overflow.
    if (seg.size() != count + 1)
      return fmt::format("sparsity level {}: {} segments, expected {}", lv, seg.size(), count + 1);
    if (seg[0] != 0) return fmt::format("sparsity level {}: segments start at {}, not 0", lv, seg[0]);
    for (std::size_t j = 1; j < seg.size(); ++j)
      if (seg[j] < seg[j - 1]) return fmt::format("sparsity level {}: segments decrease at {}", lv, j);
    if (static_cast<u64>(seg.back()) != idx.size())
      return fmt::format("sparsity level {}: last segment is {}, but there are {} indices", lv, seg.back(),
                         idx.size());
    for (std::size_t j = 0; j < idx.size(); ++j)
      if (idx[j] < 0 || static_cast<u64>(idx[j]) >= extent)
        return fmt::format("sparsity level {}: index {} out of range at {}", lv, idx[j], j);
    p.segments = seg.data();
    p.indices = idx.data();
    count = idx.size();
    if (count > kMaxSparseStoredCount) return std::string("sparsity: stored element count overflows");
  }
  plan.stored_count = count;
  plan.dense_count = dense_count;
  return std::nullopt;
}

// Copies one element of E bytes (E == 0: element_size bytes, known only at run time).
template <std::size_t E>
LITELENS_ALWAYS_INLINE void copy_element(u8* dst, const u8* src, std::size_t element_size) {
  if constexpr (E == 0) {
    std::memcpy(dst, src, element_size);
  } else {
    std::memcpy(dst, src, E);
  }
}

// Copies `count` consecutive stored elements to the dense offsets base, base + w, base + 2w...
template <std::size_t E>
LITELENS_ALWAYS_INLINE void copy_run(u8* out, u64 base, u64 w, const u8* src, u64 count, std::size_t es) {
  if (w == 1 && count * es > 32) {
    std::memcpy(out + base * es, src, count * es);
    return;
  }
  for (u64 i = 0; i < count; ++i) copy_element<E>(out + (base + i * w) * es, src + i * es, es);
}

// The format's densify walk (levels in traversal order), as an explicit stack of ranges: level lv
// holds positions [pos, end) and the flat dense offset `base` of its parent. The dense
// position of a leaf is the sum over levels of index * weight, which is exactly
// row_major_flat(orig) because every blocked dimension is split into (block, offset) pairs.
// The innermost level is copied in one loop; when it is dense (block sparsity), the level
// above it is handled in the same loop, so a stored block costs no stack traffic.
template <std::size_t E>
void densify_walk(const SparsityPlan& plan, const u8* stored, std::size_t element_size, u8* out) {
  const std::size_t es = E == 0 ? element_size : E;
  const std::vector<LevelPlan>& levels = plan.levels;
  const std::size_t last = levels.size() - 1;
  const LevelPlan& leaf = levels[last];

  struct Frame {
    u64 begin, pos, end, base;
  };
  std::vector<Frame> stack(levels.size());
  auto enter = [&](std::size_t lv, u64 parent, u64 base) {
    const LevelPlan& p = levels[lv];
    u64 b, e;
    if (p.sparse) {
      b = static_cast<u64>(p.segments[parent]);
      e = static_cast<u64>(p.segments[parent + 1]);
    } else {
      b = parent * p.size;
      e = b + p.size;
    }
    stack[lv] = Frame{b, b, e, base};
  };

  u64 next = 0;  // stored value cursor
  enter(0, 0, 0);
  std::size_t lv = 0;
  for (;;) {
    Frame& f = stack[lv];
    const LevelPlan& p = levels[lv];
    if (lv == last) {
      if (p.sparse) {
        for (u64 pos = f.pos; pos < f.end; ++pos, ++next)
          copy_element<E>(out + (f.base + static_cast<u64>(p.indices[pos]) * p.weight) * es, stored + next * es, es);
      } else {
        copy_run<E>(out, f.base, p.weight, stored + next * es, p.size, es);
        next += p.size;
      }
      f.pos = f.end;
    } else if (lv + 1 == last && !leaf.sparse) {
      for (u64 pos = f.pos; pos < f.end; ++pos) {
        const u64 index = p.sparse ? static_cast<u64>(p.indices[pos]) : pos - f.begin;
        copy_run<E>(out, f.base + index * p.weight, leaf.weight, stored + next * es, leaf.size, es);
        next += leaf.size;
      }
      f.pos = f.end;
    }
    if (f.pos == f.end) {
      if (lv == 0) break;
      --lv;
      ++stack[lv].pos;
      continue;
    }
    const u64 index = p.sparse ? static_cast<u64>(p.indices[f.pos]) : f.pos - f.begin;
    enter(lv + 1, f.pos, f.base + index * p.weight);
    ++lv;
  }
}

}  // namespace

// ---- public: floats ----------------------------------------------------------------------

float float16_bits_to_float(std::uint16_t bits) noexcept { return std::bit_cast<float>(f16_to_f32_bits(bits)); }

std::uint16_t float_to_float16_bits(float value) noexcept { return f32_to_f16_bits(value); }

void widen_float16(std::span<const std::byte> src, std::span<float> dst) {
  require_source(src.size(), 2 * dst.size(), "widen_float16");
  const u8* s = bytes_of(src);
  float* d = dst.data();
  std::size_t done = 0;
#ifdef LITELENS_F16C
  if (cpu_has_f16c()) done = widen_f16_f16c(s, d, dst.size());
#endif
  for_blocks(dst.size() - done, [&](std::size_t i, auto len) { f16_kernel(s + 2 * (done + i), d + done + i, len); });
}

void widen_bfloat16(std::span<const std::byte> src, std::span<float> dst) {
  require_source(src.size(), 2 * dst.size(), "widen_bfloat16");
  const u8* s = bytes_of(src);
  float* d = dst.data();
  for_blocks(dst.size(), [&](std::size_t i, auto len) { bf16_kernel(s + 2 * i, d + i, len); });
}

void widen_float8_e4m3fn(std::span<const std::byte> src, std::span<float> dst) {
  require_source(src.size(), dst.size(), "widen_float8_e4m3fn");
  const u8* s = bytes_of(src);
  float* d = dst.data();
  for_blocks(dst.size(), [&](std::size_t i, auto len) { table_kernel(s + i, d + i, kE4M3FN.data(), len); });
}

void widen_float8_e5m2(std::span<const std::byte> src, std::span<float> dst) {
  require_source(src.size(), dst.size(), "widen_float8_e5m2");
  const u8* s = bytes_of(src);
  float* d = dst.data();
  for_blocks(dst.size(), [&](std::size_t i, auto len) { table_kernel(s + i, d + i, kE5M2.data(), len); });
}

void narrow_to_float16(std::span<const float> src, std::span<std::byte> dst) {
  require_dest(dst.size(), 2 * src.size(), "narrow_to_float16");
  u8* d = bytes_of(dst);
  std::size_t done = 0;
#ifdef LITELENS_F16C
  if (cpu_has_f16c()) done = narrow_f16_f16c(src.data(), d, src.size());
#endif
  for (std::size_t i = done; i < src.size(); ++i) {
    const u16 h = f32_to_f16_bits(src[i]);
    std::memcpy(d + 2 * i, &h, 2);
  }
}

void narrow_to_bfloat16(std::span<const float> src, std::span<std::byte> dst) {
  require_dest(dst.size(), 2 * src.size(), "narrow_to_bfloat16");
  u8* d = bytes_of(dst);
  for (std::size_t i = 0; i < src.size(); ++i) {
    const u16 h = f32_to_bf16_bits(src[i]);
    std::memcpy(d + 2 * i, &h, 2);
  }
}

// ---- public: sub-byte integers -----------------------------------------------------------

void unpack_int4(std::span<const std::byte> src, std::span<std::int8_t> dst) {
  unpack4<true>(src, reinterpret_cast<u8*>(dst.data()), dst.size(), "unpack_int4");
}

void unpack_uint4(std::span<const std::byte> src, std::span<std::uint8_t> dst) {
  unpack4<false>(src, dst.data(), dst.size(), "unpack_uint4");
}

void unpack_int2(std::span<const std::byte> src, std::span<std::int8_t> dst) {
  const std::size_t n = dst.size();
  require_source(src.size(), packed_byte_count(n, 2), "unpack_int2");
  const u8* s = bytes_of(src);
  u8* d = reinterpret_cast<u8*>(dst.data());
  const std::size_t full = n / 4;
  for_blocks(full, [&](std::size_t i, auto len) { unpack2_kernel(s + i, d + 4 * i, len); });
  for (std::size_t i = 4 * full; i < n; ++i) d[i] = sign_extend<2>(static_cast<u32>(s[full]) >> (2 * (i % 4)));
}

void pack_int4(std::span<const std::int8_t> src, std::span<std::byte> dst) { pack4(src, dst, "pack_int4"); }

void pack_uint4(std::span<const std::uint8_t> src, std::span<std::byte> dst) { pack4(src, dst, "pack_uint4"); }

void pack_int2(std::span<const std::int8_t> src, std::span<std::byte> dst) {
  const std::size_t n = src.size();
  require_dest(dst.size(), packed_byte_count(n, 2), "pack_int2");
  const u8* s = reinterpret_cast<const u8*>(src.data());
  u8* d = bytes_of(dst);
  const std::size_t full = n / 4;
  for_blocks(full, [&](std::size_t i, auto len) { pack2_kernel(s + 4 * i, d + i, len); });
  if (n % 4 != 0) {
    u32 b = 0;
    for (std::size_t i = 4 * full; i < n; ++i) b |= (s[i] & 3u) << (2 * (i % 4));
    d[full] = static_cast<u8>(b);
  }
}

// ---- public: sparsity --------------------------------------------------------------------

std::optional<std::string> check_sparsity(const SparsitySpec& spec, std::span<const std::int32_t> dense_shape,
                                          std::uint64_t& stored_count) {
  stored_count = 0;
  SparsityPlan plan;
  if (auto error = analyze_sparsity(spec, dense_shape, plan)) return error;
  stored_count = plan.stored_count;
  return std::nullopt;
}

void densify(const SparsitySpec& spec, std::span<const std::int32_t> dense_shape,
             std::span<const std::byte> stored, std::size_t element_size, std::span<std::byte> dense_out) {
  if (element_size == 0) throw_arg("densify: element size is 0");
  SparsityPlan plan;
  if (auto error = analyze_sparsity(spec, dense_shape, plan)) throw_arg("densify: " + *error);
  u64 out_bytes = 0;
  if (mul_overflows(plan.dense_count, element_size, out_bytes) || out_bytes != dense_out.size())
    throw_arg(fmt::format("densify: output has {} bytes, expected {} elements of {} bytes", dense_out.size(),
                          plan.dense_count, element_size));
  u64 in_bytes = 0;
  if (mul_overflows(plan.stored_count, element_size, in_bytes) || stored.size() < in_bytes)
    throw_arg(fmt::format("densify: {} stored bytes, expected {} values of {} bytes", stored.size(),
                          plan.stored_count, element_size));
  if (!dense_out.empty()) std::memset(dense_out.data(), 0, dense_out.size());
  if (plan.stored_count == 0) return;

  const u8* s = bytes_of(stored);
  u8* d = bytes_of(dense_out);
  if (plan.levels.empty()) {  // rank 0: one value
    std::memcpy(d, s, element_size);
    return;
  }
  switch (element_size) {
    case 1: densify_walk<1>(plan, s, 1, d); break;
    case 2: densify_walk<2>(plan, s, 2, d); break;
    case 4: densify_walk<4>(plan, s, 4, d); break;
    case 8: densify_walk<8>(plan, s, 8, d); break;
    default: densify_walk<0>(plan, s, element_size, d); break;
  }
}

// ---- public: dequantization --------------------------------------------------------------

void dequantize(std::span<const std::int8_t> q, std::span<const std::int32_t> shape, const AffineQuant& quant,
                std::span<float> out) {
  dequantize_impl(q, shape, quant, out);
}
void dequantize(std::span<const std::uint8_t> q, std::span<const std::int32_t> shape, const AffineQuant& quant,
                std::span<float> out) {
  dequantize_impl(q, shape, quant, out);
}
void dequantize(std::span<const std::int16_t> q, std::span<const std::int32_t> shape, const AffineQuant& quant,
                std::span<float> out) {
  dequantize_impl(q, shape, quant, out);
}
void dequantize(std::span<const std::int32_t> q, std::span<const std::int32_t> shape, const AffineQuant& quant,
                std::span<float> out) {
  dequantize_impl(q, shape, quant, out);
}
void dequantize(std::span<const std::int64_t> q, std::span<const std::int32_t> shape, const AffineQuant& quant,
                std::span<float> out) {
  dequantize_impl(q, shape, quant, out);
}

void dequantize_blockwise(std::span<const std::int8_t> q, std::span<const std::int32_t> shape,
                          std::span<const float> scales, std::span<const std::int64_t> zero_points,
                          std::int32_t block_size, std::span<float> out) {
  if (shape.size() != 2) throw_arg(fmt::format("dequantize_blockwise: rank {}, expected 2", shape.size()));
  const u64 count = element_count_or_throw(shape, "dequantize_blockwise");
  if (block_size <= 0) throw_arg(fmt::format("dequantize_blockwise: block size {}", block_size));
  const auto rows = static_cast<std::size_t>(shape[0]);
  const auto cols = static_cast<std::size_t>(shape[1]);
  const auto bs = static_cast<std::size_t>(block_size);
  if (cols % bs != 0)
    throw_arg(fmt::format("dequantize_blockwise: {} columns not divisible by block size {}", cols, bs));
  if (q.size() != count || out.size() != count)
    throw_arg(fmt::format("dequantize_blockwise: {} values and {} outputs for {} elements", q.size(), out.size(),
                          count));
  const std::size_t blocks_per_row = cols / bs;
  const std::size_t nscales = rows * blocks_per_row;  // <= count, no overflow
  if (scales.size() != nscales)
    throw_arg(fmt::format("dequantize_blockwise: {} scales, expected {}", scales.size(), nscales));
  if (!zero_points.empty() && zero_points.size() != nscales)
    throw_arg(fmt::format("dequantize_blockwise: {} zero points, expected 0 or {}", zero_points.size(), nscales));
  for (std::size_t b = 0; b < nscales; ++b) {
    const std::int64_t z = zero_points.empty() ? 0 : zero_points[b];
    dequant_run(q.data() + b * bs, out.data() + b * bs, bs, scales[b], z);
  }
}

// ---- public: strings ---------------------------------------------------------------------

std::optional<std::string> check_string_buffer(std::span<const std::byte> buf, std::uint64_t expected_count) {
  const std::size_t len = buf.size();
  if (len < 4) return fmt::format("string buffer: {} bytes, too short for the count", len);
  if (len > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
    return fmt::format("string buffer: {} bytes, more than int32 offsets can address", len);
  const u8* p = bytes_of(buf);
  const std::int32_t count = load_i32(p);
  if (count < 0) return fmt::format("string buffer: negative string count {}", count);
  const u64 header = 4 * (static_cast<u64>(count) + 2);
  if (header > len)
    return fmt::format("string buffer: {} strings need a {}-byte header, buffer has {} bytes", count, header, len);
  if (static_cast<u64>(count) != expected_count)
    return fmt::format("string buffer: {} strings, expected {}", count, expected_count);
  const std::int32_t first = load_i32(p + 4);
  if (static_cast<u64>(first) != header || first < 0)
    return fmt::format("string buffer: first offset {}, expected {}", first, header);
  std::int32_t prev = first;
  for (std::size_t i = 1; i <= static_cast<std::size_t>(count); ++i) {
    const std::int32_t off = load_i32(p + 4 + 4 * i);
    if (off < prev) return fmt::format("string buffer: offsets decrease at {}", i);
    prev = off;
  }
  if (static_cast<u64>(prev) != len)
    return fmt::format("string buffer: last offset {}, expected the buffer length {}", prev, len);
  return std::nullopt;
}

std::vector<std::string_view> split_strings(std::span<const std::byte> buf) {
  if (buf.size() < 4) throw_arg(fmt::format("split_strings: string buffer: {} bytes, too short for the count",
                                            buf.size()));
  const u8* p = bytes_of(buf);
  const std::int32_t count = load_i32(p);
  if (auto error = check_string_buffer(buf, static_cast<u64>(std::max<std::int32_t>(count, 0))))
    throw_arg("split_strings: " + *error);
  std::vector<std::string_view> out;
  out.reserve(static_cast<std::size_t>(count));
  const char* chars = reinterpret_cast<const char*>(p);
  for (std::size_t i = 0; i < static_cast<std::size_t>(count); ++i) {
    const auto begin = static_cast<std::size_t>(load_i32(p + 4 + 4 * i));
    const auto end = static_cast<std::size_t>(load_i32(p + 8 + 4 * i));
    out.emplace_back(chars + begin, end - begin);
  }
  return out;
}

}  // namespace litelens
