// Patching and diffing, mirroring `litelens patch` and `litelens diff`: Model.patch(),
// Model.patch_bytes(), Model.patch_from_export(), Model.diff() and the classes of their results.
//
// The bindings only adapt arguments: NumPy arrays become owned litelens Arrays (dtype by NumPy
// name, which litelens shares), quantization mappings go through the C++ parser as JSON, and
// everything about formats, selectors, conversions and checks happens in the library.
// PatchError becomes litelens.PatchError (a ValueError; an unknown selector raises
// litelens.UnknownSelectorError, also a KeyError), with the kind's name as `kind`; both classes
// are defined in litelens/__init__.py. litelens::Error stays litelens.Error.
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstring>
#include <string>

#include "common.h"
#include "litelens/diff.h"
#include "litelens/patch.h"

// A read-only str property for a std::string field of T (strings from files may be invalid UTF-8).
#define LITELENS_STR(T, field, doc) def_prop_ro(#field, [](const T& v) { return py_str(v.field); }, doc)
// A read-only list[str] property for a std::vector<std::string> field of T.
#define LITELENS_STRS(T, field, doc) \
  def_prop_ro(#field, [](const T& v) { return str_list(v.field); }, nb::sig("def " #field "(self) -> list[str]"), doc)

namespace litelens::py {

namespace {

PyObject* g_patch_error = nullptr;
PyObject* g_selector_error = nullptr;

void translate_patch_error(const std::exception_ptr& p, void*) {
  try {
    std::rethrow_exception(p);
  } catch (const PatchError& e) {
    const bool unknown = e.kind() == PatchError::Kind::unknown_selector;
    PyObject* type = unknown ? g_selector_error : g_patch_error;
    if (!type) type = unknown ? PyExc_KeyError : PyExc_ValueError;  // before the package registered its classes
    nb::object instance = nb::handle(type)(py_str(e.what()));
    instance.attr("kind") = py_str(patch_error_kind_name(e.kind()));
    PyErr_SetObject(type, instance.ptr());
  }
}

nb::list str_list(const std::vector<std::string>& values) {
  nb::list out;
  for (const auto& s : values) out.append(py_str(s));
  return out;
}

template <class T>
nb::tuple int_tuple(const std::vector<T>& values) {
  nb::list out;
  for (auto v : values) out.append(v);
  return nb::tuple(out);
}

// ---- arguments --------------------------------------------------------------------------------

std::string selector_of(nb::handle key) {
  if (!nb::isinstance<nb::str>(key))
    throw nb::type_error("patch selectors must be str: a tensor name, \"#N\" or \"<layer key>/<role>\"");
  return nb::cast<std::string>(key);
}

// The stored dtype of what `selector` leads to, or nullopt when it cannot be resolved here (the
// patch itself then reports why).
std::optional<DType> stored_dtype(const Model& model, const std::string& selector, std::optional<int> subgraph) {
  try {
    const PatchTarget target = resolve_selector(model, selector, subgraph);
    if (target.tensor < 0) return std::nullopt;
    return model.subgraph(target.subgraph).tensor(target.tensor).dtype();
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// A NumPy array (or anything np.asarray takes) as an owned Array. The dtype is the
// litelens dtype of the same name (float16 -> float16, bool -> bool; ml_dtypes' bfloat16 and
// float8 types too). The raw-bit forms numpy() returns for bfloat16 and float8 constants
// (uint16 / uint8) are taken back as those types when the target is stored so.
Array array_from_numpy(nb::handle values, const Model& model, const std::string& selector, std::optional<int> subgraph) {
  nb::module_ np = nb::module_::import_("numpy");
  // np.asarray(order="C") is np.ascontiguousarray without its promotion of scalars to shape (1,).
  const auto contiguous = [&](nb::handle a) { return np.attr("asarray")(a, nb::arg("order") = "C"); };
  nb::object arr = contiguous(values);
  if (!nb::cast<bool>(arr.attr("dtype").attr("isnative")))
    arr = contiguous(arr.attr("astype")(arr.attr("dtype").attr("newbyteorder")("=")));
  const std::string name = nb::cast<std::string>(arr.attr("dtype").attr("name"));
  std::optional<DType> dtype = dtype_from_name(name);
  if (dtype && is_packed(*dtype)) {  // ml_dtypes int4/uint4/int2: one element per byte, as litelens takes them
    const bool is_unsigned = *dtype == DType::uint4;
    arr = contiguous(arr.attr("astype")(is_unsigned ? "uint8" : "int8"));
    dtype = is_unsigned ? DType::uint8 : DType::int8;
  }
  const std::size_t itemsize = nb::cast<std::size_t>(arr.attr("dtype").attr("itemsize"));
  if (!dtype || dtype_info(*dtype).bits == 0 || dtype_info(*dtype).bits != itemsize * 8)
    throw nb::type_error(("patch values for '" + selector + "': NumPy dtype " + name + " has no litelens form").c_str());
  if (*dtype == DType::uint16 || *dtype == DType::uint8) {
    const auto stored = stored_dtype(model, selector, subgraph);
    if (stored && dtype_info(*stored).bits == dtype_info(*dtype).bits &&
        (*stored == DType::bfloat16 || *stored == DType::float8_e4m3fn || *stored == DType::float8_e5m2))
      dtype = stored;
  }
  std::vector<std::int64_t> shape;
  for (nb::handle d : arr.attr("shape")) shape.push_back(nb::cast<std::int64_t>(d));
  const std::size_t nbytes = nb::cast<std::size_t>(arr.attr("nbytes"));
  nb::tuple data = nb::cast<nb::tuple>(arr.attr("__array_interface__")["data"]);
  const auto address = nb::cast<std::uintptr_t>(data[0]);
  std::vector<std::byte> bytes(nbytes);
  if (nbytes) std::memcpy(bytes.data(), reinterpret_cast<const void*>(address), nbytes);
  return Array::own(*dtype, std::move(shape), std::move(bytes));
}

// A quantization value as the JSON form parse_quant_spec() reads: a mapping ({"scale": [...],
// "zero_point": [...], "axis": 0, "min": [...], "max": [...]}, NumPy values allowed), a
// Quantization (another tensor's), or the --set-quant text.
QuantUpdate quant_update(const std::string& selector, nb::handle spec) {
  if (nb::isinstance<nb::str>(spec)) return parse_quant_spec(selector, nb::cast<std::string>(spec));
  nb::dict fields;
  if (nb::isinstance<Quantization>(spec)) {
    const auto& q = nb::cast<const Quantization&>(spec);
    fields["scheme"] = py_str(scheme_name(q.scheme));
    fields["scale"] = nb::cast(q.scale);
    fields["zero_point"] = nb::cast(q.zero_point);
    fields["quantized_dimension"] = q.quantized_dimension;
    if (!q.min.empty()) fields["min"] = nb::cast(q.min);
    if (!q.max.empty()) fields["max"] = nb::cast(q.max);
  } else if (nb::hasattr(spec, "items")) {
    fields = nb::borrow<nb::dict>(nb::module_::import_("builtins").attr("dict")(spec));
  } else {
    throw nb::type_error(("quantization for '" + selector +
                          "' must be a mapping (scale, zero_point, axis, min, max), a Quantization or a str")
                             .c_str());
  }
  nb::object tolist = nb::cpp_function([](nb::handle o) -> nb::object {
    if (!nb::hasattr(o, "tolist"))
      throw nb::type_error(("quantization values must be numbers or lists of numbers, not " +
                            nb::cast<std::string>(nb::str(o.type().attr("__name__"))))
                               .c_str());
    return o.attr("tolist")();
  });
  nb::module_ json = nb::module_::import_("json");
  const std::string text = nb::cast<std::string>(json.attr("dumps")(fields, nb::arg("default") = tolist));
  return parse_quant_spec(selector, text);
}

std::optional<int> check_subgraph(std::optional<int> subgraph) {
  if (subgraph && *subgraph < 0) throw nb::index_error("subgraph must not be negative");
  return subgraph;
}

PatchSpec make_spec(const Model& model, nb::handle values, nb::handle quantization, std::string_view layout,
                    bool quantize, std::optional<int> subgraph) {
  PatchSpec spec;
  const Framework framework = layout_from_name(layout);
  if (!values.is_none()) {
    if (!nb::hasattr(values, "items")) throw nb::type_error("values must be a mapping of selector -> array");
    for (nb::handle item : values.attr("items")()) {
      ValueUpdate u;
      u.selector = selector_of(item[0]);
      u.values = array_from_numpy(item[1], model, u.selector, subgraph);
      u.layout = framework;
      u.quantize = quantize;
      u.source = "values['" + u.selector + "']";
      spec.values.push_back(std::move(u));
    }
  }
  if (!quantization.is_none()) {
    if (!nb::hasattr(quantization, "items")) throw nb::type_error("quantization must be a mapping of selector -> parameters");
    for (nb::handle item : quantization.attr("items")()) {
      const std::string selector = selector_of(item[0]);
      spec.quantization.push_back(quant_update(selector, item[1]));
    }
  }
  if (spec.values.empty() && spec.quantization.empty())
    throw nb::value_error("patch: nothing to do (give values or quantization)");
  return spec;
}

PatchOptions make_patch_options(bool quantize, std::optional<int> subgraph, bool in_place) {
  PatchOptions options;
  options.quantize = quantize;
  options.subgraph = check_subgraph(subgraph);
  options.in_place = in_place;
  return options;
}

// ---- reprs ---------------------------------------------------------------------------------------

std::string report_repr(const PatchReport& r) {
  std::size_t changed = 0;
  for (const auto& t : r.tensors) changed += !t.unchanged;
  return "<litelens.PatchReport " + std::to_string(r.tensors.size()) + " tensor(s), " + std::to_string(changed) +
         " changed, " + std::to_string(r.output_size) + " bytes" +
         (r.warnings.empty() ? std::string() : ", " + std::to_string(r.warnings.size()) + " warning(s)") + ">";
}

std::string info_text(const std::optional<ParamInfo>& i) {
  if (!i) return "-";
  std::string shape;
  for (auto d : i->shape) shape += (shape.empty() ? "" : ",") + std::to_string(d);
  return "[" + shape + "] " + std::string(dtype_name(i->dtype));
}

constexpr const char* kPatchArgsDoc =
    "    values: selector -> new values (a NumPy array or anything ``numpy.asarray`` takes).\n"
    "        A selector is a tensor name, ``\"#N\"`` (tensor N of ``subgraph``, default 0) or\n"
    "        ``\"<layer key>/<role>\"`` (``\"sg0.op12.CONV_2D/filter\"``); one that names the\n"
    "        output of DEQUANTIZE or DENSIFY patches the constant behind it. The array must have\n"
    "        the stored shape and the stored dtype, or one litelens converts: float32 for float16\n"
    "        and bfloat16 (narrowed), int8/uint8 for int4/int2/uint4 (packed), float32 for a\n"
    "        quantized tensor with ``quantize=True``. bfloat16 and float8 constants also take the\n"
    "        raw bits ``numpy()`` returns (uint16 / uint8).\n"
    "    quantization: selector -> new affine parameters: a mapping with ``scale`` (required),\n"
    "        ``zero_point``, ``axis``, ``min``, ``max``; a :class:`Quantization`; or the CLI's\n"
    "        ``--set-quant`` text. The stored integers are kept (give values with\n"
    "        ``quantize=True`` too to re-quantize).\n"
    "    quantize: quantize float32 values for quantized integer tensors with the tensor's\n"
    "        (possibly new) scales and zero points.\n"
    "    layout: the layout of ``values`` for layer-key selectors: \"tflite\", \"keras\" or \"torch\".\n"
    "    subgraph: where names and ``#N`` are looked up (names: every subgraph by default).\n";

constexpr const char* kPatchRaisesDoc =
    "Raises:\n"
    "    UnknownSelectorError: a selector matches nothing (a ``KeyError``; the message lists close\n"
    "        names).\n"
    "    PatchError: the patch cannot be applied as asked (a ``ValueError``; ``kind`` says why:\n"
    "        \"shape_mismatch\", \"dtype_mismatch\", \"value_out_of_range\", ...). Nothing is written.\n"
    "    Error: the model cannot be read, or the output cannot be written (kind \"output\").\n"
    "    TypeError: a value has no litelens dtype, or an argument has the wrong type.\n";

}  // namespace

void init_patch(nb::module_& m, ModelClass& model) {
  // ---- exceptions -----------------------------------------------------------------------------
  // The classes are defined in Python (litelens/__init__.py), which hands them over here.
  m.def("_register_patch_errors", [](nb::handle patch_error, nb::handle selector_error) {
    if (!PyType_Check(patch_error.ptr()) || !PyType_Check(selector_error.ptr()))
      throw nb::type_error("_register_patch_errors() takes two exception classes");
    Py_XDECREF(g_patch_error);
    Py_XDECREF(g_selector_error);
    g_patch_error = patch_error.inc_ref().ptr();       // kept for the interpreter's lifetime
    g_selector_error = selector_error.inc_ref().ptr();
  });
  nb::register_exception_translator(translate_patch_error);

  // ---- patch report ---------------------------------------------------------------------------
  nb::class_<PatchedTensor>(m, "PatchedTensor", "One tensor a patch changed (or left alone because the new bytes equal the old).")
      .LITELENS_STR(PatchedTensor, selector, "The selector that led here.")
      .def_ro("subgraph", &PatchedTensor::subgraph, "Index of the subgraph.")
      .def_ro("tensor", &PatchedTensor::tensor, "Index of the stored tensor that changed.")
      .LITELENS_STR(PatchedTensor, name, "The stored tensor's name.")
      .LITELENS_STRS(PatchedTensor, via, "DEQUANTIZE / DENSIFY ops followed from the selected tensor to the stored one.")
      .def_ro("values", &PatchedTensor::values, "True when new values were given.")
      .def_ro("quantization", &PatchedTensor::quantization, "True when new quantization parameters were given.")
      .def_ro("unchanged", &PatchedTensor::unchanged,
              "True when the new bytes equal the stored ones (and the quantization did not change).")
      .LITELENS_STR(PatchedTensor, conversion,
                    "How the values were stored: \"copied\", \"quantized\", \"narrowed to float16\", \"packed to int4\", ...")
      .def_ro("buffer", &PatchedTensor::buffer, "The buffer holding the values afterwards.")
      .def_ro("split", &PatchedTensor::split, "True when the tensor got a new buffer because the old one is shared.")
      .def_ro("bytes", &PatchedTensor::bytes, "Stored bytes written.")
      .def_ro("clamped", &PatchedTensor::clamped, "Quantized values clamped to the type's range.")
      .def("__repr__", [](const PatchedTensor& t) {
        return "<litelens.PatchedTensor sg" + std::to_string(t.subgraph) + " #" + std::to_string(t.tensor) + " '" +
               t.name + "'" + (t.unchanged ? " unchanged" : t.conversion.empty() ? "" : " " + t.conversion) + ">";
      });

  nb::class_<PatchReport>(m, "PatchReport", "What a patch wrote.")
      .def_ro("tensors", &PatchReport::tensors, "The patched tensors (PatchedTensor), in the order given.")
      .LITELENS_STRS(PatchReport, warnings, "One line per warning (buffer splits, clamped values, dropped trailing bytes).")
      .def_ro("output_size", &PatchReport::output_size, "Bytes of the patched model.")
      .def_ro("flatbuffer_size", &PatchReport::flatbuffer_size, "Bytes of its FlatBuffer part.")
      .def_ro("archive", &PatchReport::archive, "True when an associated-file archive was carried over.")
      .def_ro("archive_offsets_rewritten", &PatchReport::archive_offsets_rewritten,
              "True when the archive's absolute offsets were moved.")
      .def_ro("outside_payloads", &PatchReport::outside_payloads, "Buffers written after the FlatBuffer.")
      .def("__repr__", &report_repr);

  // ---- diff results ---------------------------------------------------------------------------
  nb::class_<ValueComparison>(m, "ValueComparison",
                              "How close two parameters' values are, compared as float64 after dequantization\n"
                              "(A is the reference).")
      .def_ro("count", &ValueComparison::count, "Elements compared.")
      .def_ro("differing", &ValueComparison::differing, "Elements that differ.")
      .def_ro("nan_mismatch", &ValueComparison::nan_mismatch, "Pairs where exactly one side is NaN (left out of the metrics).")
      .def_ro("max_abs_diff", &ValueComparison::max_abs_diff, "max |a - b|.")
      .def_ro("rel_error", &ValueComparison::rel_error, "||a - b|| / ||a|| (0 when equal; inf when ||a|| is 0 and b is not).")
      .def_ro("cosine", &ValueComparison::cosine, "a.b / (||a|| ||b||) (1 when both are all zero; 0 when exactly one is).")
      .def_ro("norm_a", &ValueComparison::norm_a, "||a||.")
      .def_ro("norm_b", &ValueComparison::norm_b, "||b||.")
      .def("__repr__", [](const ValueComparison& c) {
        return "<litelens.ValueComparison " + std::to_string(c.differing) + "/" + std::to_string(c.count) +
               " differ, max_abs_diff=" + std::to_string(c.max_abs_diff) + ">";
      });

  nb::class_<ParamInfo>(m, "ParamInfo", "One side of a compared parameter: the stored tensor (or the op's input).")
      .def_ro("tensor", &ParamInfo::tensor, "The stored tensor's index (the op input's when fed at run time).")
      .LITELENS_STR(ParamInfo, name, "The tensor's name.")
      .def_prop_ro("shape", [](const ParamInfo& i) { return int_tuple(i.shape); }, nb::sig("def shape(self) -> tuple[int, ...]"),
                   "The stored shape.")
      .def_prop_ro("dtype", [](const ParamInfo& i) { return py_str(dtype_name(i.dtype)); }, "The stored dtype (\"float16\", ...).")
      .def_ro("quantization", &ParamInfo::quantization, "Quantization parameters, or None.")
      .LITELENS_STRS(ParamInfo, via, "Ops followed to the stored tensor (\"DEQUANTIZE\", \"DENSIFY\").")
      .def_ro("runtime", &ParamInfo::runtime, "True when the values are not in the file.")
      .def("__repr__", [](const ParamInfo& i) { return "<litelens.ParamInfo #" + std::to_string(i.tensor) + " '" + i.name + "' " + info_text(i) + ">"; });

  nb::class_<ParamDiff>(m, "ParamDiff", "One parameter (by role) of a matched layer pair.")
      .LITELENS_STR(ParamDiff, role, "\"filter\", \"bias\", ...")
      .def_ro("a", &ParamDiff::a, "The parameter in A (ParamInfo), or None when only B has it.")
      .def_ro("b", &ParamDiff::b, "The parameter in B (ParamInfo), or None when only A has it.")
      .def_ro("shape_changed", &ParamDiff::shape_changed, "The shapes differ.")
      .def_ro("dtype_changed", &ParamDiff::dtype_changed, "The stored dtypes differ.")
      .def_ro("quantization_changed", &ParamDiff::quantization_changed,
              "The quantization differs (scheme, scales, zero points or axis).")
      .def_ro("values", &ParamDiff::values,
              "The value comparison (ValueComparison), or None when the values were not compared (see ``note``).")
      .def_ro("bytes_equal", &ParamDiff::bytes_equal, "Stored bytes equal, for constants compared as bytes (strings, values that cannot be decoded); else None.")
      .def_prop_ro("note", [](const ParamDiff& p) -> nb::object { return p.note.empty() ? nb::none() : nb::object(py_str(p.note)); },
                   nb::sig("def note(self) -> str | None"), "Why the values were not compared, or None.")
      .def_prop_ro("identical", &ParamDiff::identical, "Same shape, dtype, quantization and values.")
      .def("__repr__", [](const ParamDiff& p) {
        std::string s = "<litelens.ParamDiff " + p.role + " " + info_text(p.a) + " -> " + info_text(p.b);
        if (p.identical()) return s + " identical>";
        if (p.shape_changed) s += " shape";
        if (p.dtype_changed) s += " dtype";
        if (p.quantization_changed) s += " quantization";
        if (p.values) s += " max_abs_diff=" + std::to_string(p.values->max_abs_diff);
        return s + ">";
      });

  nb::class_<LayerRef>(m, "LayerRef", "A layer of one of the compared models.")
      .def_ro("subgraph", &LayerRef::subgraph, "Index of the subgraph.")
      .def_ro("index", &LayerRef::index, "The operator's index.")
      .LITELENS_STR(LayerRef, key, "The layer key (\"sg0.op12.CONV_2D\").")
      .LITELENS_STR(LayerRef, op, "The op name.")
      .LITELENS_STR(LayerRef, name, "The layer's name.")
      .def("__repr__", [](const LayerRef& r) { return "<litelens.LayerRef " + r.key + " '" + r.name + "'>"; });

  nb::class_<LayerDiff>(m, "LayerDiff", "A matched pair of layers and their parameters compared.")
      .def_ro("a", &LayerDiff::a, "The layer in A (LayerRef).")
      .def_ro("b", &LayerDiff::b, "The layer in B (LayerRef).")
      .LITELENS_STR(LayerDiff, matched_by, "\"name\", \"normalized_name\", \"name_stem\" or \"position\".")
      .def_ro("params", &LayerDiff::params, "The parameters (ParamDiff), A's roles first.")
      .def_prop_ro("identical", &LayerDiff::identical, "Same op and every parameter identical.")
      .def("__repr__", [](const LayerDiff& l) {
        return "<litelens.LayerDiff " + l.a.key + " <-> " + l.b.key + " by " + l.matched_by +
               (l.identical() ? " identical" : " differs") + ">";
      });

  nb::class_<ModelDiff>(m, "ModelDiff",
                        "The result of ``diff()``: the matched layers (iterate it, index it, or use ``layers``)\n"
                        "and the layers found on one side only.")
      .def_ro("layers", &ModelDiff::layers, "The matched layers (LayerDiff), in A's order.")
      .def_ro("only_in_a", &ModelDiff::only_in_a, "Layers of A without a match (LayerRef).")
      .def_ro("only_in_b", &ModelDiff::only_in_b, "Layers of B without a match (LayerRef).")
      .def_ro("subgraphs_a", &ModelDiff::subgraphs_a, "Subgraph count of A.")
      .def_ro("subgraphs_b", &ModelDiff::subgraphs_b, "Subgraph count of B.")
      .def("__len__", [](const ModelDiff& d) { return d.layers.size(); })
      .def("__getitem__",
           [](const ModelDiff& d, long long i) -> const LayerDiff& {
             const auto n = static_cast<long long>(d.layers.size());
             if (i < 0) i += n;
             if (i < 0 || i >= n) throw nb::index_error("layer diff index out of range");
             return d.layers[static_cast<std::size_t>(i)];
           },
           nb::rv_policy::reference_internal)
      .def("__iter__", [](nb::handle self) { return nb::iter(self.attr("layers")); },
           nb::sig("def __iter__(self) -> collections.abc.Iterator[LayerDiff]"))
      .def("__repr__", [](const ModelDiff& d) {
        std::size_t differ = 0;
        for (const auto& l : d.layers) differ += !l.identical();
        return "<litelens.ModelDiff " + std::to_string(d.layers.size()) + " layers matched, " + std::to_string(differ) +
               " differ, " + std::to_string(d.only_in_a.size()) + " only in A, " + std::to_string(d.only_in_b.size()) +
               " only in B>";
      });

  // ---- Model methods --------------------------------------------------------------------------
  model
      .def(
          "patch",
          [](const PyModel& self, const std::filesystem::path& output, nb::handle values, nb::handle quantization,
             bool quantize, std::string_view layout, std::optional<int> subgraph, bool in_place) {
            const ModelPtr& mp = self.get();
            const PatchOptions options = make_patch_options(quantize, subgraph, in_place);
            const PatchSpec spec = make_spec(*mp, values, quantization, layout, quantize, options.subgraph);
            nb::gil_scoped_release release;
            return patch_model(*mp, spec, output, options);
          },
          nb::arg("output"), nb::arg("values") = nb::none(), nb::arg("quantization") = nb::none(), nb::kw_only(),
          nb::arg("quantize") = false, nb::arg("layout") = "tflite", nb::arg("subgraph") = nb::none(),
          nb::arg("in_place") = false,
          nb::sig("def patch(self, output: str | os.PathLike[str], "
                  "values: collections.abc.Mapping[str, numpy.typing.ArrayLike] | None = None, "
                  "quantization: collections.abc.Mapping[str, collections.abc.Mapping[str, typing.Any] | Quantization | str] | None = None, "
                  "*, quantize: bool = False, layout: str = 'tflite', subgraph: int | None = None, "
                  "in_place: bool = False) -> PatchReport"),
          (std::string("Writes a copy of the model with new constant values and/or quantization\n"
                       "parameters, like ``litelens patch``. Everything else is kept byte for byte.\n\n"
                       "The output is written to a temporary file, re-opened, validated and compared with\n"
                       "this model, and only then renamed into place. This model is never modified.\n\n"
                       "Args:\n"
                       "    output: the patched model's path.\n") +
           kPatchArgsDoc +
           "    in_place: allow ``output`` to be this model's own file (still atomic).\n\n"
           "Returns:\n    A PatchReport (patched tensors, warnings, output size).\n\n" + kPatchRaisesDoc)
              .c_str())
      .def(
          "patch_bytes",
          [](const PyModel& self, nb::handle values, nb::handle quantization, bool quantize, std::string_view layout,
             std::optional<int> subgraph) {
            const ModelPtr& mp = self.get();
            const PatchOptions options = make_patch_options(quantize, subgraph, false);
            const PatchSpec spec = make_spec(*mp, values, quantization, layout, quantize, options.subgraph);
            std::vector<std::byte> out;
            {
              nb::gil_scoped_release release;
              out = patch_to_memory(*mp, spec, options);
            }
            return nb::bytes(out.data(), out.size());
          },
          nb::arg("values") = nb::none(), nb::arg("quantization") = nb::none(), nb::kw_only(),
          nb::arg("quantize") = false, nb::arg("layout") = "tflite", nb::arg("subgraph") = nb::none(),
          nb::sig("def patch_bytes(self, values: collections.abc.Mapping[str, numpy.typing.ArrayLike] | None = None, "
                  "quantization: collections.abc.Mapping[str, collections.abc.Mapping[str, typing.Any] | Quantization | str] | None = None, "
                  "*, quantize: bool = False, layout: str = 'tflite', subgraph: int | None = None) -> bytes"),
          (std::string("The same patch as ``patch()``, returned as the patched model's bytes (validated and\n"
                       "compared with this model like a file).\n\n"
                       "Args:\n") +
           kPatchArgsDoc + "\n" + kPatchRaisesDoc)
              .c_str())
      .def(
          "patch_from_export",
          [](const PyModel& self, const std::filesystem::path& output, const std::filesystem::path& export_file,
             std::optional<std::filesystem::path> manifest, bool quantize, std::optional<int> subgraph, bool in_place) {
            const ModelPtr& mp = self.get();
            const PatchOptions options = make_patch_options(quantize, subgraph, in_place);
            nb::gil_scoped_release release;
            PatchSpec spec;
            spec.values = updates_from_export(*mp, export_file, manifest.value_or(std::filesystem::path()));
            return patch_model(*mp, spec, output, options);
          },
          nb::arg("output"), nb::arg("export_file"), nb::kw_only(), nb::arg("manifest") = nb::none(),
          nb::arg("quantize") = false, nb::arg("subgraph") = nb::none(), nb::arg("in_place") = false,
          nb::sig("def patch_from_export(self, output: str | os.PathLike[str], export_file: str | os.PathLike[str], *, "
                  "manifest: str | os.PathLike[str] | None = None, quantize: bool = False, subgraph: int | None = None, "
                  "in_place: bool = False) -> PatchReport"),
          (std::string("Patches every array of an export back into the model, like ``litelens patch --from``.\n\n"
                       "``export_file`` is an .npz or .safetensors written by ``extract()`` (and perhaps\n"
                       "edited). Its manifest matches each key to the model (the stored tensor and its name\n"
                       "must agree); keras/torch layouts are permuted back and ``dequantize=True`` exports are\n"
                       "quantized back (or narrowed to float16). Arrays without a manifest entry use their key\n"
                       "as a selector. Exporting and patching back without edits reproduces every byte.\n\n"
                       "Args:\n"
                       "    output: the patched model's path.\n"
                       "    export_file: the .npz or .safetensors export.\n"
                       "    manifest: take the manifest from this export or manifest.json instead.\n"
                       "    quantize: quantize float32 arrays without a manifest entry, as ``patch()``.\n"
                       "    subgraph: where keys that are tensor names or ``#N`` are looked up.\n"
                       "    in_place: allow ``output`` to be this model's own file.\n\n"
                       "Returns:\n    A PatchReport.\n\n") +
           kPatchRaisesDoc + "    (kind \"manifest_mismatch\": the export describes another model; \"bad_values_file\":\n"
                             "    it cannot be read.)\n")
              .c_str())
      .def(
          "diff",
          [](const PyModel& self, const PyModel& other, bool values, std::optional<int> subgraph) {
            const ModelPtr& a = self.get();
            const ModelPtr& b = other.get();
            DiffOptions options;
            options.values = values;
            options.subgraph = check_subgraph(subgraph);
            nb::gil_scoped_release release;
            return diff_models(*a, *b, options);
          },
          nb::arg("other"), nb::kw_only(), nb::arg("values") = true, nb::arg("subgraph") = nb::none(),
          "Compares this model (A) with ``other`` (B) parameter by parameter, like ``litelens diff``.\n\n"
          "Layers (operators with constant inputs; DEQUANTIZE, DENSIFY and QUANTIZE are followed or\n"
          "skipped) of subgraph i of A are matched with those of subgraph i of B by name, normalized\n"
          "name, name stem, then position; their parameters are paired by role and compared: shape,\n"
          "dtype and quantization changes, and the values dequantized to float64 (max_abs_diff,\n"
          "rel_error, cosine). See docs/patch.md.\n\n"
          "Args:\n"
          "    other: the model to compare with.\n"
          "    values: compare values too (False: shapes, dtypes and quantization only; reads no\n"
          "        weights).\n"
          "    subgraph: only this subgraph of both models.\n\n"
          "Returns:\n    A ModelDiff.\n\n"
          "Raises:\n    IndexError: ``subgraph`` does not exist in one of the models.");
}

}  // namespace litelens::py
