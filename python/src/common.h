// Shared pieces of the litelens Python bindings.
//
// Ownership: the C++ Model lives in a shared_ptr. The Python Model object holds one reference;
// every object derived from it (Tensor, Operator, Layer, Param) and every NumPy array that views
// the model's bytes holds another (arrays through a capsule owner). Model.close() drops only the
// Python Model's reference, so nothing derived from it can dangle: the mapping goes away when
// the last user does.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string_view.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "litelens/array.h"
#include "litelens/layer.h"
#include "litelens/model.h"
#include "litelens/value.h"

namespace litelens::py {

namespace nb = nanobind;

// Return annotations for the generated stub (python/litelens/_litelens.pyi).
#define LITELENS_NDARRAY "numpy.typing.NDArray[typing.Any]"
#define LITELENS_F32 "numpy.typing.NDArray[numpy.float32]"
#define LITELENS_U8 "numpy.typing.NDArray[numpy.uint8]"

using ModelPtr = std::shared_ptr<const Model>;

/// The Python Model object.
struct PyModel {
  ModelPtr model;

  /// The open model; raises ValueError once close() has run.
  const ModelPtr& get() const;
};

/// A subgraph, tensor or operator of a model: the model and the indices.
struct PySubgraph {
  ModelPtr model;
  int index = 0;
  Subgraph view() const { return model->subgraph(index); }
};

struct PyTensor {
  ModelPtr model;
  int subgraph = 0;
  int index = 0;
  Tensor view() const { return model->subgraph(subgraph).tensor(index); }
};

struct PyOperator {
  ModelPtr model;
  int subgraph = 0;
  int index = 0;
  Operator view() const { return model->subgraph(subgraph).op(index); }
};

/// A layer (shared by its Param objects, which need it for decoding).
struct PyLayer {
  ModelPtr model;
  std::shared_ptr<const Layer> layer;
};

struct PyParam {
  ModelPtr model;
  std::shared_ptr<const Layer> layer;
  std::size_t position = 0;  ///< index into layer->params
  const Param& param() const { return layer->params[position]; }
};

// ---- conversions (convert.cpp) ---------------------------------------------------------------

/// A Python str from bytes of the file: UTF-8, with invalid sequences replaced (never raises).
nb::str py_str(std::string_view s);

/// A decoded option value as plain Python data (dict, list, str, int, float, bool, None).
nb::object to_python(const Value& value);

/// An Array as a NumPy array. Borrowed arrays become read-only zero-copy views whose owner keeps
/// `model` alive; owned arrays hand their storage to the NumPy array (no copy) and are writable.
/// bfloat16 and float8 values come out as their raw bits (uint16 / uint8).
nb::object to_numpy(const ModelPtr& model, const Array& array);

/// Read-only uint8 view of model bytes (zero-copy, keeps `model` alive).
nb::object bytes_view(const ModelPtr& model, std::span<const std::byte> bytes);

/// A fresh 1-D NumPy array holding a copy of `values` (quantization vectors and the like).
template <class T>
nb::object numpy_copy(const std::vector<T>& values) {
  auto* storage = new std::vector<T>(values);
  storage->reserve(1);  // a non-null data pointer even when empty
  nb::capsule owner(storage, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  const std::size_t shape[1] = {values.size()};
  return nb::cast(nb::ndarray<nb::numpy, T>(storage->data(), 1, shape, owner));
}

/// "stored", "widened" or "dequantized"; ValueError otherwise.
DecodeMode decode_mode_from_name(std::string_view name);

/// "tflite", "keras" or "torch"; ValueError otherwise.
Framework layout_from_name(std::string_view name);

/// Decodes a tensor's values with the GIL released and wraps them as NumPy.
nb::object decode_to_numpy(const ModelPtr& model, const Tensor& tensor, DecodeMode mode);

/// A LayerQuery from the Python keyword arguments of Model.layers() and the export functions.
LayerQuery make_query(nb::handle op, const std::optional<std::string>& name, std::optional<int> index,
                      std::optional<int> subgraph, bool exact, bool first = false);

/// Wraps a Layer for Python.
PyLayer wrap_layer(const ModelPtr& model, Layer layer);

// ---- module parts ------------------------------------------------------------------------------

using ModelClass = nb::class_<PyModel>;

void init_errors(nb::module_& m);
ModelClass init_model(nb::module_& m);
void init_layers(nb::module_& m, ModelClass& model);
void init_export(nb::module_& m, ModelClass& model);
void init_metadata(nb::module_& m, ModelClass& model);
void init_patch(nb::module_& m, ModelClass& model);

}  // namespace litelens::py
