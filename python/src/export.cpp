// Exports mirroring `litelens extract`: the same selection, formats, modes and layouts.
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <string>

#include "common.h"
#include "litelens/export.h"

namespace litelens::py {

namespace {

// The selected layers' export items; KeyError (with the closest names) when nothing matches.
std::vector<ExportItem> select_items(const ModelPtr& model, const LayerQuery& query, bool all_ops) {
  std::vector<ExportItem> items;
  std::string missing;
  {
    nb::gil_scoped_release release;
    const auto found = layers(*model, query);
    if (found.empty()) {
      missing = model->label() + ": " + no_match_message(*model, query);
    } else {
      items = export_items(found, all_ops);
    }
  }
  if (!missing.empty()) throw nb::key_error(missing.c_str());
  return items;
}

ExportOptions make_options(ExportFormat format, bool dequantize, std::string_view layout) {
  ExportOptions options;
  options.format = format;
  options.mode = dequantize ? DecodeMode::dequantized : DecodeMode::stored;
  options.layout = layout_from_name(layout);
  return options;
}

ExportFormat format_from_name(std::string_view name) {
  try {
    return export_format_from_name(name);
  } catch (const std::invalid_argument& e) {
    throw nb::value_error(e.what());
  }
}

constexpr const char* kSelectionDoc =
    "    op: op name(s) or custom code(s), as for ``layers()``.\n"
    "    name: layer name pattern (glob if it holds ``*?[``, else a substring).\n"
    "    index: operator index (within ``subgraph``, default 0).\n"
    "    subgraph: only this subgraph.\n"
    "    exact: ``name`` must match exactly.\n"
    "    first: only the first matching layer (``--first``).\n";

}  // namespace

void init_export(nb::module_& m, ModelClass& model) {
  nb::class_<ExportReport>(m, "ExportReport", "What an export wrote.")
      .def_ro("arrays", &ExportReport::arrays, "Number of arrays written.")
      .def_ro("bytes", &ExportReport::bytes, "Bytes of array values written.")
      .def_ro("skipped", &ExportReport::skipped,
              "(key, reason) of each parameter left out because its values have no array form "
              "(string, resource and variant tensors).")
      .def("__repr__", [](const ExportReport& r) {
        return "<litelens.ExportReport " + std::to_string(r.arrays) + " arrays, " + std::to_string(r.bytes) + " bytes>";
      });

  model
      .def(
          "extract",
          [](const PyModel& self, const std::filesystem::path& output, nb::handle op, std::optional<std::string> name,
             std::optional<int> index, std::optional<int> subgraph, bool exact, std::optional<std::string> format,
             bool dequantize, std::string_view layout, bool all_ops, bool first) {
            const ModelPtr& mp = self.get();
            ExportFormat fmt;
            try {
              fmt = format ? export_format_from_name(*format) : export_format_for_path(output);
            } catch (const std::invalid_argument& e) {
              throw nb::value_error(e.what());
            }
            const ExportOptions options = make_options(fmt, dequantize, layout);
            const auto items = select_items(mp, make_query(op, name, index, subgraph, exact, first), all_ops);
            nb::gil_scoped_release release;
            return export_arrays(*mp, items, output, options);
          },
          nb::arg("output"), nb::arg("op") = nb::none(), nb::arg("name") = nb::none(), nb::arg("index") = nb::none(),
          // `first` came last, after 0.1.0's arguments, so positional calls keep their meaning.
          nb::arg("subgraph") = nb::none(), nb::arg("exact") = false, nb::arg("format") = nb::none(),
          nb::arg("dequantize") = false, nb::arg("layout") = "tflite", nb::arg("all_ops") = false,
          nb::arg("first") = false,
          nb::sig("def extract(self, output: str | os.PathLike[str], op: str | collections.abc.Sequence[str] | None = None, "
                  "name: str | None = None, index: int | None = None, subgraph: int | None = None, exact: bool = False, "
                  "format: str | None = None, dequantize: bool = False, layout: str = 'tflite', "
                  "all_ops: bool = False, first: bool = False) -> ExportReport"),
          (std::string("Writes the selected layers' parameters to a file, like ``litelens extract``.\n\n"
                       "Each array's key is \"<layer key>/<role>\" (\"sg0.op3.CONV_2D/filter\"); every export\n"
                       "carries a manifest describing each key. The file is written atomically.\n\n"
                       "Args:\n"
                       "    output: .npz, .safetensors, .json, .h, or a folder of .npy files.\n") +
           kSelectionDoc +
           "    format: \"npz\", \"npy\", \"safetensors\", \"json\" or \"c\"; default: from ``output``.\n"
           "    dequantize: write float32 values (default: the stored values, unpacked and densified).\n"
           "    layout: \"tflite\", \"keras\" or \"torch\".\n"
           "    all_ops: also export the inputs of DEQUANTIZE and DENSIFY layers.\n\n"
           "Raises:\n"
           "    KeyError: nothing matches the selection (the message lists the closest candidates).\n"
           "    Error: the output cannot be written (kind \"output\").\n"
           "    ValueError: unknown format or layout.")
              .c_str())
      .def(
          "export_bytes",
          [](const PyModel& self, std::string_view format, nb::handle op, std::optional<std::string> name,
             std::optional<int> index, std::optional<int> subgraph, bool exact, bool dequantize,
             std::string_view layout, bool all_ops, bool first) {
            const ModelPtr& mp = self.get();
            const ExportOptions options = make_options(format_from_name(format), dequantize, layout);
            if (options.format == ExportFormat::npy_dir)
              throw nb::value_error("export_bytes(): a folder of .npy files has no in-memory form; use npz");
            const auto items = select_items(mp, make_query(op, name, index, subgraph, exact, first), all_ops);
            std::vector<std::byte> out;
            {
              nb::gil_scoped_release release;
              out = export_to_memory(*mp, items, options);
            }
            return nb::bytes(out.data(), out.size());
          },
          nb::arg("format") = "npz", nb::arg("op") = nb::none(), nb::arg("name") = nb::none(),
          nb::arg("index") = nb::none(), nb::arg("subgraph") = nb::none(), nb::arg("exact") = false,
          nb::arg("dequantize") = false, nb::arg("layout") = "tflite", nb::arg("all_ops") = false,
          nb::arg("first") = false,
          nb::sig("def export_bytes(self, format: str = 'npz', op: str | collections.abc.Sequence[str] | None = None, "
                  "name: str | None = None, index: int | None = None, subgraph: int | None = None, exact: bool = False, "
                  "dequantize: bool = False, layout: str = 'tflite', all_ops: bool = False, first: bool = False) -> bytes"),
          (std::string("The same export as ``extract()``, returned as bytes instead of written to a file.\n\n"
                       "Args:\n"
                       "    format: \"npz\", \"safetensors\", \"json\" or \"c\".\n") +
           kSelectionDoc +
           "    dequantize, layout, all_ops: as for ``extract()``.\n\n"
           "Raises:\n    KeyError: nothing matches the selection.\n    ValueError: unknown format or layout.")
              .c_str());
}

}  // namespace litelens::py
