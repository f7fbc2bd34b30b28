// Decoding stored tensor bytes into dense arrays: unpack, densify, widen, dequantize.
#include "litelens/array.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "litelens/decode.h"
#include "mapped_file.h"

namespace litelens {

namespace detail {
void prepare_fresh_pages(std::byte* p, std::size_t n) noexcept;  // model.cpp
}

namespace {

// A zeroed buffer for decoded values, its pages mapped before the first touch: a page fault per
// 4 KiB otherwise costs more than decoding (see prepare_fresh_pages).
std::vector<std::byte> fresh_buffer(std::size_t n) {
  std::vector<std::byte> v;
  v.reserve(n);
  detail::prepare_fresh_pages(v.data(), n);
  v.resize(n);
  return v;
}

std::vector<std::int64_t> shape_of(const Tensor& t) {
  const auto s = t.shape();
  return {s.begin(), s.end()};
}

template <class T>
std::span<T> typed(std::vector<std::byte>& storage) {
  return {reinterpret_cast<T*>(storage.data()), storage.size() / sizeof(T)};
}

// Asks for a view's pages ahead of reading all of it (the model maps its file for random access).
void read_ahead(const Array& a) {
  if (a.is_borrowed()) detail::will_need(a.bytes());
}

// The dense element sequence of a tensor, still in the stored dtype (packed types unpacked to
// one byte each). Returns the dtype of the elements.
Array dense_stored(const Tensor& t) {
  const DType stored = t.dtype();
  auto shape = shape_of(t);
  const std::uint64_t n = t.element_count();
  std::span<const std::byte> bytes = t.data();
  // Read-ahead only where this function reads the bytes (unpack, densify): a dense tensor comes
  // back as a view, and asking the kernel about every page of it made a view of a 1 GiB tensor
  // cost 118 us instead of 0.5 us (Python .numpy(), BENCHMARKS.md). Readers of views call
  // read_ahead() below.
  if (is_packed(stored) || t.is_sparse()) t.will_need();

  DType element = stored;
  std::vector<std::byte> unpacked;
  bool fresh = false;
  std::uint64_t stored_count = n;
  std::optional<SparsitySpec> sparsity = t.sparsity();
  if (sparsity) {
    // The validator computed the same count at open; recompute for the element span.
    check_sparsity(*sparsity, t.shape(), stored_count);
  }
  if (is_packed(stored)) {
    element = stored == DType::uint4 ? DType::uint8 : DType::int8;
    unpacked = fresh_buffer(stored_count);
    if (bytes.size() == stored_count && stored_count > 1 && stored != DType::int2) {
      // Old writers stored 4-bit values one per byte (accepted with a warning at open).
      std::memcpy(unpacked.data(), bytes.data(), stored_count);
      if (stored == DType::int4)
        for (auto& b : unpacked) b = static_cast<std::byte>(static_cast<std::int8_t>(static_cast<std::uint8_t>(b) << 4) >> 4);
    } else if (stored == DType::int4) {
      unpack_int4(bytes, typed<std::int8_t>(unpacked));
    } else if (stored == DType::uint4) {
      unpack_uint4(bytes, typed<std::uint8_t>(unpacked));
    } else {
      unpack_int2(bytes, typed<std::int8_t>(unpacked));
    }
    bytes = unpacked;
    fresh = true;
  }
  if (sparsity) {
    if (auto refusal = densify_refusal(t)) throw std::invalid_argument(*refusal);
    const std::size_t width = dtype_info(element).bits / 8;
    std::vector<std::byte> dense = fresh_buffer(n * width);
    densify(*sparsity, t.shape(), bytes, width, dense);
    return Array::own(element, std::move(shape), std::move(dense));
  }
  if (fresh) return Array::own(element, std::move(shape), std::move(unpacked));
  return Array::borrow(element, std::move(shape), bytes);
}

Array widen(const Array& a) {
  using Widen = void (*)(std::span<const std::byte>, std::span<float>);
  Widen fn = nullptr;
  switch (a.dtype()) {
    case DType::float16: fn = widen_float16; break;
    case DType::bfloat16: fn = widen_bfloat16; break;
    case DType::float8_e4m3fn: fn = widen_float8_e4m3fn; break;
    case DType::float8_e5m2: fn = widen_float8_e5m2; break;
    default: return a;
  }
  read_ahead(a);
  std::vector<std::byte> out = fresh_buffer(a.size() * sizeof(float));
  fn(a.bytes(), typed<float>(out));
  return Array::own(DType::float32, a.shape(), std::move(out));
}

template <class T>
void dequantize_as(const Array& a, std::span<const std::int32_t> shape, const AffineQuant& q, std::span<float> out) {
  std::vector<T> aligned(a.size());  // Array bytes may be unaligned (e.g. offset buffers)
  std::memcpy(aligned.data(), a.bytes().data(), aligned.size() * sizeof(T));
  dequantize(std::span<const T>(aligned), shape, q, out);
}

Array dequantize_affine(const Array& a, const Tensor& t, const Quantization& q) {
  std::vector<float> scales = q.scale;
  std::vector<std::int64_t> zero_points = q.zero_point;
  // Open accepted a missing zero point list (with a warning): it reads as zeros.
  if (zero_points.empty()) zero_points.assign(1, 0);
  // Open also accepted more scales than slices along the axis [extra_scales]: the runtime's
  // per-channel kernels read the first ones, and so does this.
  const auto shape_of_t = t.shape();
  if (scales.size() > 1 && q.quantized_dimension >= 0 &&
      static_cast<std::size_t>(q.quantized_dimension) < shape_of_t.size()) {
    const auto extent = static_cast<std::size_t>(std::max(shape_of_t[q.quantized_dimension], 0));
    if (scales.size() > extent && extent > 0) {
      scales.resize(extent);
      if (zero_points.size() > extent) zero_points.resize(extent);
    }
  }
  if (a.size() == 0) return Array::own(DType::float32, a.shape(), {});
  AffineQuant quant{scales, zero_points, q.quantized_dimension};
  read_ahead(a);
  std::vector<std::byte> out = fresh_buffer(a.size() * sizeof(float));
  auto dst = typed<float>(out);
  const auto shape = t.shape();
  switch (a.dtype()) {
    case DType::int8: dequantize_as<std::int8_t>(a, shape, quant, dst); break;
    case DType::uint8: dequantize_as<std::uint8_t>(a, shape, quant, dst); break;
    case DType::int16: dequantize_as<std::int16_t>(a, shape, quant, dst); break;
    case DType::int32: dequantize_as<std::int32_t>(a, shape, quant, dst); break;
    case DType::int64: dequantize_as<std::int64_t>(a, shape, quant, dst); break;
    default:
      throw std::invalid_argument(fmt::format("dequantize: {} values cannot be dequantized", dtype_name(a.dtype())));
  }
  return Array::own(DType::float32, a.shape(), std::move(out));
}

Array dequantize_blockwise_tensor(const Model& model, const Array& a, const Tensor& t, const Quantization& q) {
  if (t.shape().size() != 2 || (a.dtype() != DType::int8 && a.dtype() != DType::uint8))
    throw std::invalid_argument("dequantize: blockwise quantization is supported for 2-D int4/int8 weights");
  read_ahead(a);
  const Subgraph sg = model.subgraph(t.subgraph());
  const Array scales = decode(model, sg.tensor(q.scales_tensor), DecodeMode::widened);
  if (scales.dtype() != DType::float32)
    throw std::invalid_argument("dequantize: blockwise scales must be a floating-point tensor");
  std::vector<float> scale_values(scales.size());
  std::memcpy(scale_values.data(), scales.bytes().data(), scale_values.size() * sizeof(float));
  std::vector<std::int64_t> zero_points;
  if (q.zero_points_tensor >= 0) {
    const Array zp = decode(model, sg.tensor(q.zero_points_tensor), DecodeMode::stored);
    zero_points.resize(zp.size());
    for (std::size_t i = 0; i < zero_points.size(); ++i) {
      switch (zp.dtype()) {
        case DType::int8: zero_points[i] = static_cast<std::int8_t>(zp.bytes()[i]); break;
        case DType::uint8: zero_points[i] = static_cast<std::uint8_t>(zp.bytes()[i]); break;
        case DType::int32: {
          std::int32_t v;
          std::memcpy(&v, zp.bytes().data() + 4 * i, 4);
          zero_points[i] = v;
          break;
        }
        case DType::int64: std::memcpy(&zero_points[i], zp.bytes().data() + 8 * i, 8); break;
        default: throw std::invalid_argument("dequantize: unsupported blockwise zero point dtype");
      }
    }
  }
  std::vector<std::int8_t> values(a.size());
  std::memcpy(values.data(), a.bytes().data(), values.size());
  if (a.dtype() == DType::uint8) {
    // The kernel takes int8: shift both sides by 128, q - zp = (q - 128) - (zp - 128), exactly.
    for (auto& v : values) v = static_cast<std::int8_t>(static_cast<std::uint8_t>(v) ^ 0x80u);
    if (zero_points.empty()) zero_points.assign(scale_values.size(), 0);
    for (auto& z : zero_points) z -= 128;
  }
  std::vector<std::byte> out = fresh_buffer(a.size() * sizeof(float));
  dequantize_blockwise(values, t.shape(), scale_values, zero_points, q.block_size, typed<float>(out));
  return Array::own(DType::float32, a.shape(), std::move(out));
}

// The copy behind transpose(), for elements of W bytes (0: `width` bytes, known at run time).
// Output axes that stay adjacent in the input are merged and size-1 axes dropped; then either
// the innermost output axis is contiguous in the input too (one memcpy per row), or the output
// is written in square tiles over the innermost output axis and the axis that is innermost in
// the input, so that reads and writes both stay within a few cache lines. An element-by-element
// walk with a strided read was 0.2 GB/s on a 4096x4096 float32 filter (280 ms); tiled, it runs
// near memory speed.
template <std::size_t W>
void transpose_copy(const std::byte* in, std::byte* out, std::span<const std::int64_t> out_shape,
                    std::span<const int> perm, std::span<const std::int64_t> in_strides, std::size_t width) {
  const std::size_t w = W == 0 ? width : W;
  const auto copy = [w](std::byte* d, const std::byte* s) {
    if constexpr (W == 0) std::memcpy(d, s, w);
    else std::memcpy(d, s, W);
  };
  // Output dimensions (outermost first) and their strides in the input, in elements.
  std::vector<std::int64_t> dims, istr;
  for (std::size_t o = 0; o < out_shape.size(); ++o) {
    const std::int64_t size = out_shape[o], stride = in_strides[perm[o]];
    if (size == 1) continue;
    if (!dims.empty() && istr.back() == stride * size) {
      dims.back() *= size;
      istr.back() = stride;
    } else {
      dims.push_back(size);
      istr.push_back(stride);
    }
  }
  if (dims.empty()) {  // a single element
    copy(out, in);
    return;
  }
  const std::size_t rank = dims.size();
  const std::size_t last = rank - 1;
  std::size_t q = last;  // the output axis that is innermost in the input
  for (std::size_t i = 0; i < rank; ++i)
    if (istr[i] == 1) q = i;
  std::vector<std::int64_t> ostr(rank, 1);  // output strides, in elements
  for (std::size_t i = rank; i-- > 1;) ostr[i - 1] = ostr[i] * dims[i];

  // The axes walked by the outer odometer: all but `last` (and q when tiling).
  const bool rows = istr[last] == 1;
  std::vector<std::size_t> outer;
  for (std::size_t i = 0; i < last; ++i)
    if (rows || i != q) outer.push_back(i);
  std::vector<std::int64_t> index(outer.size(), 0);
  std::int64_t src = 0, dst = 0;
  constexpr std::int64_t kTile = 32;
  for (;;) {
    if (rows) {
      std::memcpy(out + dst * w, in + src * w, static_cast<std::size_t>(dims[last]) * w);
    } else {
      const std::int64_t na = dims[q], nb = dims[last], sb = istr[last], oa = ostr[q];
      for (std::int64_t a0 = 0; a0 < na; a0 += kTile) {
        const std::int64_t a1 = std::min(na, a0 + kTile);
        for (std::int64_t b0 = 0; b0 < nb; b0 += kTile) {
          const std::int64_t b1 = std::min(nb, b0 + kTile);
          for (std::int64_t a = a0; a < a1; ++a) {
            const std::byte* s = in + (src + a) * w;
            std::byte* d = out + (dst + a * oa) * w;
            for (std::int64_t b = b0; b < b1; ++b) copy(d + b * w, s + b * sb * w);
          }
        }
      }
    }
    std::size_t k = outer.size();
    for (; k-- > 0;) {
      const std::size_t axis = outer[k];
      src += istr[axis];
      dst += ostr[axis];
      if (++index[k] < dims[axis]) break;
      src -= istr[axis] * dims[axis];
      dst -= ostr[axis] * dims[axis];
      index[k] = 0;
    }
    if (k == static_cast<std::size_t>(-1)) break;
  }
}

}  // namespace

Array Array::borrow(DType dtype, std::vector<std::int64_t> shape, std::span<const std::byte> bytes) {
  Array a;
  a.dtype_ = dtype;
  a.shape_ = std::move(shape);
  a.view_ = bytes;
  return a;
}

Array Array::own(DType dtype, std::vector<std::int64_t> shape, std::vector<std::byte> bytes) {
  Array a;
  a.dtype_ = dtype;
  a.shape_ = std::move(shape);
  a.storage_ = std::make_shared<std::vector<std::byte>>(std::move(bytes));
  a.view_ = *a.storage_;
  return a;
}

Array Array::reshape(std::vector<std::int64_t> shape) const {
  Array a = *this;
  a.shape_ = std::move(shape);
  if (a.size() != size()) throw std::invalid_argument("Array::reshape: element count differs");
  return a;
}

std::uint64_t Array::size() const noexcept {
  std::uint64_t n = 1;
  for (auto d : shape_) n *= static_cast<std::uint64_t>(d);
  return n;
}

std::optional<std::string> densify_refusal(const Tensor& t) {
  if (!t.is_sparse()) return std::nullopt;
  constexpr std::uint64_t kFloor = std::uint64_t{64} << 20;
  constexpr std::uint64_t kRatio = 4096;
  const DType stored = t.dtype();
  const unsigned bits = is_packed(stored) ? 8 : dtype_info(stored).bits;  // packed types unpack to bytes
  const std::uint64_t n = t.element_count();
  const std::uint64_t width = bits / 8;
  if (width == 0 || n <= kFloor / width) return std::nullopt;
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  const std::uint64_t dense = n > kMax / width ? kMax : n * width;  // saturates, never wraps
  const std::uint64_t stored_bytes = t.data().size();
  if (dense / kRatio <= stored_bytes) return std::nullopt;
  return fmt::format("tensor {} '{}': its dense form would take {} bytes from {} stored bytes; refused as a "
                     "decompression bomb (over 64 MiB and over {}x)",
                     t.index(), t.name(), dense, stored_bytes, kRatio);
}

DecodeMode exact_real_mode(const Tensor& t) {
  const auto q = t.quantization();
  const bool quantized = q && !(q->scheme == Quantization::Scheme::affine && q->scale.empty());
  switch (t.dtype()) {
    case DType::float16:
    case DType::bfloat16:
    case DType::float8_e4m3fn:
    case DType::float8_e5m2:
    case DType::float32:
    case DType::float64:
    case DType::complex64:
    case DType::complex128: return DecodeMode::dequantized;
    default: return quantized ? DecodeMode::dequantized : DecodeMode::stored;
  }
}

// Real values that carry no quantization (integers, booleans, float64) as float32, so that
// dequantized mode has one dtype; complex values have no float32 form and stay as they are.
Array to_float32(const Array& a) {
  if (a.dtype() == DType::complex64 || a.dtype() == DType::complex128) return a;
  read_ahead(a);
  std::vector<std::byte> out = fresh_buffer(a.size() * sizeof(float));
  float* dst = typed<float>(out).data();
  std::uint64_t i = 0;
  for_each_number(a, a.size(), [&](auto v) { dst[i++] = static_cast<float>(v); });
  return Array::own(DType::float32, a.shape(), std::move(out));
}

Array decode(const Model& model, const Tensor& tensor, DecodeMode mode) {
  if (!tensor.is_constant())
    throw std::invalid_argument(fmt::format("tensor {} '{}' has no data in the file", tensor.index(), tensor.name()));
  const DType type = tensor.dtype();
  if (!is_known(type) || dtype_info(type).bits == 0)
    throw std::invalid_argument(fmt::format("tensor {} '{}': {} values have no numeric decoding", tensor.index(),
                                            tensor.name(), dtype_name(type)));
  Array values = dense_stored(tensor);
  if (mode == DecodeMode::stored) return values;
  values = widen(values);
  if (mode == DecodeMode::widened || values.dtype() == DType::float32) return values;
  const auto q = tensor.quantization();
  if (!q || (q->scheme == Quantization::Scheme::affine && q->scale.empty())) return to_float32(values);
  switch (q->scheme) {
    case Quantization::Scheme::affine: return dequantize_affine(values, tensor, *q);
    case Quantization::Scheme::blockwise: return dequantize_blockwise_tensor(model, values, tensor, *q);
    default:
      throw std::invalid_argument(fmt::format("tensor {} '{}': {} quantization cannot be dequantized", tensor.index(),
                                              tensor.name(), scheme_name(q->scheme)));
  }
}

ArrayStats statistics(const Array& a) {
  read_ahead(a);
  ArrayStats s;
  s.count = a.size();
  std::uint64_t zeros = 0, finite = 0;
  double mean = 0, m2 = 0;  // Welford: stable for large arrays
  bool first = true;
  for_each_number(a, s.count, [&](double v) {
    if (std::isnan(v)) {
      ++s.nan_count;
      return;
    }
    if (v == 0) ++zeros;
    if (first) {
      s.min = s.max = v;
      first = false;
    }
    s.min = std::min(s.min, v);
    s.max = std::max(s.max, v);
    ++finite;
    const double delta = v - mean;
    mean += delta / static_cast<double>(finite);
    m2 += delta * (v - mean);
  });
  s.mean = mean;
  s.std = finite > 0 ? std::sqrt(m2 / static_cast<double>(finite)) : 0;
  s.zero_fraction = s.count > 0 ? static_cast<double>(zeros) / static_cast<double>(s.count) : 0;
  return s;
}

std::vector<double> first_values(const Array& a, std::size_t n) {
  std::vector<double> out;
  for_each_number(a, std::min<std::uint64_t>(n, a.size()), [&](double v) { out.push_back(v); });
  return out;
}

Framework framework_from_name(std::string_view name) {
  if (name == "tflite") return Framework::tflite;
  if (name == "keras") return Framework::keras;
  if (name == "torch") return Framework::torch;
  throw std::invalid_argument(fmt::format("unknown layout '{}' (expected tflite, keras or torch)", name));
}

std::string_view framework_name(Framework f) noexcept {
  switch (f) {
    case Framework::tflite: return "tflite";
    case Framework::keras: return "keras";
    case Framework::torch: return "torch";
  }
  return "tflite";
}

Array transpose(const Array& a, std::span<const int> perm) {
  const std::size_t rank = a.shape().size();
  if (perm.size() != rank) throw std::invalid_argument("transpose: permutation rank differs from the array's");
  std::vector<bool> seen(rank, false);
  for (int p : perm) {
    if (p < 0 || static_cast<std::size_t>(p) >= rank || seen[p])
      throw std::invalid_argument("transpose: not a permutation");
    seen[p] = true;
  }
  const std::size_t width = dtype_info(a.dtype()).bits / 8;
  if (width == 0) throw std::invalid_argument("transpose: packed values must be unpacked first");
  std::vector<std::int64_t> out_shape(rank);
  for (std::size_t i = 0; i < rank; ++i) out_shape[i] = a.shape()[perm[i]];
  std::vector<std::int64_t> in_strides(rank, 1);
  for (std::size_t i = rank; i-- > 1;) in_strides[i - 1] = in_strides[i] * a.shape()[i];
  std::vector<std::byte> out = fresh_buffer(a.bytes().size());
  const std::uint64_t n = a.size();
  if (n > 0) {
    read_ahead(a);
    const std::byte* in = a.bytes().data();
    switch (width) {
      case 1: transpose_copy<1>(in, out.data(), out_shape, perm, in_strides, width); break;
      case 2: transpose_copy<2>(in, out.data(), out_shape, perm, in_strides, width); break;
      case 4: transpose_copy<4>(in, out.data(), out_shape, perm, in_strides, width); break;
      case 8: transpose_copy<8>(in, out.data(), out_shape, perm, in_strides, width); break;
      case 16: transpose_copy<16>(in, out.data(), out_shape, perm, in_strides, width); break;
      default: transpose_copy<0>(in, out.data(), out_shape, perm, in_strides, width); break;
    }
  }
  return Array::own(a.dtype(), std::move(out_shape), std::move(out));
}

}  // namespace litelens
