// Model, Subgraph, Tensor, Operator, Quantization, Signature and ModelWarning.
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <string>

#include "common.h"
#include "litelens/decode.h"

namespace litelens::py {

namespace {

nb::tuple int_tuple(std::span<const std::int32_t> values) {
  nb::list out;
  for (auto v : values) out.append(v);
  return nb::tuple(out);
}

nb::list int_list(std::span<const std::int32_t> values) {
  nb::list out;
  for (auto v : values) out.append(v);
  return out;
}

nb::str dtype_str(const Tensor& t) {
  if (is_known(t.dtype())) return py_str(dtype_name(t.dtype()));
  return py_str("unknown(" + std::to_string(t.dtype_code()) + ")");
}

nb::object sparsity_dict(const std::optional<SparsitySpec>& spec) {
  if (!spec) return nb::none();
  nb::list levels;
  for (const auto& level : spec->levels) {
    nb::dict l;
    l["format"] = level.is_sparse ? "SPARSE_CSR" : "DENSE";
    l["dense_size"] = level.dense_size;
    if (level.is_sparse) {
      l["array_segments"] = int_list(level.segments);
      l["array_indices"] = int_list(level.indices);
    }
    levels.append(l);
  }
  nb::dict out;
  out["traversal_order"] = int_list(spec->traversal_order);
  out["block_map"] = int_list(spec->block_map);
  out["dim_metadata"] = levels;
  return out;
}

ModelPtr open_path(const std::filesystem::path& path) {
  nb::gil_scoped_release release;
  return std::make_shared<const Model>(Model::open(path));
}

ModelPtr open_buffer(nb::handle data, const std::string& label) {
  Py_buffer view;
  if (PyObject_GetBuffer(data.ptr(), &view, PyBUF_SIMPLE) != 0)
    throw nb::type_error("from_bytes() needs a bytes-like object (bytes, bytearray, memoryview)");
  struct Release {
    Py_buffer* v;
    ~Release() { PyBuffer_Release(v); }
  } guard{&view};
  nb::gil_scoped_release release;
  const std::span<const std::byte> bytes(static_cast<const std::byte*>(view.buf), static_cast<std::size_t>(view.len));
  return std::make_shared<const Model>(Model::from_bytes(bytes, label));
}

PyTensor tensor_by_key(const ModelPtr& m, nb::handle key, int subgraph) {
  const Subgraph sg = m->subgraph(subgraph);
  if (nb::isinstance<nb::int_>(key)) {
    const long long i = nb::cast<long long>(key);
    if (i < 0 || static_cast<std::size_t>(i) >= sg.tensor_count())
      throw nb::index_error(("tensor index " + std::to_string(i) + " out of range (subgraph " +
                             std::to_string(subgraph) + " has " + std::to_string(sg.tensor_count()) + " tensors)")
                                .c_str());
    return {m, subgraph, static_cast<int>(i)};
  }
  if (!nb::isinstance<nb::str>(key)) throw nb::type_error("tensor key must be an int index or a str name");
  const std::string name = nb::cast<std::string>(key);
  for (const Tensor t : sg.tensors())
    if (t.name() == name) return {m, subgraph, t.index()};
  throw nb::key_error(("no tensor named '" + name + "' in subgraph " + std::to_string(subgraph)).c_str());
}

std::vector<PyTensor> tensor_list(const ModelPtr& m, int subgraph) {
  const Subgraph sg = m->subgraph(subgraph);
  std::vector<PyTensor> out;
  out.reserve(sg.tensor_count());
  for (int i = 0; i < static_cast<int>(sg.tensor_count()); ++i) out.push_back({m, subgraph, i});
  return out;
}

std::vector<PyOperator> operator_list(const ModelPtr& m, int subgraph) {
  const Subgraph sg = m->subgraph(subgraph);
  std::vector<PyOperator> out;
  out.reserve(sg.operator_count());
  for (int i = 0; i < static_cast<int>(sg.operator_count()); ++i) out.push_back({m, subgraph, i});
  return out;
}

// Tensor.external_data: a copy of the C++ ExternalData, whose strings view the model's bytes
// (a Python object must not dangle once the model is gone).
struct PyExternalData {
  std::uint32_t id = 0;
  std::uint32_t group = 0;
  std::string group_name;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::string packing;
};

std::optional<PyExternalData> external_data_of(const PyTensor& t) {
  const auto e = t.view().external_data();
  if (!e) return std::nullopt;
  return PyExternalData{e->id, e->group, std::string(e->group_name), e->offset, e->length, std::string(e->packing)};
}

std::string tensor_repr(const PyTensor& t) {
  const Tensor v = t.view();
  std::string shape;
  for (auto d : v.shape()) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
  return "<litelens.Tensor " + std::to_string(t.index) + " '" + nb::cast<std::string>(py_str(v.name())) + "' [" +
         shape + "] " + nb::cast<std::string>(dtype_str(v)) + (v.is_constant() ? " constant" : "") + ">";
}

}  // namespace

ModelClass init_model(nb::module_& m) {
  // ---- Quantization ---------------------------------------------------------------------------
  nb::class_<Quantization>(m, "Quantization",
                           "Quantization parameters of a tensor: real = scale * (q - zero_point).\n\n"
                           "Affine quantization is per tensor (one scale) or per axis (one scale per slice\n"
                           "along ``axis``). Blockwise schemes keep their scales in other tensors.")
      .def_prop_ro("scheme", [](const Quantization& q) { return py_str(scheme_name(q.scheme)); },
                   "\"affine\", \"blockwise\", \"multi_axis\", \"custom\" or \"unknown\".")
      .def_prop_ro("scales", [](const Quantization& q) { return numpy_copy(q.scale); },
                   nb::sig("def scales(self) -> " LITELENS_F32),
                   "The scales (float32 array; one value per tensor or per slice along ``axis``).")
      .def_prop_ro("zero_points", [](const Quantization& q) { return numpy_copy(q.zero_point); },
                   nb::sig("def zero_points(self) -> numpy.typing.NDArray[numpy.int64]"),
                   "The zero points (int64 array; one value, or one per scale).")
      .def_prop_ro("axis", [](const Quantization& q) { return q.quantized_dimension; },
                   "The quantized dimension: the axis per-axis scales run along.")
      .def_prop_ro("min", [](const Quantization& q) { return numpy_copy(q.min); },
                   nb::sig("def min(self) -> " LITELENS_F32),
                   "Calibration minimum (float32 array, informational; may be empty).")
      .def_prop_ro("max", [](const Quantization& q) { return numpy_copy(q.max); },
                   nb::sig("def max(self) -> " LITELENS_F32),
                   "Calibration maximum (float32 array, informational; may be empty).")
      .def_prop_ro("is_per_axis", &Quantization::is_per_axis, "True when there is one scale per slice along ``axis``.")
      .def_prop_ro("block_size", [](const Quantization& q) { return q.block_size; },
                   "Block size of blockwise quantization (0 otherwise).")
      .def_prop_ro("scales_tensor",
                   [](const Quantization& q) { return q.scales_tensor < 0 ? std::nullopt : std::optional<int>(q.scales_tensor); },
                   "Blockwise and multi-axis schemes: the tensor holding the scales, else None.")
      .def_prop_ro("zero_points_tensor",
                   [](const Quantization& q) {
                     return q.zero_points_tensor < 0 ? std::nullopt : std::optional<int>(q.zero_points_tensor);
                   },
                   "Blockwise and multi-axis schemes: the tensor holding the zero points, or None (all zero).")
      .def("__repr__", [](const Quantization& q) {
        std::string s = "<litelens.Quantization " + std::string(scheme_name(q.scheme));
        if (q.scale.size() == 1) s += " scale=" + std::to_string(q.scale[0]);
        else if (!q.scale.empty()) s += " " + std::to_string(q.scale.size()) + " scales on axis " + std::to_string(q.quantized_dimension);
        if (q.zero_point.size() == 1) s += " zero_point=" + std::to_string(q.zero_point[0]);
        return s + ">";
      });

  // ---- ModelWarning ---------------------------------------------------------------------------
  nb::class_<Warning>(m, "ModelWarning", "Something odd in the file that the runtime tolerates (the model still opens).")
      .def_prop_ro("code", [](const Warning& w) { return py_str(w.code); }, "Short stable identifier, e.g. \"nonempty_buffer0\".")
      .def_prop_ro("message", [](const Warning& w) { return py_str(w.message); }, "One readable line.")
      .def_ro("offset", &Warning::offset, "Byte offset in the file, or None.")
      .def_prop_ro("subgraph", [](const Warning& w) -> std::optional<int> { return w.tensor < 0 ? std::nullopt : std::optional<int>(w.subgraph); },
                   "Subgraph of the tensor the warning is about, or None when it is about the model.")
      .def_prop_ro("tensor", [](const Warning& w) -> std::optional<int> { return w.tensor < 0 ? std::nullopt : std::optional<int>(w.tensor); },
                   "Index of the tensor the warning is about, or None.")
      .def("__repr__", [](const Warning& w) { return "<litelens.ModelWarning " + w.code + ": " + w.message + ">"; });

  // ---- Signature ------------------------------------------------------------------------------
  nb::class_<SignatureDef>(m, "Signature", "A named entry point of the model (a SignatureDef).")
      .def_prop_ro("key", [](const SignatureDef& s) { return py_str(s.key); }, "The signature's name.")
      .def_ro("subgraph", &SignatureDef::subgraph, "The subgraph it runs.")
      .def_prop_ro("inputs",
                   [](const SignatureDef& s) {
                     nb::dict d;
                     for (const auto& b : s.inputs) d[py_str(b.name)] = b.tensor;
                     return d;
                   },
                   nb::sig("def inputs(self) -> dict[str, int]"),
                   "Input name -> tensor index in ``subgraph``.")
      .def_prop_ro("outputs",
                   [](const SignatureDef& s) {
                     nb::dict d;
                     for (const auto& b : s.outputs) d[py_str(b.name)] = b.tensor;
                     return d;
                   },
                   nb::sig("def outputs(self) -> dict[str, int]"),
                   "Output name -> tensor index in ``subgraph``.")
      .def("__repr__", [](const SignatureDef& s) {
        return "<litelens.Signature '" + s.key + "' subgraph " + std::to_string(s.subgraph) + ">";
      });

  // ---- ExternalData ---------------------------------------------------------------------------
  nb::class_<PyExternalData>(m, "ExternalData",
                             "Where a tensor's values are when they live in an external file (schema 3d\n"
                             "ExternalBuffer in an ExternalBufferGroup). litelens never opens that file: how a\n"
                             "group name becomes a file is up to the application that wrote the model.")
      .def_ro("id", &PyExternalData::id, "The ExternalBuffer id (what the tensor's external_buffer field names).")
      .def_ro("group", &PyExternalData::group, "Index of the ExternalBufferGroup.")
      .def_prop_ro("group_name", [](const PyExternalData& e) { return py_str(e.group_name); },
                   "The group's name: a file name or URI, as written.")
      .def_ro("offset", &PyExternalData::offset, "Byte offset of the values inside that file.")
      .def_ro("length", &PyExternalData::length, "Byte length of the values.")
      .def_prop_ro("packing", [](const PyExternalData& e) { return py_str(e.packing); },
                   "Free-form packing note, as written (\"\" when absent).")
      // is_operator: comparing with another type gives NotImplemented (so False), not a TypeError.
      .def(
          "__eq__",
          [](const PyExternalData& a, const PyExternalData& b) {
            return a.id == b.id && a.group == b.group && a.group_name == b.group_name && a.offset == b.offset &&
                   a.length == b.length && a.packing == b.packing;
          },
          nb::is_operator())
      .def("__hash__",
           [](const PyExternalData& e) {
             return nb::hash(nb::make_tuple(e.id, e.group, py_str(e.group_name), e.offset, e.length, py_str(e.packing)));
           })
      .def("__repr__", [](const PyExternalData& e) {
        return "<litelens.ExternalData id=" + std::to_string(e.id) + " '" + e.group_name + "' offset=" +
               std::to_string(e.offset) + " length=" + std::to_string(e.length) + ">";
      });

  // ---- Tensor ---------------------------------------------------------------------------------
  nb::class_<PyTensor>(m, "Tensor",
                       "A tensor of a subgraph. It keeps its model's data alive.\n\n"
                       "Constant tensors (``is_constant``) carry values in the file; ``numpy()`` reads them.")
      .def_ro("subgraph", &PyTensor::subgraph, "Index of the subgraph.")
      .def_ro("index", &PyTensor::index, "Index of the tensor in its subgraph.")
      .def_prop_ro("name", [](const PyTensor& t) { return py_str(t.view().name()); }, "The tensor's name (may be empty).")
      .def_prop_ro("shape", [](const PyTensor& t) { return int_tuple(t.view().shape()); },
                   nb::sig("def shape(self) -> tuple[int, ...]"),
                   "Dimensions (row-major); () for a scalar.")
      .def_prop_ro("shape_signature", [](const PyTensor& t) { return int_tuple(t.view().shape_signature()); },
                   nb::sig("def shape_signature(self) -> tuple[int, ...]"),
                   "Dimensions with -1 where the size is known only at run time; () when fully static.")
      .def_prop_ro("dtype", [](const PyTensor& t) { return dtype_str(t.view()); },
                   "The stored element type as the schema names it, lowercase: \"float32\", \"float16\",\n"
                   "\"int8\", \"int4\", \"bfloat16\", ... (\"unknown(N)\" for codes this build does not know).")
      .def_prop_ro("buffer", [](const PyTensor& t) { return t.view().buffer(); }, "Index of the tensor's buffer.")
      .def_prop_ro("is_variable", [](const PyTensor& t) { return t.view().is_variable(); }, "True for a variable tensor.")
      .def_prop_ro("external_data", &external_data_of,
                   "Where the values are when they live in an external file (an :class:`ExternalData`\n"
                   "with id, group, group_name, offset, length and packing), or None. Such a tensor\n"
                   "has no data in this file: ``numpy()`` raises ValueError.")
      .def_prop_ro("is_constant", [](const PyTensor& t) { return t.view().is_constant(); },
                   "True when the file holds values for this tensor.")
      .def_prop_ro("is_sparse", [](const PyTensor& t) { return t.view().is_sparse(); },
                   "True when the values are stored sparse (see ``sparsity``).")
      .def_prop_ro("nbytes", [](const PyTensor& t) { return t.view().data().size(); },
                   "Stored byte count (0 without data; the compressed size for sparse tensors).")
      .def_prop_ro("data_offset", [](const PyTensor& t) { return t.view().data_offset(); },
                   "Absolute file offset of the stored bytes, or None.")
      .def("will_need", [](const PyTensor& t) { t.view().will_need(); },
           "Asks the OS to start reading the stored bytes now, in the background.\n\n"
           "Weights already get the OS's normal read-ahead when they are read (metadata is mapped\n"
           "for random access, so that opening a model reads no weights); this starts it before\n"
           "the first touch.")
      .def_prop_ro("quantization", [](const PyTensor& t) { return t.view().quantization(); },
                   "Quantization parameters, or None when the tensor is not quantized.")
      .def_prop_ro("sparsity", [](const PyTensor& t) { return sparsity_dict(t.view().sparsity()); },
                   nb::sig("def sparsity(self) -> dict[str, typing.Any] | None"),
                   "Sparsity parameters as a dict (traversal_order, block_map, dim_metadata), or None.")
      .def("numpy", [](const PyTensor& t) { return decode_to_numpy(t.model, t.view(), DecodeMode::stored); },
           nb::sig("def numpy(self) -> " LITELENS_NDARRAY),
           "The stored values as a dense NumPy array in the tensor's own dtype.\n\n"
           "Zero-copy and read-only when the stored bytes already are the dense values (the array\n"
           "keeps the model alive); a fresh array when INT4/UINT4/INT2 values are unpacked (to\n"
           "int8/uint8) or sparse values densified. float16 stays float16; bfloat16 and float8\n"
           "come out as their raw bits (uint16 / uint8): use ``dequantize()`` for float32.\n\n"
           "Raises:\n    ValueError: the tensor has no data in the file, or no numeric form (string).")
      .def("dequantize",
           [](const PyTensor& t) { return decode_to_numpy(t.model, t.view(), DecodeMode::dequantized); },
           nb::sig("def dequantize(self) -> " LITELENS_NDARRAY),
           "The values as float32: float16/bfloat16/float8/float64 converted, quantized integers\n"
           "dequantized (per tensor, per axis or blockwise), and unquantized integers and booleans\n"
           "converted to float32 too (complex values, which have no float32 form, stay as stored).")
      .def("values",
           [](const PyTensor& t, std::string_view mode) {
             return decode_to_numpy(t.model, t.view(), decode_mode_from_name(mode));
           },
           nb::arg("mode") = "stored", nb::sig("def values(self, mode: str = 'stored') -> " LITELENS_NDARRAY),
           "The values decoded as far as ``mode`` says: \"stored\" (= ``numpy()``), \"widened\"\n"
           "(float16/bfloat16/float8 widened to float32) or \"dequantized\" (float32 for every\n"
           "numeric dtype, = ``dequantize()``).")
      .def("raw", [](const PyTensor& t) { return bytes_view(t.model, t.view().data()); },
           nb::sig("def raw(self) -> " LITELENS_U8),
           "The stored bytes as a read-only uint8 array (zero-copy): packed and compressed exactly\n"
           "as in the file. Empty when the tensor has no data.")
      .def("strings",
           [](const PyTensor& t) {
             const Tensor v = t.view();
             if (v.dtype() != DType::string) throw nb::type_error("strings(): the tensor's dtype is not string");
             nb::list out;
             for (std::string_view s : split_strings(v.data())) out.append(nb::bytes(s.data(), s.size()));
             return out;
           },
           nb::sig("def strings(self) -> list[bytes]"), "The values of a STRING tensor as a list of bytes.")
      .def("__repr__", &tensor_repr);

  // ---- Operator -------------------------------------------------------------------------------
  nb::class_<PyOperator>(m, "Operator", "An operator of a subgraph, with its decoded options.")
      .def_ro("subgraph", &PyOperator::subgraph, "Index of the subgraph.")
      .def_ro("index", &PyOperator::index, "Index of the operator in its subgraph.")
      .def_prop_ro("op", [](const PyOperator& o) { return py_str(o.view().op_name()); },
                   "The builtin op name (\"CONV_2D\"), \"CUSTOM\", or \"UNKNOWN\" for codes this build does not know.")
      .def_prop_ro("opcode", [](const PyOperator& o) { return o.view().opcode(); }, "The effective builtin code.")
      .def_prop_ro("custom_code",
                   [](const PyOperator& o) -> nb::object {
                     const Operator v = o.view();
                     if (!v.is_custom()) return nb::none();
                     return py_str(v.custom_code());
                   },
                   nb::sig("def custom_code(self) -> str | None"),
                   "The custom op's name, or None for builtin ops.")
      .def_prop_ro("version", [](const PyOperator& o) { return o.view().version(); }, "The op version.")
      .def_prop_ro("inputs", [](const PyOperator& o) { return int_list(o.view().inputs()); },
                   nb::sig("def inputs(self) -> list[int]"),
                   "Input tensor indices; -1 marks an absent optional input.")
      .def_prop_ro("outputs", [](const PyOperator& o) { return int_list(o.view().outputs()); },
                   nb::sig("def outputs(self) -> list[int]"), "Output tensor indices.")
      .def_prop_ro("intermediates", [](const PyOperator& o) { return int_list(o.view().intermediates()); },
                   nb::sig("def intermediates(self) -> list[int]"),
                   "Intermediate tensor indices.")
      .def_prop_ro("options_type", [](const PyOperator& o) { return py_str(o.view().options_type()); },
                   "Name of the options table (\"Conv2DOptions\"), \"\" when there is none.")
      .def_prop_ro("options", [](const PyOperator& o) { return to_python(o.view().options()); },
                   nb::sig("def options(self) -> dict[str, typing.Any]"),
                   "Decoded options as a dict: field name -> value, enums by name (padding \"SAME\").\n"
                   "For custom ops, the FlexBuffers payload decoded (empty when absent or undecodable).")
      .def_prop_ro("custom_options",
                   [](const PyOperator& o) {
                     const auto raw = o.view().custom_options();
                     return nb::bytes(raw.data(), raw.size());
                   },
                   "The raw custom options payload (b\"\" when there is none).")
      .def("__repr__", [](const PyOperator& o) {
        const Operator v = o.view();
        return "<litelens.Operator " + std::to_string(o.index) + " " + std::string(v.op_name()) +
               (v.is_custom() ? " " + std::string(v.custom_code()) : std::string()) + ">";
      });

  // ---- Subgraph -------------------------------------------------------------------------------
  nb::class_<PySubgraph>(m, "Subgraph", "A subgraph of the model (subgraph 0 is the main one).")
      .def_ro("index", &PySubgraph::index, "Index of the subgraph.")
      .def_prop_ro("name", [](const PySubgraph& s) { return py_str(s.view().name()); }, "The subgraph's name (may be empty).")
      .def_prop_ro("inputs", [](const PySubgraph& s) { return int_list(s.view().inputs()); },
                   nb::sig("def inputs(self) -> list[int]"), "Input tensor indices.")
      .def_prop_ro("outputs", [](const PySubgraph& s) { return int_list(s.view().outputs()); },
                   nb::sig("def outputs(self) -> list[int]"), "Output tensor indices.")
      .def_prop_ro("tensor_count", [](const PySubgraph& s) { return s.view().tensor_count(); }, "Number of tensors.")
      .def_prop_ro("operator_count", [](const PySubgraph& s) { return s.view().operator_count(); }, "Number of operators.")
      .def("tensors", [](const PySubgraph& s) { return tensor_list(s.model, s.index); }, "The subgraph's tensors.")
      .def("operators", [](const PySubgraph& s) { return operator_list(s.model, s.index); }, "The subgraph's operators.")
      .def("__repr__", [](const PySubgraph& s) {
        const Subgraph v = s.view();
        return "<litelens.Subgraph " + std::to_string(s.index) + " '" + std::string(v.name()) + "' " +
               std::to_string(v.tensor_count()) + " tensors, " + std::to_string(v.operator_count()) + " operators>";
      });

  // ---- Model ----------------------------------------------------------------------------------
  ModelClass model(m, "Model", nb::is_weak_referenceable(),
                      "An opened, validated .tflite model. Use ``litelens.open()`` to get one.\n\n"
                      "The file is memory-mapped read-only (or the caller's bytes copied) and validated once;\n"
                      "afterwards nothing read from it can fail because of the file's bytes. A Model is a\n"
                      "context manager; ``close()`` drops this object's hold on the mapping, which is released\n"
                      "once no Tensor, Layer, Param or array made from it is alive.");
  model.def_static("open", [](const std::filesystem::path& path) { return PyModel{open_path(path)}; }, nb::arg("path"),
                  "Memory-maps and validates the file at ``path``.\n\nRaises:\n    Error: the file cannot be read "
                  "or is not a valid model.")
      .def_static("from_bytes", [](nb::handle data, const std::string& label) { return PyModel{open_buffer(data, label)}; },
                  nb::arg("data"), nb::arg("label") = "<memory>",
                  nb::sig("def from_bytes(data: bytes | bytearray | memoryview, label: str = '<memory>') -> Model"),
                  "Copies and validates a model held in memory; ``label`` names it in errors.\n\n"
                  "Raises:\n    Error: the bytes are not a valid model.")
      .def("close", [](PyModel& self) { self.model.reset(); },
           "Closes this model object. Arrays, tensors and layers made from it stay valid.")
      .def_prop_ro("closed", [](const PyModel& self) { return !self.model; }, "True after close().")
      .def("__enter__", [](PyModel& self) -> PyModel& { (void)self.get(); return self; }, nb::rv_policy::reference)
      .def("__exit__", [](PyModel& self, nb::handle, nb::handle, nb::handle) { self.model.reset(); },
           nb::arg("exc_type").none(), nb::arg("exc_value").none(), nb::arg("traceback").none())
      .def_prop_ro("path", [](const PyModel& self) { return py_str(self.get()->label()); },
                   "The path given to open(), or the label given to from_bytes().")
      .def_prop_ro("file_size", [](const PyModel& self) { return self.get()->file_size(); },
                   "Total bytes (the FlatBuffer plus anything stored after it).")
      .def_prop_ro("flatbuffer_size", [](const PyModel& self) { return self.get()->flatbuffer_size(); },
                   "Where the FlatBuffer part ends; bytes past it are weights or an appended archive.")
      .def_prop_ro("version", [](const PyModel& self) { return self.get()->version(); }, "The schema version (3).")
      .def_prop_ro("description", [](const PyModel& self) { return py_str(self.get()->description()); },
                   "The model's description string.")
      .def_prop_ro("subgraphs",
                   [](const PyModel& self) {
                     const ModelPtr& mp = self.get();
                     std::vector<PySubgraph> out;
                     for (int i = 0; i < static_cast<int>(mp->subgraph_count()); ++i) out.push_back({mp, i});
                     return out;
                   },
                   "The subgraphs, main graph first.")
      .def("tensors", [](const PyModel& self, int subgraph) { return tensor_list(self.get(), subgraph); },
           nb::arg("subgraph") = 0, "The tensors of a subgraph.\n\nRaises:\n    IndexError: no such subgraph.")
      .def("tensor", [](const PyModel& self, nb::handle key, int subgraph) { return tensor_by_key(self.get(), key, subgraph); },
           nb::arg("key"), nb::arg("subgraph") = 0, nb::sig("def tensor(self, key: int | str, subgraph: int = 0) -> Tensor"),
           "One tensor, by index or by name (the first with that name).\n\n"
           "Raises:\n    IndexError: bad index or subgraph.\n    KeyError: no tensor has that name.")
      .def("operators", [](const PyModel& self, int subgraph) { return operator_list(self.get(), subgraph); },
           nb::arg("subgraph") = 0, "The operators of a subgraph, in execution order.\n\nRaises:\n    IndexError: no such subgraph.")
      .def_prop_ro("signatures", [](const PyModel& self) { return self.get()->signatures(); }, "The signature defs.")
      .def_prop_ro("metadata",
                   [](const PyModel& self) {
                     nb::dict out;
                     for (const auto& e : self.get()->metadata()) {
                       nb::str key = py_str(e.name);
                       if (!out.contains(key)) out[key] = nb::bytes(e.data.data(), e.data.size());
                     }
                     return out;
                   },
                   nb::sig("def metadata(self) -> dict[str, bytes]"),
                   "The Model.metadata entries: name -> bytes (the first entry wins when a name repeats).\n"
                   "Decoded forms: ``read_model_metadata()``, ``read_conversion_metadata()``,\n"
                   "``min_runtime_version``.")
      .def_prop_ro("warnings",
                   [](const PyModel& self) {
                     const auto w = self.get()->warnings();
                     return std::vector<Warning>(w.begin(), w.end());
                   },
                   "Oddities found at open that the runtime tolerates.")
      .def("file_bytes", [](const PyModel& self) { return bytes_view(self.get(), self.get()->bytes()); },
           nb::sig("def file_bytes(self) -> " LITELENS_U8),
           "The whole file as a read-only uint8 array (zero-copy; it keeps the model alive).")
      .def("__repr__", [](const PyModel& self) {
        if (!self.model) return std::string("<litelens.Model (closed)>");
        return "<litelens.Model '" + self.model->label() + "' " + std::to_string(self.model->subgraph_count()) +
               " subgraph(s), " + std::to_string(self.model->file_size()) + " bytes>";
      });
  return model;
}

}  // namespace litelens::py
