#include "json_view.h"

#include "litelens/summary.h"
#include "metadata_view.h"

namespace litelens::cli {

using json = nlohmann::ordered_json;

namespace {

template <class Span>
json list(const Span& values) {
  json out = json::array();
  for (const auto& v : values) out.push_back(v);
  return out;
}

json sparsity_json(const std::optional<SparsitySpec>& spec) {
  if (!spec) return nullptr;
  json levels = json::array();
  for (const auto& level : spec->levels) {
    json l = {{"format", level.is_sparse ? "SPARSE_CSR" : "DENSE"}, {"dense_size", level.dense_size}};
    if (level.is_sparse) {
      l["array_segments"] = list(level.segments);
      l["array_indices"] = list(level.indices);
    }
    levels.push_back(std::move(l));
  }
  return {{"traversal_order", list(spec->traversal_order)},
          {"block_map", list(spec->block_map)},
          {"dim_metadata", std::move(levels)}};
}

bool in_scope(int index, int subgraph) { return subgraph < 0 || index == subgraph; }

}  // namespace

json tensor_json(const Tensor& t) {
  json out = {{"index", t.index()},
              {"name", t.name()},
              {"shape", list(t.shape())},
              {"shape_signature", list(t.shape_signature())},
              {"dtype", is_known(t.dtype()) ? std::string(dtype_name(t.dtype()))
                                            : "unknown(" + std::to_string(t.dtype_code()) + ")"},
              {"buffer", t.buffer()},
              {"nbytes", t.data().size()},
              {"data_offset", nullptr},
              {"is_variable", t.is_variable()},
              {"is_constant", t.is_constant()},
              {"quantization", to_json(t.quantization())},
              {"sparsity", sparsity_json(t.sparsity())}};
  if (auto offset = t.data_offset()) out["data_offset"] = *offset;
  if (t.external_buffer() != 0) out["external_buffer"] = t.external_buffer();
  if (const auto ext = t.external_data())
    out["external_data"] = {{"id", ext->id},         {"group", ext->group},   {"group_name", ext->group_name},
                            {"offset", ext->offset}, {"length", ext->length}, {"packing", ext->packing}};
  return out;
}

json operator_json(const Operator& op) {
  json out = {{"index", op.index()},
              {"op", op.op_name()},
              {"opcode", op.opcode()},
              {"custom_code", nullptr},
              {"version", op.version()},
              {"inputs", list(op.inputs())},
              {"outputs", list(op.outputs())},
              {"intermediates", list(op.intermediates())},
              {"options_type", op.options_type().empty() ? json(nullptr) : json(op.options_type())},
              {"options", to_json(op.options())}};
  if (op.is_custom()) out["custom_code"] = op.custom_code();
  return out;
}

json tensors_document(const Model& model, int subgraph) {
  json subgraphs = json::array();
  for (const Subgraph sg : model.subgraphs()) {
    if (!in_scope(sg.index(), subgraph)) continue;
    json tensors = json::array();
    for (const Tensor t : sg.tensors()) tensors.push_back(tensor_json(t));
    subgraphs.push_back({{"index", sg.index()}, {"name", sg.name()}, {"tensors", std::move(tensors)}});
  }
  return {{"subgraphs", std::move(subgraphs)}};
}

json ops_document(const Model& model, int subgraph) {
  json subgraphs = json::array();
  for (const Subgraph sg : model.subgraphs()) {
    if (!in_scope(sg.index(), subgraph)) continue;
    json ops = json::array();
    for (const Operator op : sg.operators()) ops.push_back(operator_json(op));
    subgraphs.push_back({{"index", sg.index()}, {"name", sg.name()}, {"operators", std::move(ops)}});
  }
  return {{"subgraphs", std::move(subgraphs)}};
}

json info_document(const Model& model, int subgraph) {
  const ModelSummary s = summarize(model, subgraph);
  json subgraphs = json::array();
  for (const Subgraph sg : model.subgraphs()) {
    if (!in_scope(sg.index(), subgraph)) continue;
    subgraphs.push_back({{"index", sg.index()},
                         {"name", sg.name()},
                         {"tensors", sg.tensor_count()},
                         {"operators", sg.operator_count()},
                         {"inputs", list(sg.inputs())},
                         {"outputs", list(sg.outputs())}});
  }
  json by_dtype = json::object();
  for (const auto& [name, totals] : s.by_dtype)
    by_dtype[name] = {{"tensors", totals.tensors}, {"elements", totals.elements}, {"bytes", totals.bytes}};
  json metadata = json::array();
  for (const auto& entry : model.metadata()) metadata.push_back({{"name", entry.name}, {"bytes", entry.data.size()}});
  json signatures = json::array();
  for (const auto& sig : model.signatures()) {
    const auto bindings = [](const std::vector<SignatureDef::Binding>& list_in) {
      json out = json::array();
      for (const auto& b : list_in) out.push_back({{"name", b.name}, {"tensor", b.tensor}});
      return out;
    };
    signatures.push_back({{"key", sig.key},
                          {"subgraph", sig.subgraph},
                          {"inputs", bindings(sig.inputs)},
                          {"outputs", bindings(sig.outputs)}});
  }
  json warnings = json::array();
  for (const auto& w : model.warnings()) {
    json item = {{"code", w.code}, {"message", w.message}};
    if (w.offset) item["offset"] = *w.offset;
    if (w.tensor >= 0) {
      item["subgraph"] = w.subgraph;
      item["tensor"] = w.tensor;
    }
    warnings.push_back(std::move(item));
  }
  return {{"path", model.label()},
          {"identifier", "TFL3"},
          {"version", model.version()},
          {"description", model.description()},
          {"file_size", model.file_size()},
          {"flatbuffer_size", model.flatbuffer_size()},
          {"subgraphs", std::move(subgraphs)},
          {"tensors", s.tensors},
          {"operators", s.operators},
          {"op_histogram", s.op_histogram},
          {"constant_tensors", s.constant_tensors},
          {"parameters", s.parameters},
          {"constant_bytes", s.constant_bytes},
          {"external_tensors", s.external_tensors},
          {"external_bytes", s.external_bytes},
          {"by_dtype", std::move(by_dtype)},
          {"metadata", std::move(metadata)},
          {"model_metadata", model_metadata_json(model)},
          {"signatures", std::move(signatures)},
          {"warnings", std::move(warnings)}};
}

}  // namespace litelens::cli
