// Tests for litelens/decode.h. Reference values come from independent formulas (ldexp,
// double arithmetic, brute-force nearest search), never from the code under test.
#include "litelens/decode.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using litelens::AffineQuant;
using litelens::SparseLevel;
using litelens::SparsitySpec;

std::vector<std::byte> bytes(std::initializer_list<int> values) {
  std::vector<std::byte> out;
  for (int v : values) out.push_back(static_cast<std::byte>(v));
  return out;
}

template <class T>
std::vector<std::byte> as_bytes_vec(const std::vector<T>& v) {
  std::vector<std::byte> out(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

std::uint32_t bits_of(float f) { return std::bit_cast<std::uint32_t>(f); }

// Value of a binary floating-point pattern with the given field widths, via ldexp.
double reference_minifloat(std::uint32_t pattern, int exp_bits, int man_bits, int bias, bool ieee_specials) {
  const std::uint32_t sign = (pattern >> (exp_bits + man_bits)) & 1u;
  const std::uint32_t e = (pattern >> man_bits) & ((1u << exp_bits) - 1u);
  const std::uint32_t m = pattern & ((1u << man_bits) - 1u);
  const double s = sign ? -1.0 : 1.0;
  const std::uint32_t emax = (1u << exp_bits) - 1u;
  if (ieee_specials && e == emax) return m == 0 ? s * INFINITY : std::copysign(NAN, s);
  if (e == 0) return s * std::ldexp(static_cast<double>(m), 1 - bias - man_bits);
  return s * std::ldexp(static_cast<double>((1u << man_bits) + m), static_cast<int>(e) - bias - man_bits);
}

// Compares a result with a reference value: equal bits for numbers (so signed zeros count),
// NaN with the same sign for NaNs.
void expect_same_value(float got, double want, const std::string& what) {
  if (std::isnan(want)) {
    EXPECT_TRUE(std::isnan(got)) << what;
    EXPECT_EQ(std::signbit(got), std::signbit(want)) << what;
  } else {
    EXPECT_EQ(bits_of(got), bits_of(static_cast<float>(want))) << what << " got " << got << " want " << want;
  }
}

// ---- float formats ------------------------------------------------------------------

TEST(decode_test, float16_exhaustive) {
  std::vector<std::uint16_t> patterns(65536);
  for (std::uint32_t i = 0; i < 65536; ++i) patterns[i] = static_cast<std::uint16_t>(i);
  std::vector<float> out(65536);
  litelens::widen_float16(std::as_bytes(std::span(patterns)), out);
  for (std::uint32_t i = 0; i < 65536; ++i) {
    const double want = reference_minifloat(i, 5, 10, 15, true);
    expect_same_value(out[i], want, "float16 pattern " + std::to_string(i));
    EXPECT_EQ(bits_of(litelens::float16_bits_to_float(static_cast<std::uint16_t>(i))), bits_of(out[i]));
    if (std::isnan(want)) {
      // Payload kept, quiet bit set.
      EXPECT_EQ(bits_of(out[i]) & 0x003fe000u, (i & 0x1ffu) << 13) << i;
      EXPECT_NE(bits_of(out[i]) & 0x00400000u, 0u) << i;
    }
  }
}

TEST(decode_test, float16_unaligned_and_odd_lengths) {
  // Source starting at an odd address, lengths around the vector block size.
  std::vector<std::byte> raw(2 * 200 + 1);
  std::mt19937 rng(7);
  for (auto& b : raw) b = static_cast<std::byte>(rng());
  for (std::size_t n : {0u, 1u, 63u, 64u, 65u, 127u, 128u, 129u, 200u}) {
    std::vector<float> out(n);
    litelens::widen_float16(std::span(raw).subspan(1, 2 * n), out);
    for (std::size_t i = 0; i < n; ++i) {
      std::uint16_t h;
      std::memcpy(&h, raw.data() + 1 + 2 * i, 2);
      expect_same_value(out[i], reference_minifloat(h, 5, 10, 15, true), "n=" + std::to_string(n));
    }
  }
}

TEST(decode_test, bfloat16_samples) {
  const std::vector<std::uint16_t> in = {0x3f80, 0xc000, 0x4049, 0x0000, 0x8000, 0x7f80,
                                         0xff80, 0x0001, 0x7f7f, 0x7fc0, 0xffc1, 0x7f81};
  std::vector<float> out(in.size());
  litelens::widen_bfloat16(std::as_bytes(std::span(in)), out);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], 3.140625f);
  EXPECT_EQ(bits_of(out[3]), 0u);
  EXPECT_EQ(bits_of(out[4]), 0x80000000u);
  EXPECT_EQ(out[5], INFINITY);
  EXPECT_EQ(out[6], -INFINITY);
  EXPECT_EQ(out[7], std::ldexp(1.0f, -133));  // float32 subnormal
  EXPECT_EQ(out[8], std::ldexp(255.0f, 120));  // largest finite bfloat16
  for (std::size_t i = 0; i < in.size(); ++i) EXPECT_EQ(bits_of(out[i]), std::uint32_t{in[i]} << 16) << i;
  EXPECT_TRUE(std::isnan(out[9]) && std::isnan(out[10]) && std::isnan(out[11]));
  EXPECT_TRUE(std::signbit(out[10]));
}

TEST(decode_test, float8_e4m3fn_all_patterns) {
  std::vector<std::byte> in(256);
  for (int i = 0; i < 256; ++i) in[i] = static_cast<std::byte>(i);
  std::vector<float> out(256);
  litelens::widen_float8_e4m3fn(in, out);
  for (std::uint32_t i = 0; i < 256; ++i) {
    double want;
    if ((i & 0x7fu) == 0x7fu) {
      want = std::copysign(NAN, (i & 0x80u) ? -1.0 : 1.0);  // the only NaN; no infinities
    } else {
      want = reference_minifloat(i, 4, 3, 7, false);
    }
    expect_same_value(out[i], want, "e4m3fn " + std::to_string(i));
  }
  EXPECT_EQ(out[0x7e], 448.0f);
  EXPECT_EQ(out[0x78], 256.0f);  // exponent 15 is a normal exponent
  EXPECT_EQ(out[0x01], std::ldexp(1.0f, -9));
}

TEST(decode_test, float8_e5m2_all_patterns) {
  std::vector<std::byte> in(256);
  for (int i = 0; i < 256; ++i) in[i] = static_cast<std::byte>(i);
  std::vector<float> out(256);
  litelens::widen_float8_e5m2(in, out);
  for (std::uint32_t i = 0; i < 256; ++i)
    expect_same_value(out[i], reference_minifloat(i, 5, 2, 15, true), "e5m2 " + std::to_string(i));
  EXPECT_EQ(out[0x7b], 57344.0f);
  EXPECT_EQ(out[0x7c], INFINITY);
  EXPECT_EQ(out[0xfc], -INFINITY);
  EXPECT_EQ(out[0x01], std::ldexp(1.0f, -16));
}

std::uint16_t narrow1(float f) {
  std::byte out[2];
  litelens::narrow_to_float16(std::span(&f, 1), out);
  std::uint16_t h;
  std::memcpy(&h, out, 2);
  EXPECT_EQ(h, litelens::float_to_float16_bits(f));
  return h;
}

TEST(decode_test, narrow_float16_rounding_ties) {
  EXPECT_EQ(narrow1(1.0f), 0x3c00);
  EXPECT_EQ(narrow1(1.0f + 0x1p-11f), 0x3c00);        // tie, even is 1.0
  EXPECT_EQ(narrow1(1.0f + 3 * 0x1p-11f), 0x3c02);    // tie, even is mantissa 2
  EXPECT_EQ(narrow1(std::nextafter(1.0f + 0x1p-11f, 2.0f)), 0x3c01);
  EXPECT_EQ(narrow1(65504.0f), 0x7bff);
  EXPECT_EQ(narrow1(65519.996f), 0x7bff);
  EXPECT_EQ(narrow1(65520.0f), 0x7c00);               // tie to the even "65536" = inf
  EXPECT_EQ(narrow1(-1e10f), 0xfc00);
  EXPECT_EQ(narrow1(INFINITY), 0x7c00);
  EXPECT_EQ(narrow1(-INFINITY), 0xfc00);
  EXPECT_EQ(narrow1(-0.0f), 0x8000);
  EXPECT_EQ(narrow1(0x1p-14f), 0x0400);               // smallest normal
  EXPECT_EQ(narrow1(0x1p-24f), 0x0001);               // smallest subnormal
  EXPECT_EQ(narrow1(0x1p-25f), 0x0000);               // tie between 0 and 1 unit
  EXPECT_EQ(narrow1(-0x1p-25f), 0x8000);
  EXPECT_EQ(narrow1(std::nextafter(0x1p-25f, 1.0f)), 0x0001);
  EXPECT_EQ(narrow1(3 * 0x1p-25f), 0x0002);           // tie between 1 and 2 units
  EXPECT_EQ(narrow1(5 * 0x1p-25f), 0x0002);           // tie between 2 and 3 units
  EXPECT_EQ(narrow1(0x1p-14f - 0x1p-25f), 0x0400);    // tie rounds up into the normals
  EXPECT_EQ(narrow1(1e-30f), 0x0000);
  EXPECT_EQ(narrow1(std::numeric_limits<float>::denorm_min()), 0x0000);
  const std::uint16_t nan = narrow1(std::bit_cast<float>(0xffa00000u));  // signalling, negative
  EXPECT_EQ(nan & 0xfe00u, 0xfe00u);
}

// Independent float -> float16: binary search among the finite halves (ordered by their
// bit patterns) for the nearest one, ties to the even pattern.
std::uint16_t reference_narrow(float f) {
  if (std::isnan(f)) return 0x7e00;
  const double a = std::fabs(static_cast<double>(f));
  const std::uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  std::uint32_t lo = 0, hi = 0x7bff;  // largest pattern with value <= a
  if (a >= 65520.0) return sign | 0x7c00;
  while (lo < hi) {
    const std::uint32_t mid = (lo + hi + 1) / 2;
    if (reference_minifloat(mid, 5, 10, 15, true) <= a) lo = mid; else hi = mid - 1;
  }
  const double below = reference_minifloat(lo, 5, 10, 15, true);
  const double above = reference_minifloat(lo + 1, 5, 10, 15, true);  // lo + 1 <= 0x7c00
  std::uint32_t pick = lo;
  if (a - below > above - a || (a - below == above - a && (lo & 1u))) pick = lo + 1;
  return static_cast<std::uint16_t>(sign | pick);
}

TEST(decode_test, narrow_float16_matches_reference) {
  std::mt19937 rng(12345);
  std::vector<float> in;
  // Random bit patterns concentrated on the half range, plus every exact half and midpoint.
  std::uniform_int_distribution<std::uint32_t> exp_in_range(0x30000000u, 0x48000000u);
  for (int i = 0; i < 200000; ++i) in.push_back(std::bit_cast<float>(static_cast<std::uint32_t>(exp_in_range(rng) | (rng() & 0x80000000u))));
  for (int i = 0; i < 20000; ++i) in.push_back(std::bit_cast<float>(static_cast<std::uint32_t>(rng())));
  for (std::uint32_t h = 0; h < 0x7c00; ++h) {
    const double v = reference_minifloat(h, 5, 10, 15, true);
    const double next = reference_minifloat(h + 1, 5, 10, 15, true);
    in.push_back(static_cast<float>(v));
    in.push_back(static_cast<float>((v + next) / 2));  // exact in float32
  }
  std::vector<std::byte> out(2 * in.size());
  litelens::narrow_to_float16(in, out);
  for (std::size_t i = 0; i < in.size(); ++i) {
    std::uint16_t got;
    std::memcpy(&got, out.data() + 2 * i, 2);
    if (std::isnan(in[i])) {
      EXPECT_TRUE((got & 0x7c00u) == 0x7c00u && (got & 0x3ffu) != 0) << i;
      continue;
    }
    ASSERT_EQ(got, reference_narrow(in[i])) << "input bits " << std::hex << bits_of(in[i]);
  }
}

TEST(decode_test, narrow_float16_span_matches_scalar_bit_for_bit) {
  // The span version may use hardware conversions; the scalar one is portable. They must
  // agree on every bit, NaN payloads included, at every position of a vector block.
  std::mt19937 rng(77);
  std::vector<float> in;
  for (int i = 0; i < 300000; ++i) in.push_back(std::bit_cast<float>(static_cast<std::uint32_t>(rng())));
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float f = litelens::float16_bits_to_float(static_cast<std::uint16_t>(h));
    in.push_back(f);
    in.push_back(std::bit_cast<float>(std::bit_cast<std::uint32_t>(f) + 0x1000u));  // exact midpoints
    in.push_back(std::bit_cast<float>(std::bit_cast<std::uint32_t>(f) | 0x7f800001u));  // NaNs
  }
  for (std::size_t offset : {0u, 1u, 3u, 7u}) {
    const std::span<const float> src = std::span(in).subspan(offset);
    std::vector<std::byte> out(2 * src.size());
    litelens::narrow_to_float16(src, out);
    for (std::size_t i = 0; i < src.size(); ++i) {
      std::uint16_t got;
      std::memcpy(&got, out.data() + 2 * i, 2);
      ASSERT_EQ(got, litelens::float_to_float16_bits(src[i])) << "bits " << std::hex << bits_of(src[i]);
    }
  }
}

TEST(decode_test, float16_round_trip_exhaustive) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float f = litelens::float16_bits_to_float(static_cast<std::uint16_t>(h));
    const std::uint16_t back = litelens::float_to_float16_bits(f);
    if (std::isnan(f)) {
      EXPECT_EQ(back & 0xfc00u, h & 0xfc00u) << h;
      EXPECT_EQ(back & 0x1ffu, h & 0x1ffu) << h;  // payload below the quiet bit survives
      EXPECT_NE(back & 0x200u, 0u) << h;
    } else {
      EXPECT_EQ(back, h);
    }
  }
}

TEST(decode_test, narrow_bfloat16) {
  const std::vector<float> in = {1.0f, std::bit_cast<float>(0x3f808000u), std::bit_cast<float>(0x3f818000u),
                                 std::bit_cast<float>(0x3f808001u), std::bit_cast<float>(0x7f7fffffu),
                                 -0.0f, std::bit_cast<float>(0x7f800001u)};
  std::vector<std::uint16_t> out(in.size());
  litelens::narrow_to_bfloat16(in, std::as_writable_bytes(std::span(out)));
  EXPECT_EQ(out[0], 0x3f80);
  EXPECT_EQ(out[1], 0x3f80);  // tie, even
  EXPECT_EQ(out[2], 0x3f82);  // tie, even
  EXPECT_EQ(out[3], 0x3f81);
  EXPECT_EQ(out[4], 0x7f80);  // rounds to infinity
  EXPECT_EQ(out[5], 0x8000);
  EXPECT_EQ(out[6] & 0xffc0u, 0x7fc0u);  // quiet NaN
}

TEST(decode_test, float_size_checks) {
  std::vector<std::byte> src(7);
  std::vector<float> dst(4);
  EXPECT_THROW(litelens::widen_float16(src, dst), std::invalid_argument);
  EXPECT_THROW(litelens::widen_bfloat16(src, dst), std::invalid_argument);
  EXPECT_NO_THROW(litelens::widen_float8_e5m2(src, dst));
  std::vector<std::byte> small(3);
  EXPECT_THROW(litelens::widen_float8_e4m3fn(small, dst), std::invalid_argument);
  EXPECT_THROW(litelens::narrow_to_float16(dst, src), std::invalid_argument);
}

// ---- sub-byte integers --------------------------------------------------------------

TEST(decode_test, int4_spec_example) {
  const std::vector<std::int8_t> values = {2, 1, 4, 3};
  std::vector<std::byte> packed(2);
  litelens::pack_int4(values, packed);
  EXPECT_EQ(packed, bytes({0x12, 0x34}));
  std::vector<std::int8_t> back(4);
  litelens::unpack_int4(packed, back);
  EXPECT_EQ(back, values);
  std::vector<std::int8_t> neg(2);
  litelens::unpack_int4(bytes({0x8f}), neg);
  EXPECT_EQ(neg, (std::vector<std::int8_t>{-1, -8}));
  std::vector<std::uint8_t> unsigned_values(2);
  litelens::unpack_uint4(bytes({0x8f}), unsigned_values);
  EXPECT_EQ(unsigned_values, (std::vector<std::uint8_t>{15, 8}));
}

TEST(decode_test, int2_spec_example) {
  const std::vector<std::int8_t> values = {0, 1, 0, -2};
  std::vector<std::byte> packed(1);
  litelens::pack_int2(values, packed);
  EXPECT_EQ(packed, bytes({0x84}));
  std::vector<std::int8_t> back(4);
  litelens::unpack_int2(packed, back);
  EXPECT_EQ(back, values);
  std::vector<std::int8_t> all(4);
  litelens::unpack_int2(bytes({0xe4}), all);  // pairs 00 01 10 11
  EXPECT_EQ(all, (std::vector<std::int8_t>{0, 1, -2, -1}));
}

TEST(decode_test, subbyte_round_trips_all_lengths) {
  std::mt19937 rng(99);
  for (std::size_t n = 0; n <= 300; ++n) {
    std::vector<std::int8_t> i4(n), i2(n);
    std::vector<std::uint8_t> u4(n);
    for (std::size_t i = 0; i < n; ++i) {
      i4[i] = static_cast<std::int8_t>(static_cast<int>(rng() % 16) - 8);
      u4[i] = static_cast<std::uint8_t>(rng() % 16);
      i2[i] = static_cast<std::int8_t>(static_cast<int>(rng() % 4) - 2);
    }
    // Destinations one byte larger than needed: the extra byte must stay untouched.
    std::vector<std::byte> p4(litelens::packed_byte_count(n, 4) + 1, std::byte{0xaa});
    std::vector<std::byte> q4(p4.size(), std::byte{0xaa});
    std::vector<std::byte> p2(litelens::packed_byte_count(n, 2) + 1, std::byte{0xaa});
    litelens::pack_int4(i4, p4);
    litelens::pack_uint4(u4, q4);
    litelens::pack_int2(i2, p2);
    EXPECT_EQ(p4.back(), std::byte{0xaa});
    EXPECT_EQ(q4.back(), std::byte{0xaa});
    EXPECT_EQ(p2.back(), std::byte{0xaa});
    // Padding bits of a partial last byte are zero.
    if (n % 2) {
      EXPECT_EQ(static_cast<int>(p4[n / 2]) & 0xf0, 0) << n;
      EXPECT_EQ(static_cast<int>(q4[n / 2]) & 0xf0, 0) << n;
    }
    if (n % 4) {
      EXPECT_EQ(static_cast<int>(p2[n / 4]) >> (2 * (n % 4)), 0) << n;
    }
    // Bit layout against a direct computation.
    for (std::size_t i = 0; i < n; ++i) {
      EXPECT_EQ((static_cast<int>(p4[i / 2]) >> (4 * (i % 2))) & 15, i4[i] & 15);
      EXPECT_EQ((static_cast<int>(p2[i / 4]) >> (2 * (i % 4))) & 3, i2[i] & 3);
    }
    std::vector<std::int8_t> b4(n), b2(n);
    std::vector<std::uint8_t> c4(n);
    litelens::unpack_int4(p4, b4);
    litelens::unpack_uint4(q4, c4);
    litelens::unpack_int2(p2, b2);
    ASSERT_EQ(b4, i4) << n;
    ASSERT_EQ(c4, u4) << n;
    ASSERT_EQ(b2, i2) << n;
  }
}

TEST(decode_test, subbyte_size_checks) {
  std::vector<std::int8_t> five(5);
  std::vector<std::uint8_t> five_u(5);
  std::vector<std::byte> two(2), one(1);
  EXPECT_THROW(litelens::unpack_int4(two, five), std::invalid_argument);
  EXPECT_THROW(litelens::unpack_uint4(two, five_u), std::invalid_argument);
  EXPECT_THROW(litelens::unpack_int2(one, five), std::invalid_argument);
  EXPECT_THROW(litelens::pack_int4(five, two), std::invalid_argument);
  EXPECT_THROW(litelens::pack_int2(five, one), std::invalid_argument);
  EXPECT_EQ(litelens::packed_byte_count(5, 4), 3u);
  EXPECT_EQ(litelens::packed_byte_count(5, 2), 2u);
  EXPECT_EQ(litelens::packed_byte_count(8, 2), 2u);
}

// ---- sparsity -----------------------------------------------------------------------

SparseLevel dense(std::int32_t size) { return SparseLevel{false, size, {}, {}}; }
SparseLevel csr(std::vector<std::int32_t> segments, std::vector<std::int32_t> indices) {
  return SparseLevel{true, 0, std::move(segments), std::move(indices)};
}

// The block-sparse example worked by hand in include/litelens/decode.h.
SparsitySpec worked_example() {
  return SparsitySpec{{0, 1, 2, 3}, {0, 1}, {dense(2), csr({0, 2, 3}, {0, 1, 1}), dense(2), dense(2)}};
}

template <class T>
std::vector<T> densify_as(const SparsitySpec& spec, std::vector<std::int32_t> shape, const std::vector<T>& stored) {
  std::size_t total = 1;
  for (auto d : shape) total *= static_cast<std::size_t>(d);
  std::vector<T> out(total, T{99});  // densify must zero-fill
  const auto in = as_bytes_vec(stored);
  litelens::densify(spec, shape, in, sizeof(T), std::as_writable_bytes(std::span(out)));
  return out;
}

TEST(decode_test, densify_worked_example) {
  const std::vector<std::int32_t> shape = {4, 4};
  std::uint64_t count = 0;
  ASSERT_EQ(litelens::check_sparsity(worked_example(), shape, count), std::nullopt);
  EXPECT_EQ(count, 12u);
  const std::vector<float> stored = {1, 0, 0, 4, 2, 3, 0, 0, 5, 0, 0, 6};
  const std::vector<float> want = {1, 0, 2, 3, 0, 4, 0, 0, 0, 0, 5, 0, 0, 0, 0, 6};
  EXPECT_EQ(densify_as(worked_example(), shape, stored), want);
  // Same walk for other element widths, including a size without a fast path.
  const std::vector<std::int8_t> stored8 = {1, 0, 0, 4, 2, 3, 0, 0, 5, 0, 0, 6};
  const std::vector<std::int8_t> want8 = {1, 0, 2, 3, 0, 4, 0, 0, 0, 0, 5, 0, 0, 0, 0, 6};
  EXPECT_EQ(densify_as(worked_example(), shape, stored8), want8);
  struct Three {
    std::uint8_t a, b, c;
    bool operator==(const Three&) const = default;
  };
  std::vector<Three> stored3;
  for (float v : stored) stored3.push_back({static_cast<std::uint8_t>(v), 7, 8});
  std::vector<Three> out3(16, Three{1, 1, 1});
  litelens::densify(worked_example(), shape, as_bytes_vec(stored3), 3, std::as_writable_bytes(std::span(out3)));
  for (std::size_t i = 0; i < 16; ++i) {
    const Three expected = want[i] != 0 ? Three{static_cast<std::uint8_t>(want[i]), 7, 8} : Three{0, 0, 0};
    // Zeros inside a stored block are stored values too (bytes {0,7,8}).
    if (want[i] == 0 && (i == 1 || i == 4 || i == 6 || i == 7 || i == 11 || i == 14)) {
      EXPECT_EQ(out3[i], (Three{0, 7, 8})) << i;
    } else {
      EXPECT_EQ(out3[i], expected) << i;
    }
  }
}

TEST(decode_test, densify_csr_two_levels) {
  // 3 x 5 matrix:  [0 7 0 0 8]
  //                [0 0 0 0 0]
  //                [9 0 0 6 0]
  const SparsitySpec spec{{0, 1}, {}, {dense(3), csr({0, 2, 2, 4}, {1, 4, 0, 3})}};
  const std::vector<std::int32_t> shape = {3, 5};
  std::uint64_t count = 0;
  ASSERT_EQ(litelens::check_sparsity(spec, shape, count), std::nullopt);
  EXPECT_EQ(count, 4u);
  EXPECT_EQ(densify_as<std::int16_t>(spec, shape, {7, 8, 9, 6}),
            (std::vector<std::int16_t>{0, 7, 0, 0, 8, 0, 0, 0, 0, 0, 9, 0, 0, 6, 0}));
  // Column-major traversal (CSC) of the same matrix.
  const SparsitySpec csc{{1, 0}, {}, {dense(5), csr({0, 1, 2, 2, 3, 4}, {2, 0, 2, 0})}};
  ASSERT_EQ(litelens::check_sparsity(csc, shape, count), std::nullopt);
  EXPECT_EQ(densify_as<std::int16_t>(csc, shape, {9, 7, 6, 8}),
            (std::vector<std::int16_t>{0, 7, 0, 0, 8, 0, 0, 0, 0, 0, 9, 0, 0, 6, 0}));
}

TEST(decode_test, densify_block_sparse_1x4) {
  // 2 x 8 weight with 1x4 blocks (the FULLY_CONNECTED format: DENSE, CSR, DENSE(4)).
  // Row 0 stores block 1, row 1 stores blocks 0 and 1.
  const SparsitySpec spec{{0, 1, 2}, {1}, {dense(2), csr({0, 1, 3}, {1, 0, 1}), dense(4)}};
  const std::vector<std::int32_t> shape = {2, 8};
  std::uint64_t count = 0;
  ASSERT_EQ(litelens::check_sparsity(spec, shape, count), std::nullopt);
  EXPECT_EQ(count, 12u);
  const std::vector<std::int32_t> stored = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  EXPECT_EQ(densify_as(spec, shape, stored),
            (std::vector<std::int32_t>{0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
}

TEST(decode_test, densify_block_dims_traversed_in_other_order) {
  // 4 x 4 with 2x2 blocks, blocks stored column-major inside (traversal [0,1,3,2]).
  const SparsitySpec spec{{0, 1, 3, 2}, {0, 1}, {dense(2), dense(2), dense(2), dense(2)}};
  const std::vector<std::int32_t> shape = {4, 4};
  std::vector<std::int32_t> stored(16);
  for (int i = 0; i < 16; ++i) stored[i] = i + 1;
  // Block (br, bc), inner order (c, r): stored index = ((br*2 + bc)*2 + c)*2 + r.
  std::vector<std::int32_t> want(16);
  for (int br = 0; br < 2; ++br)
    for (int bc = 0; bc < 2; ++bc)
      for (int c = 0; c < 2; ++c)
        for (int r = 0; r < 2; ++r) want[(br * 2 + r) * 4 + bc * 2 + c] = ((br * 2 + bc) * 2 + c) * 2 + r + 1;
  EXPECT_EQ(densify_as(spec, shape, stored), want);
}

TEST(decode_test, densify_sparse_innermost_and_empty) {
  // Rank 3 with a sparse last level and an entirely empty slice.
  const SparsitySpec spec{{0, 1, 2}, {}, {dense(2), dense(2), csr({0, 1, 1, 1, 3}, {2, 0, 1})}};
  const std::vector<std::int32_t> shape = {2, 2, 3};
  EXPECT_EQ(densify_as<std::int8_t>(spec, shape, {5, 6, 7}),
            (std::vector<std::int8_t>{0, 0, 5, 0, 0, 0, 0, 0, 0, 6, 7, 0}));
  // No stored values at all.
  const SparsitySpec none{{0, 1}, {}, {dense(2), csr({0, 0, 0}, {})}};
  EXPECT_EQ(densify_as<std::int8_t>(none, {2, 2}, {}), (std::vector<std::int8_t>(4, 0)));
}

TEST(decode_test, densify_argument_checks) {
  const std::vector<std::int32_t> shape = {4, 4};
  std::vector<std::byte> stored(12 * 4), out(16 * 4);
  EXPECT_NO_THROW(litelens::densify(worked_example(), shape, stored, 4, out));
  std::vector<std::byte> short_stored(11 * 4), short_out(15 * 4);
  EXPECT_THROW(litelens::densify(worked_example(), shape, short_stored, 4, out), std::invalid_argument);
  EXPECT_THROW(litelens::densify(worked_example(), shape, stored, 4, short_out), std::invalid_argument);
  EXPECT_THROW(litelens::densify(worked_example(), shape, stored, 0, out), std::invalid_argument);
  SparsitySpec bad = worked_example();
  bad.levels[1].indices[2] = 2;
  EXPECT_THROW(litelens::densify(bad, shape, stored, 4, out), std::invalid_argument);
}

std::string sparsity_error(const SparsitySpec& spec, std::vector<std::int32_t> shape) {
  std::uint64_t count = 77;
  const auto error = litelens::check_sparsity(spec, shape, count);
  EXPECT_EQ(count, 0u);
  return error.value_or("<accepted>");
}

TEST(decode_test, check_sparsity_rejects_malformed) {
  const std::vector<std::int32_t> shape = {4, 4};
  SparsitySpec s;

  s = worked_example();
  s.levels[1].segments = {0, 3, 2};
  s.levels[1].indices = {0, 1};
  EXPECT_EQ(sparsity_error(s, shape), "sparsity level 1: segments decrease at 2");

  s = worked_example();
  s.levels[1].indices = {0, 2, 1};
  EXPECT_EQ(sparsity_error(s, shape), "sparsity level 1: index 2 out of range at 1");

  s = worked_example();
  s.levels[1].indices = {0, -1, 1};
  EXPECT_EQ(sparsity_error(s, shape), "sparsity level 1: index -1 out of range at 1");

  s = worked_example();
  s.levels[1].segments = {0, 2, 3, 3};  // one segment too many
  EXPECT_EQ(sparsity_error(s, shape), "sparsity level 1: 4 segments, expected 3");

  s = worked_example();
  s.levels[1].segments = {0, 2, 4};  // last segment != number of indices
  EXPECT_EQ(sparsity_error(s, shape), "sparsity level 1: last segment is 4, but there are 3 indices");

  s = worked_example();
  s.levels[1].segments = {1, 2, 3};
  EXPECT_EQ(sparsity_error(s, shape), "sparsity level 1: segments start at 1, not 0");

  s = worked_example();
  s.traversal_order = {0, 0, 2, 3};
  EXPECT_EQ(sparsity_error(s, shape), "sparsity: traversal_order repeats 0");

  s = worked_example();
  s.traversal_order = {0, 2, 1, 3};  // a block dim among the first n
  EXPECT_EQ(sparsity_error(s, shape), "sparsity: traversal_order[1] = 2 is not in [0, 2)");

  s = worked_example();
  s.traversal_order = {0, 1, 2, 4};
  EXPECT_EQ(sparsity_error(s, shape), "sparsity: traversal_order[3] = 4 is not in [2, 4)");

  s = worked_example();
  s.block_map = {0};
  EXPECT_EQ(sparsity_error(s, shape), "sparsity: block_map has 1 entries, expected 2");

  s = worked_example();
  s.block_map = {0, 2};
  EXPECT_EQ(sparsity_error(s, shape), "sparsity: block_map[1] = 2 is not in [0, 2)");

  s = worked_example();
  s.block_map = {1, 1};
  EXPECT_EQ(sparsity_error(s, shape), "sparsity: block_map maps two block dims to dim 1");

  s = worked_example();
  s.levels[0].dense_size = 4;  // the blocked extent is 4 / 2
  EXPECT_EQ(sparsity_error(s, shape), "sparsity level 0: dense_size 4, expected 2");

  s = worked_example();
  s.levels[3].dense_size = 3;  // block size not dividing 4
  EXPECT_EQ(sparsity_error(s, shape), "sparsity: dim 1 (4) is not divisible by block size 3");

  s = worked_example();
  s.levels[2].dense_size = 0;
  EXPECT_EQ(sparsity_error(s, shape), "sparsity: block dim 2 has size 0");

  s = worked_example();
  s.levels.pop_back();
  EXPECT_EQ(sparsity_error(s, shape), "sparsity: 3 dim_metadata entries, expected 4");

  s = worked_example();
  EXPECT_EQ(sparsity_error(s, {4, 4, 4, 4, 4}), "sparsity: traversal_order has 4 entries, fewer than rank 5");
  EXPECT_EQ(sparsity_error(s, {4, -4}), "sparsity: dimension 1 is negative (-4)");

  // Dense sizes whose product overflows 64 bits (and the dense count as well).
  const std::int32_t big = std::numeric_limits<std::int32_t>::max();
  SparsitySpec huge{{0, 1, 2}, {}, {dense(big), dense(big), dense(big)}};
  EXPECT_EQ(sparsity_error(huge, {big, big, big}), "sparsity: dense element count overflows");
  // Dense count fits, but the stored count exceeds the cap.
  SparsitySpec large{{0, 1, 2}, {}, {dense(1 << 20), dense(1 << 20), dense(1 << 20)}};
  EXPECT_EQ(sparsity_error(large, {1 << 20, 1 << 20, 1 << 20}), "sparsity: stored element count overflows");
  // A hostile count reaching a sparse level: rejected without allocating or iterating.
  SparsitySpec hostile{{0, 1, 2}, {}, {dense(1 << 20), dense(1 << 20), csr({0}, {})}};
  EXPECT_EQ(sparsity_error(hostile, {1 << 20, 1 << 20, 5}), "sparsity level 2: 1 segments, expected 1099511627777");
}

TEST(decode_test, check_sparsity_counts_and_edge_cases) {
  std::uint64_t count = 0;
  // Fully dense description: the stored count is the element count.
  const SparsitySpec all_dense{{1, 0}, {}, {dense(3), dense(2)}};
  EXPECT_EQ(litelens::check_sparsity(all_dense, std::vector<std::int32_t>{2, 3}, count), std::nullopt);
  EXPECT_EQ(count, 6u);
  EXPECT_EQ(densify_as<std::int8_t>(all_dense, {2, 3}, {1, 2, 3, 4, 5, 6}),
            (std::vector<std::int8_t>{1, 3, 5, 2, 4, 6}));
  // A zero-sized dimension.
  const SparsitySpec empty{{0, 1}, {}, {dense(0), csr({0}, {})}};
  EXPECT_EQ(litelens::check_sparsity(empty, std::vector<std::int32_t>{0, 5}, count), std::nullopt);
  EXPECT_EQ(count, 0u);
  // Rank 0: a single stored value.
  EXPECT_EQ(litelens::check_sparsity(SparsitySpec{}, std::span<const std::int32_t>{}, count), std::nullopt);
  EXPECT_EQ(count, 1u);
  EXPECT_EQ(densify_as<std::int32_t>(SparsitySpec{}, {}, {42}), (std::vector<std::int32_t>{42}));
}

// A recursive densify written directly from the format's definition (level by level), used
// as an independent reference. Only called on specs that check_sparsity accepted.
struct ReferenceDensify {
  const SparsitySpec& spec;
  const std::vector<std::int32_t>& shape;
  const std::vector<std::int32_t>& values;
  std::vector<std::int32_t> out;
  std::vector<std::int32_t> idx;
  std::size_t next = 0;

  std::vector<std::int32_t> run() {
    std::size_t total = 1;
    for (auto d : shape) total *= static_cast<std::size_t>(d);
    out.assign(total, 0);
    idx.assign(spec.traversal_order.size(), 0);
    visit(0, 0);
    return out;
  }
  void visit(std::size_t level, std::size_t parent) {
    const std::size_t n = shape.size(), total_levels = spec.traversal_order.size();
    if (level == total_levels) {
      std::vector<std::int64_t> orig(n, 0);
      for (std::size_t lv = 0; lv < n; ++lv) orig[spec.traversal_order[lv]] = idx[lv];
      for (std::size_t lv = n; lv < total_levels; ++lv) {
        const std::size_t j = spec.traversal_order[lv] - n;
        const std::size_t d = spec.block_map[j];
        std::int64_t blk = 0;
        for (std::size_t l2 = 0; l2 < total_levels; ++l2)
          if (static_cast<std::size_t>(spec.traversal_order[l2]) == n + j) blk = spec.levels[l2].dense_size;
        orig[d] = orig[d] * blk + idx[lv];
      }
      std::int64_t flat = 0;
      for (std::size_t d = 0; d < n; ++d) flat = flat * shape[d] + orig[d];
      out.at(static_cast<std::size_t>(flat)) = values.at(next++);
      return;
    }
    const SparseLevel& m = spec.levels[level];
    if (!m.is_sparse) {
      for (std::int32_t i = 0; i < m.dense_size; ++i) {
        idx[level] = i;
        visit(level + 1, parent * static_cast<std::size_t>(m.dense_size) + static_cast<std::size_t>(i));
      }
    } else {
      for (std::int32_t p = m.segments[parent]; p < m.segments[parent + 1]; ++p) {
        idx[level] = m.indices[p];
        visit(level + 1, static_cast<std::size_t>(p));
      }
    }
  }
};

// A random valid spec: rank 1..3, up to two blocked dims, random traversal orders, each
// level dense or CSR with random (occasionally unsorted) indices.
SparsitySpec random_spec(std::mt19937& rng, std::vector<std::int32_t>& shape) {
  const std::int32_t sizes[] = {1, 2, 3, 4, 6};
  const std::size_t n = 1 + rng() % 3;
  shape.assign(n, 0);
  for (auto& d : shape) d = sizes[rng() % 5];
  std::vector<std::int32_t> dims(n);
  for (std::size_t d = 0; d < n; ++d) dims[d] = static_cast<std::int32_t>(d);
  std::shuffle(dims.begin(), dims.end(), rng);
  const std::size_t k = std::min<std::size_t>(n, rng() % 3);
  SparsitySpec spec;
  std::vector<std::int32_t> block_size(k);
  for (std::size_t j = 0; j < k; ++j) {
    spec.block_map.push_back(dims[j]);
    std::vector<std::int32_t> divisors;
    for (std::int32_t b = 1; b <= shape[dims[j]]; ++b)
      if (shape[dims[j]] % b == 0) divisors.push_back(b);
    block_size[j] = divisors[rng() % divisors.size()];
  }
  std::vector<std::int32_t> outer(n), inner(k);
  for (std::size_t d = 0; d < n; ++d) outer[d] = static_cast<std::int32_t>(d);
  for (std::size_t j = 0; j < k; ++j) inner[j] = static_cast<std::int32_t>(n + j);
  std::shuffle(outer.begin(), outer.end(), rng);
  std::shuffle(inner.begin(), inner.end(), rng);
  spec.traversal_order = outer;
  spec.traversal_order.insert(spec.traversal_order.end(), inner.begin(), inner.end());
  std::size_t count = 1;
  for (std::int32_t t : spec.traversal_order) {
    std::int32_t extent;
    if (static_cast<std::size_t>(t) >= n) {
      extent = block_size[t - n];
    } else {
      extent = shape[t];
      for (std::size_t j = 0; j < k; ++j)
        if (spec.block_map[j] == t) extent /= block_size[j];
    }
    SparseLevel level;
    level.dense_size = extent;
    level.is_sparse = rng() % 2 == 0;
    if (level.is_sparse) {
      if (static_cast<std::size_t>(t) < n) level.dense_size = 0;  // not used for original dims
      level.segments.push_back(0);
      for (std::size_t p = 0; p < count; ++p) {
        std::vector<std::int32_t> present;
        for (std::int32_t i = 0; i < extent; ++i)
          if (rng() % 3 != 0) present.push_back(i);
        if (rng() % 8 == 0) std::shuffle(present.begin(), present.end(), rng);
        level.indices.insert(level.indices.end(), present.begin(), present.end());
        level.segments.push_back(static_cast<std::int32_t>(level.indices.size()));
      }
      count = level.indices.size();
    } else {
      count *= static_cast<std::size_t>(extent);
    }
    spec.levels.push_back(std::move(level));
  }
  return spec;
}

// Changes one number somewhere in the spec.
void mutate(std::mt19937& rng, SparsitySpec& spec, std::vector<std::int32_t>& shape) {
  std::vector<std::int32_t*> slots;
  for (auto& v : shape) slots.push_back(&v);
  for (auto& v : spec.traversal_order) slots.push_back(&v);
  for (auto& v : spec.block_map) slots.push_back(&v);
  for (auto& level : spec.levels) {
    slots.push_back(&level.dense_size);
    for (auto& v : level.segments) slots.push_back(&v);
    for (auto& v : level.indices) slots.push_back(&v);
  }
  std::int32_t& slot = *slots[rng() % slots.size()];
  const std::int32_t deltas[] = {-1, 1, 2, -2, 1000, std::numeric_limits<std::int32_t>::min()};
  slot = static_cast<std::int32_t>(static_cast<std::int64_t>(slot) + deltas[rng() % 6]);
  if (rng() % 10 == 0 && !spec.levels.empty()) spec.levels[rng() % spec.levels.size()].is_sparse ^= true;
}

TEST(decode_test, densify_random_specs_match_reference) {
  std::mt19937 rng(2024);
  int accepted_mutants = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<std::int32_t> shape;
    SparsitySpec spec = random_spec(rng, shape);
    if (iter % 2 == 1) mutate(rng, spec, shape);
    std::uint64_t count = 0;
    const auto error = litelens::check_sparsity(spec, shape, count);
    if (iter % 2 == 0) {
      ASSERT_EQ(error, std::nullopt) << "valid spec rejected at iteration " << iter;
    }
    if (error) continue;
    if (iter % 2 == 1) ++accepted_mutants;
    std::vector<std::int32_t> values(count);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<std::int32_t>(i + 1);
    const auto want = ReferenceDensify{spec, shape, values, {}, {}}.run();
    ASSERT_EQ(densify_as(spec, shape, values), want) << "iteration " << iter;
  }
  EXPECT_GT(accepted_mutants, 0);  // some mutations stay valid (e.g. a changed index)
}

// ---- dequantization -----------------------------------------------------------------

TEST(decode_test, dequantize_per_tensor) {
  const std::vector<std::int8_t> q = {-128, -3, 0, 5, 127};
  const std::vector<float> scale = {0.5f};
  const std::vector<std::int64_t> zp = {-3};
  const std::vector<std::int32_t> shape = {5};
  std::vector<float> out(5);
  litelens::dequantize(std::span<const std::int8_t>(q), shape, AffineQuant{scale, zp, 0}, out);
  EXPECT_EQ(out, (std::vector<float>{-62.5f, 0.0f, 1.5f, 4.0f, 65.0f}));

  const std::vector<std::uint8_t> qu = {0, 128, 255};
  const std::vector<std::int64_t> zpu = {128};
  std::vector<float> outu(3);
  litelens::dequantize(std::span<const std::uint8_t>(qu), std::vector<std::int32_t>{3},
                       AffineQuant{scale, zpu, 0}, outu);
  EXPECT_EQ(outu, (std::vector<float>{-64.0f, 0.0f, 63.5f}));

  // A scalar (empty shape).
  const std::vector<std::int16_t> qs = {-300};
  std::vector<float> outs(1);
  litelens::dequantize(std::span<const std::int16_t>(qs), std::span<const std::int32_t>{},
                       AffineQuant{scale, std::vector<std::int64_t>{0}, 0}, outs);
  EXPECT_EQ(outs[0], -150.0f);
}

TEST(decode_test, dequantize_matches_runtime_formulas_bit_for_bit) {
  // Every int8 / uint8 value, awkward scales: both runtime formulas (per-tensor:
  // float(double scale * int32 diff); per-channel: float scale * float(int32 diff)) agree
  // with ours.
  std::mt19937 rng(3);
  std::vector<float> scales = {0.1f, 1.0f / 3.0f, 3.0e-5f, 1.7e38f, 1e-45f, 0.0078125f};
  for (int i = 0; i < 50; ++i) scales.push_back(std::bit_cast<float>(static_cast<std::uint32_t>((rng() & 0x3fffffffu) + 0x1000000u)));
  std::vector<std::int8_t> q(256);
  for (int i = 0; i < 256; ++i) q[i] = static_cast<std::int8_t>(i - 128);
  std::vector<float> out(256);
  for (float s : scales) {
    for (std::int64_t z : {-128, -1, 0, 7, 127}) {
      const std::vector<float> sv = {s};
      const std::vector<std::int64_t> zv = {z};
      litelens::dequantize(std::span<const std::int8_t>(q), std::vector<std::int32_t>{256}, AffineQuant{sv, zv, 0},
                           out);
      for (int i = 0; i < 256; ++i) {
        const std::int32_t diff = std::int32_t{q[i]} - static_cast<std::int32_t>(z);
        const float per_tensor = static_cast<float>(static_cast<double>(s) * diff);
        const float per_channel = s * static_cast<float>(diff);
        ASSERT_EQ(bits_of(out[i]), bits_of(per_tensor)) << s << " " << z << " " << i;
        ASSERT_EQ(bits_of(out[i]), bits_of(per_channel)) << s << " " << z << " " << i;
      }
    }
  }
}

TEST(decode_test, dequantize_per_axis) {
  // shape [2, 3]: axis 0 has 2 channels, axis 1 has 3.
  const std::vector<std::int8_t> q = {1, 2, 3, 4, 5, 6};
  const std::vector<std::int32_t> shape = {2, 3};
  std::vector<float> out(6);
  {
    const std::vector<float> scale = {1.0f, 0.5f};
    const std::vector<std::int64_t> zp = {0, 2};
    litelens::dequantize(std::span<const std::int8_t>(q), shape, AffineQuant{scale, zp, 0}, out);
    EXPECT_EQ(out, (std::vector<float>{1, 2, 3, 1.0f, 1.5f, 2.0f}));
  }
  {
    const std::vector<float> scale = {1.0f, 2.0f, 0.25f};
    const std::vector<std::int64_t> zp = {1, 0, -4};
    litelens::dequantize(std::span<const std::int8_t>(q), shape, AffineQuant{scale, zp, 1}, out);
    EXPECT_EQ(out, (std::vector<float>{0, 4, 1.75f, 3, 10, 2.5f}));
  }
  {
    // Broadcast zero point, middle axis of a rank-3 tensor [2, 2, 2].
    const std::vector<float> scale = {1.0f, 10.0f};
    const std::vector<std::int64_t> zp = {1};
    const std::vector<std::int16_t> q3 = {1, 2, 3, 4, 5, 6, 7, 8};
    std::vector<float> out3(8);
    litelens::dequantize(std::span<const std::int16_t>(q3), std::vector<std::int32_t>{2, 2, 2},
                         AffineQuant{scale, zp, 1}, out3);
    EXPECT_EQ(out3, (std::vector<float>{0, 1, 20, 30, 4, 5, 60, 70}));
  }
  {
    // Last axis, many channels and rows (exercises the vectorised column path).
    const int rows = 5, channels = 131;
    std::vector<float> scale(channels);
    std::vector<std::int64_t> zp(channels);
    std::vector<std::uint8_t> qq(rows * channels);
    for (int c = 0; c < channels; ++c) {
      scale[c] = 0.01f * static_cast<float>(c + 1);
      zp[c] = c % 256;
    }
    for (std::size_t i = 0; i < qq.size(); ++i) qq[i] = static_cast<std::uint8_t>(i * 7);
    std::vector<float> o(qq.size());
    litelens::dequantize(std::span<const std::uint8_t>(qq), std::vector<std::int32_t>{rows, channels},
                         AffineQuant{scale, zp, 1}, o);
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < channels; ++c) {
        const std::size_t i = static_cast<std::size_t>(r * channels + c);
        const float want = static_cast<float>(static_cast<double>(scale[c]) * (qq[i] - zp[c]));
        ASSERT_EQ(bits_of(o[i]), bits_of(want)) << r << "," << c;
      }
  }
}

TEST(decode_test, dequantize_wide_types) {
  // int32 bias beyond 2^24: the double formula, not float(diff) * scale.
  const std::vector<std::int32_t> q = {16777217, -2147483647 - 1, 2147483647, 0};
  const std::vector<float> scale = {0.1f};
  const std::vector<std::int64_t> zp = {0};
  std::vector<float> out(4);
  litelens::dequantize(std::span<const std::int32_t>(q), std::vector<std::int32_t>{4}, AffineQuant{scale, zp, 0},
                       out);
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(bits_of(out[i]), bits_of(static_cast<float>(static_cast<double>(scale[0]) * q[i]))) << i;
  // int8 with an absurd zero point takes the exact path too.
  const std::vector<std::int8_t> q8 = {1};
  const std::vector<std::int64_t> far = {-(std::int64_t{1} << 40) - 3};
  litelens::dequantize(std::span<const std::int8_t>(q8), std::vector<std::int32_t>{1}, AffineQuant{scale, far, 0},
                       std::span(out).first(1));
  EXPECT_EQ(out[0], static_cast<float>(0.1f * static_cast<double>((std::int64_t{1} << 40) + 4)));
  // int64 values and zero points whose difference overflows int64.
  const std::vector<std::int64_t> q64 = {std::numeric_limits<std::int64_t>::max(),
                                         std::numeric_limits<std::int64_t>::min(), 5};
  const std::vector<std::int64_t> zmin = {std::numeric_limits<std::int64_t>::min()};
  const std::vector<float> one = {1.0f};
  std::vector<float> out64(3);
  litelens::dequantize(std::span<const std::int64_t>(q64), std::vector<std::int32_t>{3}, AffineQuant{one, zmin, 0},
                       out64);
  EXPECT_EQ(out64[0], 0x1p64f);  // 2^64 - 1 rounds to 2^64
  EXPECT_EQ(out64[1], 0.0f);
  EXPECT_EQ(out64[2], 0x1p63f);
  const std::vector<std::int64_t> zmax = {std::numeric_limits<std::int64_t>::max()};
  litelens::dequantize(std::span<const std::int64_t>(q64), std::vector<std::int32_t>{3}, AffineQuant{one, zmax, 0},
                       out64);
  EXPECT_EQ(out64[0], 0.0f);
  EXPECT_EQ(out64[1], -0x1p64f);
}

TEST(decode_test, dequantize_argument_checks) {
  const std::vector<std::int8_t> q(6);
  std::vector<float> out(6);
  const std::vector<float> s1 = {1.0f}, s2 = {1.0f, 2.0f}, s3 = {1.0f, 2.0f, 3.0f};
  const std::vector<std::int64_t> z1 = {0}, z2 = {0, 0};
  const std::vector<std::int32_t> shape = {2, 3};
  auto call = [&](std::span<const std::int32_t> sh, AffineQuant p, std::span<float> o) {
    litelens::dequantize(std::span<const std::int8_t>(q), sh, p, o);
  };
  EXPECT_NO_THROW(call(shape, AffineQuant{s1, z1, 5}, out));  // axis ignored per-tensor
  EXPECT_THROW(call(std::vector<std::int32_t>{2, 2}, AffineQuant{s1, z1, 0}, out), std::invalid_argument);
  EXPECT_THROW(call(std::vector<std::int32_t>{-2, -3}, AffineQuant{s1, z1, 0}, out), std::invalid_argument);
  EXPECT_THROW(call(shape, AffineQuant{s1, z1, 0}, std::span(out).first(5)), std::invalid_argument);
  EXPECT_THROW(call(shape, AffineQuant{{}, z1, 0}, out), std::invalid_argument);
  EXPECT_THROW(call(shape, AffineQuant{s1, {}, 0}, out), std::invalid_argument);
  EXPECT_THROW(call(shape, AffineQuant{s3, z2, 1}, out), std::invalid_argument);
  EXPECT_THROW(call(shape, AffineQuant{s2, z2, 1}, out), std::invalid_argument);  // shape[1] is 3
  EXPECT_THROW(call(shape, AffineQuant{s2, z2, 2}, out), std::invalid_argument);
  EXPECT_THROW(call(shape, AffineQuant{s2, z2, -1}, out), std::invalid_argument);
  EXPECT_NO_THROW(call(shape, AffineQuant{s2, z2, 0}, out));
}

TEST(decode_test, dequantize_blockwise) {
  // [2, 4] weight, block size 2: scales [row][block].
  const std::vector<std::int8_t> q = {1, 2, 3, 4, -1, -2, -8, 7};
  const std::vector<float> scales = {1.0f, 0.5f, 2.0f, 0.25f};
  const std::vector<std::int32_t> shape = {2, 4};
  std::vector<float> out(8);
  litelens::dequantize_blockwise(q, shape, scales, {}, 2, out);
  EXPECT_EQ(out, (std::vector<float>{1, 2, 1.5f, 2, -2, -4, -2, 1.75f}));
  const std::vector<std::int64_t> zps = {1, 0, 0, -1};
  litelens::dequantize_blockwise(q, shape, scales, zps, 2, out);
  EXPECT_EQ(out, (std::vector<float>{0, 1, 1.5f, 2, -2, -4, -1.75f, 2}));
  // Typical flow: INT4 bytes -> unpack -> blockwise with float16 scales widened.
  const auto packed = bytes({0x21, 0x43, 0xef, 0x78});
  std::vector<std::int8_t> unpacked(8);
  litelens::unpack_int4(packed, unpacked);
  EXPECT_EQ(unpacked, q);
  const std::vector<std::uint16_t> half_scales = {0x3c00, 0x3800, 0x4000, 0x3400};
  std::vector<float> widened(4);
  litelens::widen_float16(std::as_bytes(std::span(half_scales)), widened);
  EXPECT_EQ(widened, scales);

  EXPECT_THROW(litelens::dequantize_blockwise(q, shape, scales, {}, 3, out), std::invalid_argument);
  EXPECT_THROW(litelens::dequantize_blockwise(q, shape, scales, {}, 0, out), std::invalid_argument);
  EXPECT_THROW(litelens::dequantize_blockwise(q, shape, std::span(scales).first(3), {}, 2, out),
               std::invalid_argument);
  EXPECT_THROW(litelens::dequantize_blockwise(q, shape, scales, std::span(zps).first(1), 2, out),
               std::invalid_argument);
  EXPECT_THROW(litelens::dequantize_blockwise(q, std::vector<std::int32_t>{8}, scales, {}, 2, out),
               std::invalid_argument);
}

// ---- strings ------------------------------------------------------------------------

TEST(decode_test, string_buffer_spec_example) {
  const auto buf = bytes({0x02, 0, 0, 0, 0x10, 0, 0, 0, 0x12, 0, 0, 0, 0x12, 0, 0, 0, 0x41, 0x42});
  EXPECT_EQ(litelens::check_string_buffer(buf, 2), std::nullopt);
  const auto strings = litelens::split_strings(buf);
  ASSERT_EQ(strings.size(), 2u);
  EXPECT_EQ(strings[0], "AB");
  EXPECT_EQ(strings[1], "");
  EXPECT_EQ(litelens::check_string_buffer(buf, 3), "string buffer: 2 strings, expected 3");
  // Zero strings.
  const auto none = bytes({0, 0, 0, 0, 8, 0, 0, 0});
  EXPECT_EQ(litelens::check_string_buffer(none, 0), std::nullopt);
  EXPECT_TRUE(litelens::split_strings(none).empty());
}

TEST(decode_test, string_buffer_malformed) {
  EXPECT_EQ(litelens::check_string_buffer(bytes({1, 0, 0}), 1), "string buffer: 3 bytes, too short for the count");
  EXPECT_EQ(litelens::check_string_buffer(bytes({0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}), 1),
            "string buffer: negative string count -1");
  // A huge count in a tiny buffer: rejected from the length alone.
  EXPECT_EQ(litelens::check_string_buffer(bytes({0xfe, 0xff, 0xff, 0x7f, 8, 0, 0, 0}), 0x7ffffffe),
            "string buffer: 2147483646 strings need a 8589934592-byte header, buffer has 8 bytes");
  // First offset not at the end of the header.
  EXPECT_EQ(litelens::check_string_buffer(bytes({1, 0, 0, 0, 8, 0, 0, 0, 13, 0, 0, 0, 0x41}), 1),
            "string buffer: first offset 8, expected 12");
  // Decreasing offsets.
  EXPECT_EQ(litelens::check_string_buffer(
                bytes({2, 0, 0, 0, 0x10, 0, 0, 0, 0x12, 0, 0, 0, 0x11, 0, 0, 0, 0x41, 0x42}), 2),
            "string buffer: offsets decrease at 2");
  // Last offset short of, or past, the buffer end.
  EXPECT_EQ(litelens::check_string_buffer(bytes({1, 0, 0, 0, 12, 0, 0, 0, 13, 0, 0, 0, 0x41, 0x42}), 1),
            "string buffer: last offset 13, expected the buffer length 14");
  EXPECT_EQ(litelens::check_string_buffer(bytes({1, 0, 0, 0, 12, 0, 0, 0, 15, 0, 0, 0, 0x41, 0x42}), 1),
            "string buffer: last offset 15, expected the buffer length 14");
  EXPECT_THROW(litelens::split_strings(bytes({1, 0, 0, 0, 12, 0, 0, 0, 15, 0, 0, 0, 0x41, 0x42})),
               std::invalid_argument);
  EXPECT_THROW(litelens::split_strings(bytes({1, 0})), std::invalid_argument);
}

}  // namespace
