// litelens/array.h: tensor values as dense n-d arrays, decoded on request.
//
// Decoding is where work proportional to the weights happens, so nothing here runs at open.
// An Array either borrows the model's bytes (zero-copy: the stored values were already dense
// and in the requested form) or owns a freshly decoded buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "litelens/dtype.h"
#include "litelens/model.h"

namespace litelens {

/// A dense row-major n-d array of one dtype.
class Array {
 public:
  Array() = default;
  /// A view of bytes owned elsewhere (the model's mapping).
  static Array borrow(DType dtype, std::vector<std::int64_t> shape, std::span<const std::byte> bytes);
  /// An array owning `bytes`.
  static Array own(DType dtype, std::vector<std::int64_t> shape, std::vector<std::byte> bytes);

  DType dtype() const noexcept { return dtype_; }
  const std::vector<std::int64_t>& shape() const noexcept { return shape_; }
  std::uint64_t size() const noexcept;  ///< element count
  std::span<const std::byte> bytes() const noexcept { return view_; }
  /// True when bytes() points into the model (no copy was made).
  bool is_borrowed() const noexcept { return !storage_; }
  /// The owned storage, for handing over to another owner (e.g. a NumPy array); null if borrowed.
  std::shared_ptr<std::vector<std::byte>> storage() const noexcept { return storage_; }

  /// The same elements under another shape of equal size (shares the bytes).
  Array reshape(std::vector<std::int64_t> shape) const;

  /// Elements as T; throws std::invalid_argument if T's size does not match the dtype or the
  /// bytes are misaligned for T.
  template <class T>
  std::span<const T> as() const {
    static_assert(std::is_arithmetic_v<T>);
    const unsigned bits = dtype_info(dtype_).bits;
    if (bits != sizeof(T) * 8) throw std::invalid_argument("Array::as: element size does not match the dtype");
    if (reinterpret_cast<std::uintptr_t>(view_.data()) % alignof(T) != 0)
      throw std::invalid_argument("Array::as: data is not aligned for this type");
    return {reinterpret_cast<const T*>(view_.data()), view_.size() / sizeof(T)};
  }

 private:
  DType dtype_ = DType::float32;
  std::vector<std::int64_t> shape_;
  std::span<const std::byte> view_;
  std::shared_ptr<std::vector<std::byte>> storage_;
};

/// How far to decode a tensor's stored values.
enum class DecodeMode {
  /// The stored values, dense and one element per value: int4/uint4/int2 are unpacked to
  /// int8/uint8, sparse tensors densified; float16, bfloat16 and float8 stay as stored.
  stored,
  /// As `stored`, then float16, bfloat16 and the float8 types widened to float32.
  widened,
  /// float32 values: floats widened, affine / per-axis / blockwise quantized integers
  /// dequantized, and integers, booleans and float64 without quantization converted (complex
  /// values, which have no float32 form, stay as stored).
  dequantized,
};

/// Why decode() refuses to densify this sparse tensor, or nullopt when it does not: a dense
/// form over 64 MiB that is more than 4096 times the stored values (a few hundred bytes can
/// declare gigabytes of zeros; real sparse weights are a few to a few hundred times denser).
std::optional<std::string> densify_refusal(const Tensor& tensor);

/// The mode that gives a tensor's real values without losing any: `dequantized` for quantized
/// and floating-point tensors, `stored` for integers and booleans without quantization (shapes,
/// axes, ids), whose stored values are their real values and which float32 could round (2^24 + 1).
/// Exports with --dequantize, `diff` and `layers` statistics use it.
DecodeMode exact_real_mode(const Tensor& tensor);

/// Decodes a constant tensor. Throws std::invalid_argument if the tensor has no data in the
/// file, or for types that have no numeric decoding (string, resource, variant).
Array decode(const Model& model, const Tensor& tensor, DecodeMode mode = DecodeMode::stored);

/// Summary statistics of an array's values (as doubles; NaNs are counted and skipped).
struct ArrayStats {
  std::uint64_t count = 0;  ///< elements
  std::uint64_t nan_count = 0;
  double min = 0, max = 0, mean = 0, std = 0;
  double zero_fraction = 0;  ///< fraction of elements equal to zero
};

/// Calls f(value) for elements [0, n) of a numeric array, each in its own C++ type (float,
/// double, the integer types; bool as std::uint8_t). The bytes may be unaligned. Throws
/// std::invalid_argument for dtypes without a C++ type (float16 and friends: widen first).
template <class F>
void for_each_number(const Array& a, std::uint64_t n, F&& f) {
  const std::byte* p = a.bytes().data();
  const auto each = [&](auto tag) {
    using T = decltype(tag);
    for (std::uint64_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, p + i * sizeof(T), sizeof(T));
      f(v);
    }
  };
  switch (a.dtype()) {
    case DType::float32: each(float{}); break;
    case DType::float64: each(double{}); break;
    case DType::int8: each(std::int8_t{}); break;
    case DType::uint8:
    case DType::bool_: each(std::uint8_t{}); break;
    case DType::int16: each(std::int16_t{}); break;
    case DType::uint16: each(std::uint16_t{}); break;
    case DType::int32: each(std::int32_t{}); break;
    case DType::uint32: each(std::uint32_t{}); break;
    case DType::int64: each(std::int64_t{}); break;
    case DType::uint64: each(std::uint64_t{}); break;
    default: throw std::invalid_argument("this dtype has no numeric form; widen it first");
  }
}

/// Statistics of a numeric array (float16 etc. must be widened first).
ArrayStats statistics(const Array& a);

/// The first `n` values as doubles, for display.
std::vector<double> first_values(const Array& a, std::size_t n);

// ---- Layouts ----------------------------------------------------------------------------

/// Frameworks whose weight layouts litelens converts to.
enum class Framework { tflite, keras, torch };

/// Parses "tflite", "keras" or "torch".
Framework framework_from_name(std::string_view name);
std::string_view framework_name(Framework f) noexcept;

/// Reorders the axes of `a`: output axis i is input axis perm[i] (numpy's transpose).
Array transpose(const Array& a, std::span<const int> perm);

}  // namespace litelens
