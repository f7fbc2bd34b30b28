// Python-only adapters: strings, option values, NumPy arrays and argument parsing. No format
// logic lives here; values come decoded from the C++ library.
#include <nanobind/stl/string.h>

#include <cstdint>
#include <string>
#include <type_traits>
#include <variant>

#include "common.h"

namespace litelens::py {

const ModelPtr& PyModel::get() const {
  if (!model) throw nb::value_error("the litelens model is closed");
  return model;
}

nb::str py_str(std::string_view s) {
  PyObject* o = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace");
  if (!o) throw nb::python_error();
  return nb::steal<nb::str>(o);
}

nb::object to_python(const Value& value) {
  return std::visit(
      [](const auto& v) -> nb::object {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return nb::none();
        } else if constexpr (std::is_same_v<T, bool>) {
          return nb::bool_(v);
        } else if constexpr (std::is_same_v<T, std::int64_t> || std::is_same_v<T, std::uint64_t>) {
          return nb::int_(v);
        } else if constexpr (std::is_same_v<T, double>) {
          return nb::float_(v);
        } else if constexpr (std::is_same_v<T, std::string>) {
          return py_str(v);
        } else if constexpr (std::is_same_v<T, Value::List>) {
          nb::list out;
          for (const auto& item : v) out.append(to_python(item));
          return out;
        } else {
          nb::dict out;
          for (const auto& [key, item] : v) out[py_str(key)] = to_python(item);
          return out;
        }
      },
      value.storage());
}

namespace {

using nb::dlpack::dtype_code;

// The NumPy element type of decoded values. Types NumPy lacks keep their bits: bfloat16 as
// uint16, the float8 types as uint8 (documented on Param.numpy()).
nb::dlpack::dtype numpy_dtype(DType type) {
  auto make = [](dtype_code code, int bits) {
    nb::dlpack::dtype d;
    d.code = static_cast<std::uint8_t>(code);
    d.bits = static_cast<std::uint8_t>(bits);
    d.lanes = 1;
    return d;
  };
  switch (type) {
    case DType::float32: return make(dtype_code::Float, 32);
    case DType::float16: return make(dtype_code::Float, 16);
    case DType::float64: return make(dtype_code::Float, 64);
    case DType::int8: return make(dtype_code::Int, 8);
    case DType::int16: return make(dtype_code::Int, 16);
    case DType::int32: return make(dtype_code::Int, 32);
    case DType::int64: return make(dtype_code::Int, 64);
    case DType::uint8: return make(dtype_code::UInt, 8);
    case DType::uint16: return make(dtype_code::UInt, 16);
    case DType::uint32: return make(dtype_code::UInt, 32);
    case DType::uint64: return make(dtype_code::UInt, 64);
    case DType::bool_: return make(dtype_code::Bool, 8);
    case DType::complex64: return make(dtype_code::Complex, 64);
    case DType::complex128: return make(dtype_code::Complex, 128);
    case DType::bfloat16: return make(dtype_code::UInt, 16);
    case DType::float8_e4m3fn:
    case DType::float8_e5m2: return make(dtype_code::UInt, 8);
    default:
      throw nb::type_error(("litelens: " + std::string(dtype_name(type)) + " values have no NumPy form").c_str());
  }
}

const std::byte kEmpty[8] = {};

}  // namespace

nb::object to_numpy(const ModelPtr& model, const Array& array) {
  const nb::dlpack::dtype dtype = numpy_dtype(array.dtype());
  std::vector<std::size_t> shape(array.shape().begin(), array.shape().end());
  const void* data = array.bytes().empty() ? static_cast<const void*>(kEmpty) : array.bytes().data();
  if (array.is_borrowed()) {
    // Zero-copy: the array views the model's bytes and keeps the model alive.
    nb::capsule owner(new ModelPtr(model), [](void* p) noexcept { delete static_cast<ModelPtr*>(p); });
    return nb::cast(nb::ndarray<nb::numpy, nb::ro>(data, shape.size(), shape.data(), owner, nullptr, dtype));
  }
  // Freshly decoded: the NumPy array takes over the Array's storage.
  using Storage = std::shared_ptr<std::vector<std::byte>>;
  nb::capsule owner(new Storage(array.storage()), [](void* p) noexcept { delete static_cast<Storage*>(p); });
  return nb::cast(
      nb::ndarray<nb::numpy>(const_cast<void*>(data), shape.size(), shape.data(), owner, nullptr, dtype));
}

nb::object bytes_view(const ModelPtr& model, std::span<const std::byte> bytes) {
  return to_numpy(model, Array::borrow(DType::uint8, {static_cast<std::int64_t>(bytes.size())}, bytes));
}

DecodeMode decode_mode_from_name(std::string_view name) {
  if (name == "stored") return DecodeMode::stored;
  if (name == "widened") return DecodeMode::widened;
  if (name == "dequantized") return DecodeMode::dequantized;
  throw nb::value_error(
      ("unknown decode mode '" + std::string(name) + "' (expected stored, widened or dequantized)").c_str());
}

Framework layout_from_name(std::string_view name) {
  try {
    return framework_from_name(name);
  } catch (const std::invalid_argument& e) {
    throw nb::value_error(e.what());
  }
}

nb::object decode_to_numpy(const ModelPtr& model, const Tensor& tensor, DecodeMode mode) {
  Array values;
  {
    nb::gil_scoped_release release;
    values = decode(*model, tensor, mode);
  }
  return to_numpy(model, values);
}

LayerQuery make_query(nb::handle op, const std::optional<std::string>& name, std::optional<int> index,
                      std::optional<int> subgraph, bool exact, bool first) {
  LayerQuery q;
  if (!op.is_none()) {
    if (nb::isinstance<nb::str>(op)) {
      q.ops.push_back(nb::cast<std::string>(op));
    } else {
      for (nb::handle item : op) {
        if (!nb::isinstance<nb::str>(item)) throw nb::type_error("op must be a str or a sequence of str");
        q.ops.push_back(nb::cast<std::string>(item));
      }
    }
  }
  if (name) q.name = *name;
  q.exact = exact;
  q.first = first;
  q.index = index;
  q.subgraph = subgraph;
  if (index && *index < 0) throw nb::index_error("index must not be negative");
  if (subgraph && *subgraph < 0) throw nb::index_error("subgraph must not be negative");
  return q;
}

}  // namespace litelens::py
