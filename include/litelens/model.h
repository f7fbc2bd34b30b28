// litelens/model.h: open a .tflite file once, validate it once, then read it through cheap views.
//
// Contract (see docs/format.md for the full policy):
// - Model::open memory-maps the file read-only; Model::from_bytes copies a caller's buffer.
// - Both validate everything reading depends on before returning. Afterwards no accessor can
//   fail because of the file's bytes; accessors throw only on misuse (std::out_of_range for a
//   bad index, std::invalid_argument for a wrong dtype in data_as<T>()). The one exception is
//   data_as<T>() on bytes not aligned for T, which files may legally hold (data stored after
//   the FlatBuffer has no alignment rule): is_aligned_for<T>() tells in advance, and
//   copy_as<T>() reads any alignment.
// - Views (Subgraph, Tensor, Operator) are small values that point into the Model. They stay
//   valid while the Model lives, also across moves of the Model.
// - No tensor data page is touched until data is asked for.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "litelens/decode.h"
#include "litelens/dtype.h"
#include "litelens/error.h"
#include "litelens/value.h"

namespace litelens {

class Model;
namespace detail {
struct ModelData;
/// The implementation's view of a model (src/ only).
const ModelData& data_of(const Model& model) noexcept;
}

/// Quantization parameters of a tensor, copied out of the file (they are metadata-sized).
struct Quantization {
  enum class Scheme : std::uint8_t { affine, custom, blockwise, multi_axis, unknown };

  Scheme scheme = Scheme::affine;  ///< affine unless a QuantizationDetails union is set
  std::vector<float> scale;
  std::vector<std::int64_t> zero_point;
  std::vector<float> min;  ///< calibration range, informational
  std::vector<float> max;
  std::int32_t quantized_dimension = 0;

  // Blockwise and multi-axis schemes keep their scales in other tensors of the subgraph.
  std::int32_t scales_tensor = -1;
  std::int32_t zero_points_tensor = -1;  ///< -1: all zero points are 0
  std::int32_t block_size = 0;
  std::vector<std::int32_t> quantized_dimensions;  ///< multi-axis only
  std::vector<std::uint8_t> custom;                ///< custom scheme's opaque bytes

  /// True when affine parameters apply per slice along quantized_dimension.
  bool is_per_axis() const noexcept { return scheme == Scheme::affine && scale.size() > 1; }
};

/// Name of a quantization scheme: "affine", "custom", "blockwise", "multi_axis", "unknown".
std::string_view scheme_name(Quantization::Scheme scheme) noexcept;

/// Whether two parameter sets are the same as written: every field equal, floats compared by
/// bit pattern, so a NaN scale (a damaged file can hold one) equals itself.
bool same_as_written(const Quantization& a, const Quantization& b) noexcept;

/// Float lists compared by bit pattern (NaN equals itself; 0.0 and -0.0 differ).
bool same_bits(std::span<const float> a, std::span<const float> b) noexcept;

/// Where a tensor's values are kept when they live in a separate file (schema "3d": an
/// ExternalBuffer inside an ExternalBufferGroup). litelens reports this and never opens that file:
/// how a group name becomes a file is left to the application that wrote the model.
struct ExternalData {
  std::uint32_t id = 0;             ///< ExternalBuffer id (what Tensor.external_buffer names)
  std::uint32_t group = 0;          ///< index into the model's external buffer groups
  std::string_view group_name;      ///< the group's name: a file name or URI, as written
  std::uint64_t offset = 0;         ///< byte offset inside that file
  std::uint64_t length = 0;         ///< byte length
  std::string_view packing;         ///< free-form packing note, as written ("" when absent)
};

/// A tensor of a subgraph.
class Tensor {
 public:
  int subgraph() const noexcept { return subgraph_; }
  int index() const noexcept { return index_; }
  std::string_view name() const;
  /// Dimensions (row-major). Empty for a scalar.
  std::span<const std::int32_t> shape() const;
  /// Dimensions with -1 where the size is known only at run time; empty when fully static.
  std::span<const std::int32_t> shape_signature() const;
  bool has_rank() const;
  DType dtype() const;
  /// The raw TensorType code (equals static_cast<int>(dtype()) for known types).
  int dtype_code() const;
  std::uint32_t buffer() const;
  /// ExternalBuffer id, 0 when the data is not in an external file.
  std::uint32_t external_buffer() const;
  /// Where the values are when they live in an external file; nullopt otherwise.
  std::optional<ExternalData> external_data() const;
  bool is_variable() const;
  /// True when this file holds bytes for the tensor (inline or after the FlatBuffer).
  bool is_constant() const;
  bool is_sparse() const;
  /// Product of the (dense) shape; 1 for a scalar.
  std::uint64_t element_count() const;
  /// The stored bytes, zero-copy; empty when the tensor has no data in this file.
  std::span<const std::byte> data() const;
  /// Hints that data() is about to be read, so the OS starts reading it now. Open maps the
  /// metadata for random access (reading it pulls in no weights) and gives the weights normal
  /// read-ahead (docs/python.md, "Zero-copy and lifetimes"); decoders call this themselves.
  void will_need() const noexcept;
  /// Absolute file offset of data(), when there is data.
  std::optional<std::uint64_t> data_offset() const;
  /// Stored values as T (float for float32, std::uint16_t for float16/bfloat16, std::uint8_t
  /// for packed types, ...). Throws std::invalid_argument when T does not fit the dtype or the
  /// bytes are not aligned for T.
  template <class T>
  std::span<const T> data_as() const;
  /// True when data_as<T>() can view the bytes in place (their address suits T).
  template <class T>
  bool is_aligned_for() const {
    return reinterpret_cast<std::uintptr_t>(data().data()) % alignof(T) == 0;
  }
  /// Stored values as T, copied, for any alignment. Throws std::invalid_argument only when T
  /// does not fit the dtype, as data_as<T>() does.
  template <class T>
  std::vector<T> copy_as() const;
  /// Quantization parameters; nullopt when the tensor is not quantized.
  std::optional<Quantization> quantization() const;
  /// Sparsity parameters; nullopt for dense tensors.
  std::optional<SparsitySpec> sparsity() const;

 private:
  friend class Subgraph;
  friend class Model;
  Tensor(const detail::ModelData* m, int subgraph, int index)
      : m_(m), subgraph_(subgraph), index_(index) {}
  bool dtype_accepts(std::size_t size, bool is_float, bool is_signed) const;

  const detail::ModelData* m_;
  int subgraph_;
  int index_;
};

/// An operator of a subgraph.
class Operator {
 public:
  int subgraph() const noexcept { return subgraph_; }
  int index() const noexcept { return index_; }
  /// Effective builtin code: max(builtin_code, deprecated_builtin_code).
  std::int32_t opcode() const;
  /// "CONV_2D", "CUSTOM", or "UNKNOWN" for codes this build does not know.
  std::string_view op_name() const;
  bool is_custom() const;
  /// Custom op name ("" when not custom).
  std::string_view custom_code() const;
  std::int32_t version() const;
  /// Tensor indices; -1 marks an absent optional input.
  std::span<const std::int32_t> inputs() const;
  std::span<const std::int32_t> outputs() const;
  std::span<const std::int32_t> intermediates() const;
  /// Which inputs the op mutates; empty or the same length as inputs().
  std::vector<bool> mutating_variable_inputs() const;
  /// Name of the options table in use ("Conv2DOptions"), "" when there is none.
  std::string_view options_type() const;
  /// Decoded options: a map of field name to value, defaults included; enums by name;
  /// for custom ops, the FlexBuffers payload decoded (an empty map when absent or undecodable).
  Value options() const;
  /// The raw custom options payload (inline or after the FlatBuffer).
  std::span<const std::byte> custom_options() const;

 private:
  friend class Subgraph;
  Operator(const detail::ModelData* m, int subgraph, int index)
      : m_(m), subgraph_(subgraph), index_(index) {}
  const detail::ModelData* m_;
  int subgraph_;
  int index_;
};

/// A range of views, produced on the fly. It holds its owner by value when the owner is a cheap
/// view (Subgraph), so `for (Tensor t : model.subgraph(0).tensors())` is safe; a Model is held by
/// pointer and must outlive the range, as it must outlive every view.
template <class Owner, class View, View (Owner::*Get)(int) const>
class ViewRange {
  using Holder = std::conditional_t<std::is_copy_constructible_v<Owner>, Owner, const Owner*>;
  static const Owner& owner(const Owner& o) { return o; }
  static const Owner& owner(const Owner* o) { return *o; }

 public:
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = View;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = View;
    iterator(Holder o, int i) : o_(o), i_(i) {}
    View operator*() const { return (owner(o_).*Get)(i_); }
    iterator& operator++() { ++i_; return *this; }
    iterator operator++(int) { auto t = *this; ++i_; return t; }
    bool operator==(const iterator& other) const { return i_ == other.i_; }
   private:
    Holder o_;
    int i_ = 0;
  };
  ViewRange(Holder o, int n) : o_(o), n_(n) {}
  iterator begin() const { return {o_, 0}; }
  iterator end() const { return {o_, n_}; }
  std::size_t size() const { return static_cast<std::size_t>(n_); }
  View operator[](int i) const { return (owner(o_).*Get)(i); }
 private:
  Holder o_;
  int n_;
};

/// A subgraph (graph 0 is the main one).
class Subgraph {
 public:
  int index() const noexcept { return index_; }
  std::string_view name() const;
  std::span<const std::int32_t> inputs() const;
  std::span<const std::int32_t> outputs() const;
  std::size_t tensor_count() const;
  std::size_t operator_count() const;
  /// Throws std::out_of_range for a bad index.
  Tensor tensor(int index) const;
  Operator op(int index) const;
  ViewRange<Subgraph, Tensor, &Subgraph::tensor> tensors() const {
    return {*this, static_cast<int>(tensor_count())};
  }
  ViewRange<Subgraph, Operator, &Subgraph::op> operators() const {
    return {*this, static_cast<int>(operator_count())};
  }

 private:
  friend class Model;
  Subgraph(const detail::ModelData* m, int index) : m_(m), index_(index) {}
  const detail::ModelData* m_;
  int index_;
};

/// A named entry point.
struct SignatureDef {
  struct Binding {
    std::string name;        ///< user-facing alias
    std::int32_t tensor;     ///< tensor index in `subgraph`
  };
  std::string key;
  int subgraph = 0;
  std::vector<Binding> inputs;
  std::vector<Binding> outputs;
};

/// A Model.metadata entry: a name and the bytes of its buffer.
struct MetadataEntry {
  std::string name;
  std::uint32_t buffer = 0;
  std::span<const std::byte> data;
  std::optional<std::uint64_t> data_offset;
};

/// One OperatorCode entry.
struct OperatorCode {
  std::int32_t builtin_code = 0;  ///< effective code
  std::string_view name;          ///< "CONV_2D", "CUSTOM", "UNKNOWN"
  std::string_view custom_code;
  std::int32_t version = 1;
};

/// An opened, validated model. Owns the mapping (or the copy of the caller's bytes).
class Model {
 public:
  /// Maps `path` read-only and validates it. The file stays open (one descriptor, close-on-exec)
  /// until the model is destroyed, so that exports can copy from it. Throws Error.
  static Model open(const std::filesystem::path& path);
  /// Copies `bytes` and validates them. Throws Error naming `label`.
  static Model from_bytes(std::span<const std::byte> bytes, std::string label = "<memory>");
  /// Non-throwing versions of the above.
  static Result<Model> try_open(const std::filesystem::path& path) noexcept;
  static Result<Model> try_from_bytes(std::span<const std::byte> bytes,
                                      std::string label = "<memory>") noexcept;

  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  ~Model();

  /// The path given to open(), or the label given to from_bytes().
  const std::string& label() const noexcept;
  /// Total bytes (FlatBuffer plus anything stored after it).
  std::uint64_t file_size() const noexcept;
  /// Where the FlatBuffer part ends: bytes past this are weights or an appended archive.
  std::uint64_t flatbuffer_size() const noexcept;
  std::uint32_t version() const;
  std::string_view description() const;
  /// The whole file, zero-copy.
  std::span<const std::byte> bytes() const noexcept;

  std::size_t subgraph_count() const;
  Subgraph subgraph(int index) const;
  ViewRange<Model, Subgraph, &Model::subgraph> subgraphs() const {
    return {this, static_cast<int>(subgraph_count())};
  }
  std::vector<OperatorCode> operator_codes() const;
  std::size_t buffer_count() const;
  std::vector<SignatureDef> signatures() const;
  std::vector<MetadataEntry> metadata() const;
  /// The bytes of the first metadata entry called `name`, if any.
  std::optional<std::span<const std::byte>> metadata(std::string_view name) const;
  /// Oddities found at open that the runtime tolerates.
  std::span<const Warning> warnings() const noexcept;

 private:
  friend const detail::ModelData& detail::data_of(const Model& model) noexcept;
  explicit Model(std::unique_ptr<detail::ModelData> data);
  std::unique_ptr<detail::ModelData> m_;
};

// ---- data_as<T> -------------------------------------------------------------------------

template <class T>
std::span<const T> Tensor::data_as() const {
  static_assert(std::is_arithmetic_v<T>, "data_as<T> needs an arithmetic T");
  if (!dtype_accepts(sizeof(T), std::is_floating_point_v<T>, std::is_signed_v<T>))
    throw std::invalid_argument("data_as: element type does not match the tensor's dtype " +
                                std::string(dtype_name(dtype())));
  const auto bytes = data();
  if (reinterpret_cast<std::uintptr_t>(bytes.data()) % alignof(T) != 0)
    throw std::invalid_argument("data_as: tensor data is not aligned for this type; copy it");
  return {reinterpret_cast<const T*>(bytes.data()), bytes.size() / sizeof(T)};
}

template <class T>
std::vector<T> Tensor::copy_as() const {
  static_assert(std::is_arithmetic_v<T>, "copy_as<T> needs an arithmetic T");
  if (!dtype_accepts(sizeof(T), std::is_floating_point_v<T>, std::is_signed_v<T>))
    throw std::invalid_argument("copy_as: element type does not match the tensor's dtype " +
                                std::string(dtype_name(dtype())));
  const auto bytes = data();
  std::vector<T> out(bytes.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

}  // namespace litelens
