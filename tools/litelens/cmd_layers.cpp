// layers and extract: layer parameters, shown or exported.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <optional>

#include "commands.h"
#include "json_view.h"
#include "litelens/export.h"
#include "litelens/layer.h"
#include "output.h"

namespace litelens::cli {

namespace {

struct SelectionArgs {
  std::vector<std::string> ops;
  std::string name;
  bool exact = false;
  int index = -1;
  bool first = false;
};

void add_selection(CLI::App* cmd, SelectionArgs& s) {
  cmd->add_option("--op", s.ops, "only these ops (repeatable): CONV_2D, FULLY_CONNECTED, a custom code...");
  cmd->add_option("--name", s.name,
                  "layer name pattern: a glob if it holds *?[, else a substring; tried against the layer name, "
                  "its fused parts and its parameters' tensor names");
  cmd->add_flag("--exact", s.exact, "--name must match exactly");
  cmd->add_option("--index", s.index, "operator index (in --subgraph, default 0)")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--first", s.first, "only the first match");
}

std::vector<Layer> select(const Model& model, const ModelArgs& args, const SelectionArgs& s) {
  check_subgraph_arg(model, args.subgraph);
  LayerQuery q;
  q.ops = s.ops;
  q.name = s.name;
  q.exact = s.exact;
  q.first = s.first;
  if (args.subgraph >= 0) q.subgraph = args.subgraph;
  if (s.index >= 0) q.index = s.index;
  std::vector<Layer> found;
  try {
    found = layers(model, q);
  } catch (const std::out_of_range& e) {
    // An --index past the subgraph's end (the subgraph itself was checked above): the message
    // names the valid range and the last layers.
    const int sg = args.subgraph >= 0 ? args.subgraph : 0;
    if (!q.index || static_cast<std::size_t>(*q.index) < model.subgraph(sg).operator_count()) throw;
    throw UsageError(fmt::format("{}: --index: {}", model.label(), e.what()));
  }
  if (found.empty()) throw NoMatch(fmt::format("{}: {}", model.label(), no_match_message(model, q)));
  return found;
}

// ---- layers ---------------------------------------------------------------------------------

struct LayersArgs {
  ModelArgs model;
  SelectionArgs selection;
  bool no_values = false;
  std::size_t count = 8;
};

// The values shown for a parameter: dequantized where litelens can, else the stored values
// (widened) with the reason; nullopt when not even those decode.
struct ShownValues {
  std::optional<Array> values;
  std::string note;  // why the values are not dequantized, or why there are none
};

ShownValues shown_values(const Model& model, const Layer& layer, const Param& p) {
  try {
    // Integers without quantization are shown as stored, exactly (exact_real_mode).
    const DecodeMode mode =
        p.is_runtime() ? DecodeMode::dequantized : exact_real_mode(model.subgraph(layer.subgraph).tensor(p.stored_tensor));
    return {param_values(model, layer, p, mode), ""};
  } catch (const std::invalid_argument& e) {
    try {
      return {param_values(model, layer, p, DecodeMode::widened), fmt::format("stored values: {}", e.what())};
    } catch (const std::invalid_argument& e2) {
      return {std::nullopt, e2.what()};
    }
  }
}

nlohmann::ordered_json param_json(const Model& model, const Layer& layer, const Param& p, const LayersArgs& args) {
  const Subgraph sg = model.subgraph(layer.subgraph);
  const Tensor shown = sg.tensor(p.is_runtime() ? p.tensor : p.stored_tensor);
  nlohmann::ordered_json out = {
      {"tensor", p.tensor},
      {"stored_tensor", p.is_runtime() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(p.stored_tensor)},
      {"via", p.via},
      {"name", shown.name()},
      {"shape", std::vector<std::int32_t>(shown.shape().begin(), shown.shape().end())},
      {"dtype", dtype_name(shown.dtype())},
      {"layout", p.layout.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(p.layout)},
      {"quantization", to_json(shown.quantization())},
      {"runtime", p.is_runtime()}};
  if (!args.no_values && !p.is_runtime() && dtype_info(shown.dtype()).bits > 0) {
    const ShownValues v = shown_values(model, layer, p);
    if (!v.note.empty()) out["values_note"] = v.note;
    if (v.values) {
      const ArrayStats s = statistics(*v.values);
      out["stats"] = {{"min", s.min}, {"max", s.max}, {"mean", s.mean}, {"std", s.std},
                      {"zero_fraction", s.zero_fraction}, {"nan_count", s.nan_count}};
      out["first_values"] = first_values(*v.values, args.count);
    }
  }
  return out;
}

void print_layers_json(const Model& model, const std::vector<Layer>& found, const LayersArgs& args) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& l : found) {
    nlohmann::ordered_json params = nlohmann::ordered_json::object();
    for (const auto& p : l.params) params[p.role] = param_json(model, l, p, args);
    list.push_back({{"subgraph", l.subgraph},
                    {"index", l.index},
                    {"key", l.key()},
                    {"op", l.op},
                    {"custom_code", l.custom_code.empty() ? nlohmann::ordered_json(nullptr)
                                                          : nlohmann::ordered_json(l.custom_code)},
                    {"name", l.name},
                    {"name_parts", l.name_parts},
                    {"options", to_json(l.options)},
                    {"params", std::move(params)}});
  }
  print_json({{"layers", std::move(list)}});
}

std::string compact(const Value& v) {
  if (v.is_string()) return v.as_string();
  // Strings inside (custom options, composite attributes) may hold bytes that are not UTF-8:
  // replaced, as print_json does, rather than throwing from dump().
  return to_json(v).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

// " q: ..." for a parameter's line: affine scale and zero point(s), or the scheme with where its
// scales are kept (blockwise and multi-axis keep them in other tensors, named here).
std::string quantization_text(const Subgraph& sg, const Quantization& q) {
  const auto tensor_ref = [&](int index) {
    if (index < 0 || static_cast<std::size_t>(index) >= sg.tensor_count()) return fmt::format("#{}", index);
    const Tensor t = sg.tensor(index);
    return fmt::format("#{} {} [{}] {}", index, t.name(), fmt::join(t.shape(), ","), dtype_name(t.dtype()));
  };
  const auto scales_and_zero_points = [&] {
    return fmt::format(" scales={} zero_points={}", tensor_ref(q.scales_tensor),
                       q.zero_points_tensor < 0 ? std::string("none (all 0)") : tensor_ref(q.zero_points_tensor));
  };
  switch (q.scheme) {
    case Quantization::Scheme::blockwise:
      return fmt::format(" q: blockwise block_size={}{}", q.block_size, scales_and_zero_points());
    case Quantization::Scheme::multi_axis:
      return fmt::format(" q: multi_axis dims=[{}] block_size={}{}", fmt::join(q.quantized_dimensions, ","),
                         q.block_size, scales_and_zero_points());
    case Quantization::Scheme::custom: {
      std::vector<std::string> bytes;
      for (std::size_t i = 0; i < q.custom.size() && i < 16; ++i) bytes.push_back(fmt::format("{:02x}", q.custom[i]));
      return fmt::format(" q: custom {} bytes [{}{}]", q.custom.size(), fmt::join(bytes, " "),
                         q.custom.size() > 16 ? " ..." : "");
    }
    case Quantization::Scheme::unknown: return " q: unknown scheme";
    case Quantization::Scheme::affine: break;
  }
  if (q.scale.empty()) return "";  // a calibration range only: nothing to dequantize with
  if (q.scale.size() == 1)
    return fmt::format(" q: s={:.6g} zp={}", q.scale[0], q.zero_point.empty() ? 0 : q.zero_point[0]);
  return fmt::format(" q: {} scales on dim {}", q.scale.size(), q.quantized_dimension);
}

void print_layers_text(const Model& model, const std::vector<Layer>& found, const LayersArgs& args) {
  for (const auto& l : found) {
    const Subgraph sg = model.subgraph(l.subgraph);
    fmt::print("{}  {}{}  {}\n", l.key(), l.op, l.custom_code.empty() ? "" : " " + l.custom_code,
               l.name.empty() ? "(unnamed)" : l.name);
    if (l.name_parts.size() > 1) fmt::print("  parts: {}\n", fmt::join(l.name_parts, " | "));
    if (l.options.is_map() && !l.options.as_map().empty()) {
      std::vector<std::string> parts;
      for (const auto& [k, v] : l.options.as_map()) parts.push_back(k + "=" + compact(v));
      fmt::print("  options: {}\n", fmt::join(parts, " "));
    }
    for (const auto& p : l.params) {
      const Tensor shown = sg.tensor(p.is_runtime() ? p.tensor : p.stored_tensor);
      // The path from the op's input back to the stored constant: "#4 <- DEQUANTIZE <- #3".
      std::string path = fmt::format("#{}", p.tensor);
      for (const auto& op_name : p.via) path += " <- " + op_name;
      if (!p.via.empty()) path += fmt::format(" <- #{}", p.stored_tensor);
      fmt::print("  {:<14} {:<24} [{}] {}", p.role, path, fmt::join(shown.shape(), ","), dtype_name(shown.dtype()));
      if (!p.layout.empty()) fmt::print(" {}", p.layout);
      if (p.is_runtime()) fmt::print(" (fed at run time)");
      if (const auto q = shown.quantization()) fmt::print("{}", quantization_text(sg, *q));
      fmt::print("\n");
      if (args.no_values || p.is_runtime() || dtype_info(shown.dtype()).bits == 0) continue;
      const ShownValues shown_v = shown_values(model, l, p);
      if (!shown_v.note.empty()) fmt::print("  {:<14} ({})\n", "", shown_v.note);
      if (!shown_v.values) continue;
      const Array& values = *shown_v.values;
      const ArrayStats s = statistics(values);
      fmt::print("  {:<14} min {:.6g} max {:.6g} mean {:.6g} std {:.6g} zeros {:.1f}%{}\n", "", s.min, s.max, s.mean,
                 s.std, 100 * s.zero_fraction, s.nan_count ? fmt::format(" nan {}", s.nan_count) : "");
      const auto first = first_values(values, args.count);
      std::vector<std::string> shown_values;
      for (double v : first) shown_values.push_back(fmt::format("{:.6g}", v));
      fmt::print("  {:<14} [{}{}]\n", "", fmt::join(shown_values, ", "), values.size() > first.size() ? ", ..." : "");
    }
  }
}

// ---- extract --------------------------------------------------------------------------------

struct ExtractArgs {
  ModelArgs model;
  SelectionArgs selection;
  std::string output;
  std::string format;
  bool dequantize = false;
  std::string layout = "tflite";
  bool all_ops = false;
};

void run_extract(const ExtractArgs& args) {
  const Model model = Model::open(args.model.model);
  ExportOptions options;
  try {
    options.format = args.format.empty() ? export_format_for_path(args.output) : export_format_from_name(args.format);
    options.layout = framework_from_name(args.layout);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  options.mode = args.dequantize ? DecodeMode::dequantized : DecodeMode::stored;
  const bool interactive = ::isatty(STDERR_FILENO);
  if (interactive)
    options.progress = [last = -1](std::uint64_t done, std::uint64_t total) mutable {
      if (total < (std::uint64_t{64} << 20)) return;  // only large exports
      const int percent = static_cast<int>(100 * done / std::max<std::uint64_t>(total, 1));
      if (percent == last) return;
      last = percent;
      fmt::print(stderr, "\rlitelens: exporting {:3d}% ({} of {} MiB)", percent, done >> 20, total >> 20);
      if (done >= total) fmt::print(stderr, "\n");
    };
  const auto items = export_items(select(model, args.model, args.selection), args.all_ops);
  const ExportReport report = export_arrays(model, items, args.output, options);
  for (const auto& [key, reason] : report.skipped)
    fmt::print(stderr, "litelens: {}: skipped {}: {}\n", model.label(), key, reason);
  fmt::print("{}: wrote {} arrays ({} bytes of values) to {}\n", model.label(), report.arrays, report.bytes,
             args.output);
}

}  // namespace

void register_layer_commands(CLI::App& app, Registry& registry) {
  auto layers_args = std::make_shared<LayersArgs>();
  auto* layers_cmd = app.add_subcommand("layers", "each operator's options and parameters (values, layout, statistics)");
  add_model_args(layers_cmd, layers_args->model);
  add_selection(layers_cmd, layers_args->selection);
  layers_cmd->add_flag("--no-values", layers_args->no_values, "skip statistics and values (touches no weights)");
  layers_cmd->add_option("--count", layers_args->count, "how many first values to show")->capture_default_str();
  registry.add(layers_cmd, [layers_args] {
    const Model model = Model::open(layers_args->model.model);
    const auto found = select(model, layers_args->model, layers_args->selection);
    if (layers_args->model.json) print_layers_json(model, found, *layers_args);
    else print_layers_text(model, found, *layers_args);
  });

  auto extract_args = std::make_shared<ExtractArgs>();
  auto* extract_cmd = app.add_subcommand("extract", "export layer parameters to .npz, .npy files, .safetensors, JSON or a C header");
  extract_cmd->add_option("MODEL", extract_args->model.model, "the .tflite file")->required();
  extract_cmd->add_option("--subgraph", extract_args->model.subgraph, "only this subgraph")->check(CLI::NonNegativeNumber);
  add_selection(extract_cmd, extract_args->selection);
  extract_cmd->add_option("-o,--output", extract_args->output, "output file (.npz, .safetensors, .json, .h) or folder")
      ->required();
  extract_cmd->add_option("--format", extract_args->format, "npz, npy (a folder), safetensors, json or c (default: from -o)");
  extract_cmd->add_flag("--dequantize", extract_args->dequantize, "write float32 values (default: the stored values)");
  extract_cmd->add_option("--layout", extract_args->layout, "tflite, keras or torch")->capture_default_str();
  extract_cmd->add_flag("--all-ops", extract_args->all_ops, "also export DEQUANTIZE/DENSIFY layers' inputs");
  registry.add(extract_cmd, [extract_args] { run_extract(*extract_args); });
}

}  // namespace litelens::cli
