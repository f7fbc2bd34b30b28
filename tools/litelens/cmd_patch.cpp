// patch and diff: write parameters back into a model, and compare two models.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <stdexcept>

#include "commands.h"
#include "json_view.h"
#include "litelens/diff.h"
#include "litelens/patch.h"
#include "output.h"

namespace litelens::cli {

namespace {

using json = nlohmann::ordered_json;

// ---- patch ----------------------------------------------------------------------------------

struct PatchArgs {
  std::string model;
  std::string output;
  std::vector<std::string> sets;
  std::vector<std::string> set_quants;
  std::vector<std::string> from;
  std::string manifest;
  std::string layout = "tflite";
  bool quantize = false;
  bool in_place = false;
  int subgraph = -1;
  bool json = false;
};

// SELECTOR=VALUE: a selector may not contain '=' when the value can (set-quant), and the file
// path of --set is taken after the last '='.
std::pair<std::string, std::string> split_assignment(const std::string& text, const char* option, bool last) {
  const auto eq = last ? text.rfind('=') : text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    throw UsageError(fmt::format("{} expects SELECTOR=VALUE, got '{}'", option, text));
  return {text.substr(0, eq), text.substr(eq + 1)};
}

// Exit 1 when the model or a file is the problem (nothing matches, an export of another model,
// an unreadable values file, a model or feature the patcher does not handle); exit 2 when the
// request is (mismatched shape or dtype, values out of range, missing --in-place, ...).
[[noreturn]] void rethrow_patch_error(const PatchError& e) {
  const std::string message = fmt::format("{} [{}]", e.what(), patch_error_kind_name(e.kind()));
  switch (e.kind()) {
    case PatchError::Kind::unknown_selector:
    case PatchError::Kind::manifest_mismatch:
    case PatchError::Kind::bad_values_file: throw NoMatch(message);
    case PatchError::Kind::unsupported: throw std::runtime_error(message);  // main: exit 1, like model errors
    default: throw UsageError(message);
  }
}

json report_json(const PatchReport& r, const std::string& output) {
  json tensors = json::array();
  for (const auto& t : r.tensors)
    tensors.push_back({{"selector", t.selector},
                       {"subgraph", t.subgraph},
                       {"tensor", t.tensor},
                       {"name", t.name},
                       {"via", t.via},
                       {"values", t.values},
                       {"quantization", t.quantization},
                       {"unchanged", t.unchanged},
                       {"conversion", t.conversion},
                       {"buffer", t.buffer},
                       {"split", t.split},
                       {"bytes", t.bytes},
                       {"clamped", t.clamped}});
  return {{"output", output},
          {"output_size", r.output_size},
          {"flatbuffer_size", r.flatbuffer_size},
          {"outside_payloads", r.outside_payloads},
          {"archive", r.archive},
          {"archive_offsets_rewritten", r.archive_offsets_rewritten},
          {"tensors", std::move(tensors)},
          {"warnings", r.warnings}};
}

void run_patch(const PatchArgs& args) {
  if (args.output.empty() && !args.in_place) throw UsageError("patch: give -o OUT.tflite (or --in-place)");
  const std::string output = args.output.empty() ? args.model : args.output;
  const Model model = Model::open(args.model);
  check_subgraph_arg(model, args.subgraph);
  PatchSpec spec;
  PatchOptions options;
  options.quantize = args.quantize;
  options.in_place = args.in_place;
  if (args.subgraph >= 0) options.subgraph = args.subgraph;
  Framework layout;
  try {
    layout = framework_from_name(args.layout);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  PatchReport report;
  try {
    for (const auto& s : args.sets) {
      auto [selector, file] = split_assignment(s, "--set", true);
      ValueUpdate u;
      u.selector = selector;
      u.values = read_npy(file);
      u.layout = layout;
      u.source = file;
      spec.values.push_back(std::move(u));
    }
    for (const auto& f : args.from) {
      auto updates = updates_from_export(model, f, args.manifest);
      for (auto& u : updates) spec.values.push_back(std::move(u));
    }
    for (const auto& s : args.set_quants) {
      auto [selector, text] = split_assignment(s, "--set-quant", false);
      spec.quantization.push_back(parse_quant_spec(selector, text));
    }
    if (spec.values.empty() && spec.quantization.empty())
      throw UsageError("patch: nothing to do (give --set, --from or --set-quant)");
    report = patch_model(model, spec, output, options);
  } catch (const PatchError& e) {
    rethrow_patch_error(e);
  }
  for (const auto& w : report.warnings) fmt::print(stderr, "litelens: warning: {}\n", w);
  if (args.json) {
    print_json(report_json(report, output));
    return;
  }
  for (const auto& t : report.tensors) {
    std::vector<std::string> what;
    if (t.values) what.push_back(t.unchanged ? "values unchanged" : fmt::format("values ({} bytes, {})", t.bytes, t.conversion));
    if (t.quantization) what.push_back("quantization");
    if (t.split) what.push_back(fmt::format("new buffer {}", t.buffer));
    std::string via = t.via.empty() ? "" : fmt::format(" via {}", fmt::join(t.via, ", "));
    fmt::print("patched sg{} #{} '{}'{} [{}]: {}\n", t.subgraph, t.tensor, t.name, via, t.selector, fmt::join(what, "; "));
  }
  std::string extra;
  if (report.outside_payloads) extra += fmt::format("; {} buffers after the FlatBuffer", report.outside_payloads);
  if (report.archive)
    extra += report.archive_offsets_rewritten ? "; archive carried over (offsets rewritten)" : "; archive carried over";
  fmt::print("wrote {} ({} bytes, FlatBuffer {} bytes{})\n", output, report.output_size, report.flatbuffer_size, extra);
}

// ---- diff -----------------------------------------------------------------------------------

struct DiffArgs {
  std::string a;
  std::string b;
  bool json = false;
  bool all = false;
  bool no_values = false;
  int subgraph = -1;
};

json number(double v) {
  if (std::isnan(v)) return nullptr;
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

json info_json(const std::optional<ParamInfo>& i) {
  if (!i) return nullptr;
  return {{"tensor", i->tensor},         {"name", i->name},       {"shape", i->shape},
          {"dtype", dtype_name(i->dtype)}, {"quantization", to_json(i->quantization)},
          {"via", i->via},               {"runtime", i->runtime}};
}

json ref_json(const LayerRef& r) {
  return {{"subgraph", r.subgraph}, {"index", r.index}, {"key", r.key}, {"op", r.op}, {"name", r.name}};
}

json diff_json(const ModelDiff& d, const DiffArgs& args) {
  json layers = json::array();
  for (const auto& l : d.layers) {
    json ps = json::array();
    for (const auto& p : l.params) {
      json values = nullptr;
      if (p.values)
        values = {{"count", p.values->count},
                  {"differing", p.values->differing},
                  {"nan_mismatch", p.values->nan_mismatch},
                  {"max_abs_diff", number(p.values->max_abs_diff)},
                  {"rel_error", number(p.values->rel_error)},
                  {"cosine", number(p.values->cosine)},
                  {"norm_a", number(p.values->norm_a)},
                  {"norm_b", number(p.values->norm_b)}};
      ps.push_back({{"role", p.role},
                    {"identical", p.identical()},
                    {"shape_changed", p.shape_changed},
                    {"dtype_changed", p.dtype_changed},
                    {"quantization_changed", p.quantization_changed},
                    {"a", info_json(p.a)},
                    {"b", info_json(p.b)},
                    {"values", std::move(values)},
                    {"bytes_equal", p.bytes_equal ? json(*p.bytes_equal) : json(nullptr)},
                    {"note", p.note.empty() ? json(nullptr) : json(p.note)}});
    }
    layers.push_back({{"a", ref_json(l.a)},
                      {"b", ref_json(l.b)},
                      {"matched_by", l.matched_by},
                      {"identical", l.identical()},
                      {"params", std::move(ps)}});
  }
  json only_a = json::array(), only_b = json::array();
  for (const auto& r : d.only_in_a) only_a.push_back(ref_json(r));
  for (const auto& r : d.only_in_b) only_b.push_back(ref_json(r));
  const DiffSummary sum = summarize(d);
  json matched_by = json::object();
  for (const auto& [rule, n] : sum.matched_by) matched_by[rule] = n;
  return {{"a", args.a},
          {"b", args.b},
          {"subgraphs", {d.subgraphs_a, d.subgraphs_b}},
          {"summary", {{"matched_layers", sum.matched_layers},
                       {"matched_by", std::move(matched_by)},
                       {"only_in_a", sum.only_in_a},
                       {"only_in_b", sum.only_in_b},
                       {"params", sum.params},
                       {"identical_params", sum.identical_params},
                       {"values_changed", sum.values_changed},
                       {"shape_changed", sum.shape_changed},
                       {"dtype_changed", sum.dtype_changed},
                       {"quantization_changed", sum.quantization_changed}}},
          {"layers", std::move(layers)},
          {"only_in_a", std::move(only_a)},
          {"only_in_b", std::move(only_b)}};
}

std::string side_text(const std::optional<ParamInfo>& i) {
  if (!i) return "-";
  std::string s = fmt::format("[{}] {}", fmt::join(i->shape, ","), dtype_name(i->dtype));
  if (i->quantization && !i->quantization->scale.empty())
    s += i->quantization->scale.size() == 1 ? " q" : fmt::format(" q{}", i->quantization->scale.size());
  return s;
}

void print_diff_text(const ModelDiff& d, const DiffArgs& args) {
  for (const auto& l : d.layers) {
    const bool show_layer = args.all || !l.identical();
    if (show_layer)
      fmt::print("{} {}  <->  {} {}  [{}]\n", l.a.key, l.a.name.empty() ? "(unnamed)" : l.a.name, l.b.key,
                 l.b.name.empty() ? "(unnamed)" : l.b.name, l.matched_by);
    for (const auto& p : l.params) {
      const bool same = p.identical();
      if (!show_layer || (same && !args.all)) continue;
      std::vector<std::string> flags;
      if (p.shape_changed) flags.push_back("shape");
      if (p.dtype_changed) flags.push_back("dtype");
      if (p.quantization_changed) flags.push_back("quantization");
      std::string metrics;
      if (p.values)
        metrics = p.values->differing == 0
                      ? "values equal"
                      : fmt::format("max|a-b| {:.4g}  rel {:.4g}  cos {:.8f}{}", p.values->max_abs_diff,
                                    p.values->rel_error, p.values->cosine,
                                    p.values->nan_mismatch ? fmt::format("  nan mismatches {}", p.values->nan_mismatch) : "");
      else if (!p.note.empty())
        metrics = p.note;
      fmt::print("  {:<14} {} -> {}{}  {}\n", p.role, side_text(p.a), side_text(p.b),
                 flags.empty() ? "" : fmt::format("  changed: {}", fmt::join(flags, ",")), metrics);
    }
  }
  for (const auto& r : d.only_in_a) fmt::print("only in A: {} {}\n", r.key, r.name);
  for (const auto& r : d.only_in_b) fmt::print("only in B: {} {}\n", r.key, r.name);
  const DiffSummary sum = summarize(d);
  std::vector<std::string> by;
  for (const auto& [k, n] : sum.matched_by) by.push_back(fmt::format("{} by {}", n, k));
  fmt::print("{} layers matched ({}), {} only in A, {} only in B; {} parameters: {} identical, {} with other values, "
             "{} shape, {} dtype, {} quantization changes\n",
             sum.matched_layers, fmt::join(by, ", "), sum.only_in_a, sum.only_in_b, sum.params, sum.identical_params,
             sum.values_changed, sum.shape_changed, sum.dtype_changed, sum.quantization_changed);
}

void run_diff(const DiffArgs& args) {
  const Model a = Model::open(args.a);
  const Model b = Model::open(args.b);
  DiffOptions options;
  options.values = !args.no_values;
  if (args.subgraph >= 0) {
    check_subgraph_arg(a, args.subgraph);
    check_subgraph_arg(b, args.subgraph);
    options.subgraph = args.subgraph;
  }
  const ModelDiff d = diff_models(a, b, options);
  if (args.json) print_json(diff_json(d, args));
  else print_diff_text(d, args);
}

}  // namespace

void register_patch_commands(CLI::App& app, Registry& registry) {
  auto pa = std::make_shared<PatchArgs>();
  auto* patch = app.add_subcommand("patch", "replace constant values or quantization parameters, preserving everything else");
  patch->add_option("MODEL", pa->model, "the .tflite file (never modified unless --in-place)")->required();
  patch->add_option("-o,--output", pa->output, "the patched model to write");
  patch->add_option("--set", pa->sets, "SELECTOR=ARRAY.npy (repeatable); SELECTOR: tensor name, #N, or <layer key>/<role>")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  patch->add_option("--set-quant", pa->set_quants,
                    "SELECTOR=scale:S1,S2;zero_point:Z1,Z2;axis:A (or SELECTOR={\"scale\":[...],...}); repeatable")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  patch->add_option("--from", pa->from, "an .npz or .safetensors written by `litelens extract` (edited); repeatable")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  patch->add_option("--manifest", pa->manifest, "take the --from manifest from this export or manifest.json");
  patch->add_option("--layout", pa->layout, "layout of --set arrays for layer-key selectors: tflite, keras or torch")
      ->capture_default_str();
  patch->add_flag("--quantize", pa->quantize, "quantize float32 values with the tensor's own scales and zero points");
  patch->add_flag("--in-place", pa->in_place, "allow writing over MODEL (still atomic)");
  patch->add_option("--subgraph", pa->subgraph, "where tensor names and #N are looked up (#N: default 0)")
      ->check(CLI::NonNegativeNumber);
  patch->add_flag("--json", pa->json, "print the report as JSON");
  registry.add(patch, [pa] { run_patch(*pa); });

  auto da = std::make_shared<DiffArgs>();
  auto* diff = app.add_subcommand("diff", "compare two models parameter by parameter");
  diff->add_option("A", da->a, "the first .tflite file")->required();
  diff->add_option("B", da->b, "the second .tflite file")->required();
  diff->add_flag("--json", da->json, "print JSON instead of text");
  diff->add_flag("--all", da->all, "also list identical parameters");
  diff->add_flag("--no-values", da->no_values, "compare shapes, dtypes and quantization only");
  diff->add_option("--subgraph", da->subgraph, "only this subgraph")->check(CLI::NonNegativeNumber);
  registry.add(diff, [da] { run_diff(*da); });
}

}  // namespace litelens::cli
