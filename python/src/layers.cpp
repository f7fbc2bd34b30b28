// Layer and Param: operators with their parameters resolved to the constants in the file.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <string>

#include "common.h"

namespace litelens::py {

PyLayer wrap_layer(const ModelPtr& model, Layer layer) {
  return {model, std::make_shared<const Layer>(std::move(layer))};
}

namespace {

// The tensor a parameter's metadata comes from: the stored constant, or the op's input when
// the parameter is fed at run time.
Tensor shown_tensor(const PyParam& p) {
  const Param& param = p.param();
  return p.model->subgraph(p.layer->subgraph).tensor(param.is_runtime() ? param.tensor : param.stored_tensor);
}

nb::object param_to_numpy(const PyParam& p, DecodeMode mode) {
  Array values;
  {
    nb::gil_scoped_release release;
    values = param_values(*p.model, *p.layer, p.param(), mode);
  }
  return to_numpy(p.model, values);
}

nb::object param_in_layout(const PyParam& p, std::string_view layout, bool dequantized) {
  const Framework framework = layout_from_name(layout);
  Array values;
  {
    nb::gil_scoped_release release;
    values = param_values(*p.model, *p.layer, p.param(), dequantized ? DecodeMode::dequantized : DecodeMode::stored);
    values = to_layout(*p.model, *p.layer, p.param(), values, framework);
  }
  return to_numpy(p.model, values);
}

std::vector<PyLayer> find_layers(const ModelPtr& model, const LayerQuery& query) {
  std::vector<Layer> found;
  {
    nb::gil_scoped_release release;
    found = layers(*model, query);
  }
  std::vector<PyLayer> out;
  out.reserve(found.size());
  for (auto& l : found) out.push_back(wrap_layer(model, std::move(l)));
  return out;
}

std::string param_repr(const PyParam& p) {
  const Param& param = p.param();
  const Tensor t = shown_tensor(p);
  std::string shape;
  for (auto d : t.shape()) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
  std::string s = "<litelens.Param " + param.role + " [" + shape + "] " + std::string(dtype_name(t.dtype()));
  if (!param.layout.empty()) s += " " + param.layout;
  for (const auto& v : param.via) s += " via " + v;
  if (param.is_runtime()) s += " (fed at run time)";
  return s + ">";
}

}  // namespace

void init_layers(nb::module_& m, ModelClass& model) {
  nb::class_<PyParam>(m, "Param",
                      "One input of a layer, resolved to the constant that holds its numbers.\n\n"
                      "When a filter comes out of DEQUANTIZE (an fp16 or int8 constant) or DENSIFY (a sparse\n"
                      "constant), ``stored_tensor`` is that constant and ``via`` lists the ops followed. The\n"
                      "shape, dtype and quantization describe the stored constant (or, for a parameter fed at\n"
                      "run time, the op's input tensor).")
      .def_prop_ro("role", [](const PyParam& p) { return py_str(p.param().role); },
                   "\"input\", \"filter\", \"bias\", \"input_to_forget_weights\", ..., or \"input_<i>\".")
      .def_prop_ro("input_index", [](const PyParam& p) { return p.param().input_index; },
                   "Position among the operator's inputs.")
      .def_prop_ro("tensor", [](const PyParam& p) { return p.param().tensor; }, "The operator's input tensor index.")
      .def_prop_ro("stored_tensor",
                   [](const PyParam& p) {
                     const Param& q = p.param();
                     return q.is_runtime() ? std::nullopt : std::optional<int>(q.stored_tensor);
                   },
                   "Index of the constant holding the values, or None when fed at run time.")
      .def_prop_ro("via", [](const PyParam& p) { return p.param().via; },
                   "Ops followed from ``tensor`` to ``stored_tensor``, nearest first, e.g. [\"DEQUANTIZE\"].")
      .def_prop_ro("via_ops", [](const PyParam& p) { return p.param().via_ops; }, "Indices of the ops in ``via``.")
      .def_prop_ro("layout",
                   [](const PyParam& p) -> nb::object {
                     if (p.param().layout.empty()) return nb::none();
                     return py_str(p.param().layout);
                   },
                   nb::sig("def layout(self) -> str | None"),
                   "Layout label of the stored values: \"OHWI\" (conv filters), \"1HWC\" (depthwise,\n"
                   "last axis C*M), \"OI\" (fully connected), \"O\" (biases), ...; None when no layout applies.")
      .def_prop_ro("is_runtime", [](const PyParam& p) { return p.param().is_runtime(); },
                   "True when the values are not in the file (a graph input or a computed tensor).")
      .def_prop_ro("name", [](const PyParam& p) { return py_str(shown_tensor(p).name()); },
                   "Name of the stored tensor.")
      .def_prop_ro("shape",
                   [](const PyParam& p) {
                     nb::list out;
                     for (auto d : shown_tensor(p).shape()) out.append(d);
                     return nb::tuple(out);
                   },
                   nb::sig("def shape(self) -> tuple[int, ...]"), "Shape of the stored tensor.")
      .def_prop_ro("dtype", [](const PyParam& p) { return py_str(dtype_name(shown_tensor(p).dtype())); },
                   "Stored dtype (\"float16\", \"int8\", ...).")
      .def_prop_ro("quantization", [](const PyParam& p) { return shown_tensor(p).quantization(); },
                   "Quantization of the stored tensor, or None.")
      .def("numpy", [](const PyParam& p) { return param_to_numpy(p, DecodeMode::stored); },
           nb::sig("def numpy(self) -> " LITELENS_NDARRAY),
           "The stored values, dense, in their own dtype and the file's layout.\n\n"
           "Zero-copy and read-only when the stored bytes already are the dense values (the array\n"
           "keeps the model alive); a fresh array when INT4/UINT4/INT2 values are unpacked or sparse\n"
           "values densified. float16 stays float16; bfloat16 and float8 come out as their raw bits\n"
           "(uint16 / uint8); ``dequantize()`` gives float32.\n\n"
           "Raises:\n    ValueError: the parameter is fed at run time.")
      .def("dequantize", [](const PyParam& p) { return param_to_numpy(p, DecodeMode::dequantized); },
           nb::sig("def dequantize(self) -> " LITELENS_NDARRAY),
           "The values as float32, whatever the stored dtype: floats converted, quantized integers\n"
           "dequantized (per tensor, per axis, blockwise; int32/int64 biases with their own scales),\n"
           "unquantized integers and booleans (shapes, paddings, axes) converted as they are.")
      .def("values",
           [](const PyParam& p, std::string_view mode) { return param_to_numpy(p, decode_mode_from_name(mode)); },
           nb::arg("mode") = "stored", nb::sig("def values(self, mode: str = 'stored') -> " LITELENS_NDARRAY),
           "Values decoded per ``mode``: \"stored\" (= ``numpy()``), \"widened\" (float16/bfloat16/\n"
           "float8 widened to float32, other dtypes as stored) or \"dequantized\" (float32 for every\n"
           "numeric dtype, = ``dequantize()``).")
      .def("consumed",
           [](const PyParam& p) {
             Array values;
             {
               nb::gil_scoped_release release;
               values = consumed_values(*p.model, *p.layer, p.param());
             }
             return to_numpy(p.model, values);
           },
           nb::sig("def consumed(self) -> " LITELENS_NDARRAY),
           "The values the operator consumes: dequantized (float32) when the parameter comes\n"
           "through DEQUANTIZE, otherwise the stored values (dense, unpacked).")
      .def("to_layout", &param_in_layout, nb::arg("layout"), nb::arg("dequantize") = false,
           nb::sig("def to_layout(self, layout: str, dequantize: bool = False) -> " LITELENS_NDARRAY),
           "The values converted to another framework's layout.\n\n"
           "Args:\n"
           "    layout: \"tflite\" (unchanged), \"keras\" (HWIO; depthwise HWCM) or \"torch\"\n"
           "        (OIHW; depthwise O1HW, i.e. C*M,1,H,W). Parameters without a framework layout are\n"
           "        returned unchanged.\n"
           "    dequantize: convert the float32 values of ``dequantize()`` instead of the stored ones,\n"
           "        so the result is float32.\n\n"
           "Raises:\n    ValueError: unknown layout, or a parameter fed at run time.")
      .def("layout_for",
           [](const PyParam& p, std::string_view layout) -> nb::object {
             const auto c = layout_conversion(*p.model, *p.layer, p.param(), layout_from_name(layout));
             if (!c) return nb::none();
             return py_str(c->label);
           },
           nb::arg("layout"), nb::sig("def layout_for(self, layout: str) -> str | None"),
           "The layout label ``to_layout(layout)`` produces (\"HWIO\", \"OIHW\", ...), or None.")
      .def("__repr__", &param_repr);

  nb::class_<PyLayer>(m, "Layer",
                      "An operator with its options and its inputs by role. It keeps its model's data alive.")
      .def_prop_ro("subgraph", [](const PyLayer& l) { return l.layer->subgraph; }, "Index of the subgraph.")
      .def_prop_ro("index", [](const PyLayer& l) { return l.layer->index; }, "The operator's index in its subgraph.")
      .def_prop_ro("op", [](const PyLayer& l) { return py_str(l.layer->op); },
                   "Builtin op name (\"CONV_2D\"), \"CUSTOM\" or \"UNKNOWN\".")
      .def_prop_ro("custom_code",
                   [](const PyLayer& l) -> nb::object {
                     if (l.layer->custom_code.empty()) return nb::none();
                     return py_str(l.layer->custom_code);
                   },
                   nb::sig("def custom_code(self) -> str | None"),
                   "The custom op's name, or None.")
      .def_prop_ro("name", [](const PyLayer& l) { return py_str(l.layer->name); },
                   "The first output tensor's name (converters fuse several names with ';').")
      .def_prop_ro("name_parts",
                   [](const PyLayer& l) {
                     nb::list out;
                     for (const auto& s : l.layer->name_parts) out.append(py_str(s));
                     return out;
                   },
                   nb::sig("def name_parts(self) -> list[str]"), "``name`` split at ';'.")
      .def_prop_ro("key", [](const PyLayer& l) { return py_str(l.layer->key()); },
                   "Stable key \"sg<subgraph>.op<index>.<op>\", used by exports (\"sg0.op12.CONV_2D\").")
      .def_prop_ro("options", [](const PyLayer& l) { return to_python(l.layer->options); },
                   nb::sig("def options(self) -> dict[str, typing.Any]"),
                   "Decoded options as a dict (stride_w, padding, fused_activation_function, ...).")
      .def_prop_ro("params",
                   [](const PyLayer& l) {
                     nb::dict out;
                     for (std::size_t i = 0; i < l.layer->params.size(); ++i)
                       out[py_str(l.layer->params[i].role)] = nb::cast(PyParam{l.model, l.layer, i});
                     return out;
                   },
                   nb::sig("def params(self) -> dict[str, Param]"),
                   "The present inputs by role, in input order (absent optional inputs are left out).")
      .def("__repr__", [](const PyLayer& l) {
        return "<litelens.Layer " + l.layer->key() + " '" + l.layer->name + "'>";
      });

  model
      .def("layers",
           [](const PyModel& self, nb::handle op, std::optional<std::string> name, std::optional<int> index,
              std::optional<int> subgraph, bool exact, bool first) {
             return find_layers(self.get(), make_query(op, name, index, subgraph, exact, first));
           },
           nb::arg("op") = nb::none(), nb::arg("name") = nb::none(), nb::arg("index") = nb::none(),
           nb::arg("subgraph") = nb::none(), nb::arg("exact") = false, nb::arg("first") = false,
           nb::sig("def layers(self, op: str | collections.abc.Sequence[str] | None = None, name: str | None = None, "
                   "index: int | None = None, subgraph: int | None = None, exact: bool = False, "
                   "first: bool = False) -> list[Layer]"),
           "The layers matching a selection (all of them by default), in subgraph then operator order.\n\n"
           "Args:\n"
           "    op: op name(s) (\"CONV_2D\", case-insensitive) or custom code(s).\n"
           "    name: a glob when it holds any of ``*?[``, else a substring; tried against the layer\n"
           "        name, its fused parts and its parameters' tensor names.\n"
           "    index: operator index (within ``subgraph``, default 0).\n"
           "    subgraph: only this subgraph.\n"
           "    exact: ``name`` must equal one of those names exactly.\n"
           "    first: only the first match (at most one layer, like ``--first``).\n\n"
           "Returns an empty list when nothing matches.\n\n"
           "Raises:\n    IndexError: ``index`` or ``subgraph`` does not exist.")
      .def("layer",
           [](const PyModel& self, int index, int subgraph) {
             const ModelPtr& mp = self.get();
             return wrap_layer(mp, layer(*mp, subgraph, index));
           },
           nb::arg("index"), nb::arg("subgraph") = 0,
           "The layer of one operator.\n\nRaises:\n    IndexError: no such operator or subgraph.")
      .def("closest_layer_names",
           [](const PyModel& self, const std::string& name, nb::handle op, std::optional<int> subgraph, std::size_t limit) {
             const ModelPtr& mp = self.get();
             const LayerQuery q = make_query(op, name, std::nullopt, subgraph, false);
             std::vector<std::string> names;
             {
               nb::gil_scoped_release release;
               names = closest_layer_names(*mp, q, limit);
             }
             nb::list out;
             for (const auto& s : names) out.append(py_str(s));
             return out;
           },
           nb::arg("name"), nb::arg("op") = nb::none(), nb::arg("subgraph") = nb::none(), nb::arg("limit") = 5,
           nb::sig("def closest_layer_names(self, name: str, op: str | collections.abc.Sequence[str] | None = None, "
                   "subgraph: int | None = None, limit: int = 5) -> list[str]"),
           "Up to ``limit`` layer names closest to ``name`` (for \"did you mean\" messages).");
}

}  // namespace litelens::py
