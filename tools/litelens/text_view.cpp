#include "text_view.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "litelens/summary.h"
#include "metadata_view.h"

namespace litelens::cli {

namespace {

bool in_scope(int index, int subgraph) { return subgraph < 0 || index == subgraph; }

std::string human_bytes(std::uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", n) : fmt::format("{:.1f} {}", v, units[u]);
}

std::string shape_text(std::span<const std::int32_t> shape) { return fmt::format("[{}]", fmt::join(shape, ",")); }

std::string quant_text(const std::optional<Quantization>& q) {
  if (!q) return "";
  switch (q->scheme) {
    case Quantization::Scheme::blockwise:
      return fmt::format("blockwise(block={}, scales=#{})", q->block_size, q->scales_tensor);
    case Quantization::Scheme::multi_axis:
      return fmt::format("multi_axis(dims=[{}], scales=#{})", fmt::join(q->quantized_dimensions, ","), q->scales_tensor);
    case Quantization::Scheme::custom: return fmt::format("custom({} bytes)", q->custom.size());
    case Quantization::Scheme::unknown: return "unknown scheme";
    case Quantization::Scheme::affine: break;
  }
  if (q->scale.empty()) return "range only";
  const std::int64_t zp = q->zero_point.empty() ? 0 : q->zero_point[0];
  if (q->scale.size() == 1) return fmt::format("s={:.6g} zp={}", q->scale[0], zp);
  return fmt::format("per-axis {} on dim {} (s[0]={:.6g})", q->scale.size(), q->quantized_dimension, q->scale[0]);
}

// One line per option, compact: "padding=SAME stride=2x2".
std::string value_text(const Value& v) {
  if (v.is_null()) return "null";
  if (v.is_bool()) return v.as_bool() ? "true" : "false";
  if (v.is_int()) return std::to_string(v.as_int());
  if (v.is_uint()) return std::to_string(v.as_uint());
  if (v.is_double()) return fmt::format("{:g}", v.as_double());
  if (v.is_string()) return v.as_string();
  if (v.is_list()) {
    std::vector<std::string> parts;
    for (const auto& item : v.as_list()) parts.push_back(value_text(item));
    if (parts.size() > 8) {
      parts.resize(8);
      parts.push_back("...");
    }
    return fmt::format("[{}]", fmt::join(parts, ","));
  }
  std::vector<std::string> parts;
  for (const auto& [k, item] : v.as_map()) parts.push_back(k + "=" + value_text(item));
  return fmt::format("{{{}}}", fmt::join(parts, " "));
}

std::string options_text(const Value& options) {
  if (!options.is_map()) return value_text(options);
  std::vector<std::string> parts;
  for (const auto& [k, item] : options.as_map()) parts.push_back(k + "=" + value_text(item));
  return fmt::format("{}", fmt::join(parts, " "));
}

std::string index_list(std::span<const std::int32_t> list) { return fmt::format("{}", fmt::join(list, ",")); }

}  // namespace

void print_info(std::FILE* out, const Model& model, int subgraph) {
  const ModelSummary s = summarize(model, subgraph);
  fmt::print(out, "model        {}\n", model.label());
  fmt::print(out, "format       TFL3, schema version {}\n", model.version());
  fmt::print(out, "description  {}\n", model.description());
  fmt::print(out, "file size    {} ({} bytes)\n", human_bytes(model.file_size()), model.file_size());
  fmt::print(out, "flatbuffer   {} bytes{}\n", model.flatbuffer_size(),
             model.file_size() > model.flatbuffer_size()
                 ? fmt::format(" ({} bytes after it)", model.file_size() - model.flatbuffer_size())
                 : "");
  fmt::print(out, "parameters   {} in {} constant tensors, {}\n", s.parameters, s.constant_tensors,
             human_bytes(s.constant_bytes));
  if (s.external_tensors)
    fmt::print(out, "external     {} tensors with values in external files, {}\n", s.external_tensors,
               human_bytes(s.external_bytes));

  fmt::print(out, "\nsubgraphs\n");
  for (const Subgraph sg : model.subgraphs()) {
    if (!in_scope(sg.index(), subgraph)) continue;
    fmt::print(out, "  #{:<3} {:<24} {:>6} tensors {:>5} ops  inputs [{}] outputs [{}]\n", sg.index(),
               sg.name().empty() ? "(unnamed)" : sg.name(), sg.tensor_count(), sg.operator_count(),
               index_list(sg.inputs()), index_list(sg.outputs()));
  }

  fmt::print(out, "\noperators ({} in all)\n", s.operators);
  std::vector<std::pair<std::string, std::uint64_t>> ops(s.op_histogram.begin(), s.op_histogram.end());
  std::stable_sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  for (const auto& [name, count] : ops) fmt::print(out, "  {:<40} {:>6}\n", name, count);

  fmt::print(out, "\nconstants by dtype\n");
  for (const auto& [name, t] : s.by_dtype)
    fmt::print(out, "  {:<14} {:>6} tensors {:>14} elements {:>12}\n", name, t.tensors, t.elements, human_bytes(t.bytes));

  const auto metadata = model.metadata();
  if (!metadata.empty()) {
    fmt::print(out, "\nmetadata\n");
    for (const auto& e : metadata) fmt::print(out, "  {:<32} {:>10} bytes\n", e.name, e.data.size());
  }
  print_model_metadata(out, model);
  const auto signatures = model.signatures();
  if (!signatures.empty()) {
    fmt::print(out, "\nsignatures\n");
    for (const auto& sig : signatures) {
      std::vector<std::string> ins, outs;
      for (const auto& b : sig.inputs) ins.push_back(fmt::format("{}=#{}", b.name, b.tensor));
      for (const auto& b : sig.outputs) outs.push_back(fmt::format("{}=#{}", b.name, b.tensor));
      fmt::print(out, "  {} (subgraph {}): inputs {} -> outputs {}\n", sig.key, sig.subgraph, fmt::join(ins, ", "),
                 fmt::join(outs, ", "));
    }
  }
  if (!model.warnings().empty()) {
    fmt::print(out, "\nwarnings\n");
    for (const auto& w : model.warnings()) fmt::print(out, "  [{}] {}\n", w.code, w.message);
  }
}

void print_tensors(std::FILE* out, const Model& model, int subgraph) {
  for (const Subgraph sg : model.subgraphs()) {
    if (!in_scope(sg.index(), subgraph)) continue;
    fmt::print(out, "subgraph {} {}\n", sg.index(), sg.name());
    fmt::print(out, "  {:>5}  {:<48} {:<18} {:<10} {:>6} {:>10}  {}\n", "index", "name", "shape", "dtype", "buffer",
               "bytes", "quantization");
    for (const Tensor t : sg.tensors()) {
      std::string flags;
      if (t.is_variable()) flags += " variable";
      if (t.is_sparse()) flags += " sparse";
      if (const auto ext = t.external_data())
        flags += fmt::format(" external:{}@{}+{}", ext->group_name, ext->offset, ext->length);
      fmt::print(out, "  {:>5}  {:<48} {:<18} {:<10} {:>6} {:>10}  {}{}\n", t.index(), t.name(), shape_text(t.shape()),
                 dtype_name(t.dtype()), t.buffer(), t.data().size(), quant_text(t.quantization()), flags);
    }
  }
}

void print_ops(std::FILE* out, const Model& model, int subgraph) {
  for (const Subgraph sg : model.subgraphs()) {
    if (!in_scope(sg.index(), subgraph)) continue;
    fmt::print(out, "subgraph {} {}\n", sg.index(), sg.name());
    for (const Operator op : sg.operators()) {
      fmt::print(out, "  {:>5}  {:<28} in [{}] out [{}]  {}\n", op.index(), display_op_name(op), index_list(op.inputs()),
                 index_list(op.outputs()), options_text(op.options()));
    }
  }
}

}  // namespace litelens::cli
