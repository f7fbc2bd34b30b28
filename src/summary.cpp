#include "litelens/summary.h"

#include <cstdint>
#include <set>

namespace litelens {

std::string display_op_name(const Operator& op) {
  if (op.is_custom()) return "CUSTOM:" + std::string(op.custom_code());
  return std::string(op.op_name());
}

ModelSummary summarize(const Model& model, int subgraph) {
  ModelSummary s;
  // Shared (deduplicated) buffers hold one set of numbers, however many tensors use them.
  std::set<std::uint32_t> seen_buffers, seen_external;
  for (const Subgraph sg : model.subgraphs()) {
    if (subgraph >= 0 && sg.index() != subgraph) continue;
    s.tensors += sg.tensor_count();
    s.operators += sg.operator_count();
    for (const Operator op : sg.operators()) ++s.op_histogram[display_op_name(op)];
    for (const Tensor t : sg.tensors()) {
      if (const auto ext = t.external_data()) {
        ++s.external_tensors;
        // Lengths come from the file: saturate rather than wrap.
        if (seen_external.insert(ext->id).second)
          s.external_bytes = ext->length > UINT64_MAX - s.external_bytes ? UINT64_MAX : s.external_bytes + ext->length;
      }
      if (!t.is_constant()) continue;
      ++s.constant_tensors;
      auto& totals = s.by_dtype[std::string(dtype_name(t.dtype()))];
      ++totals.tensors;
      if (!seen_buffers.insert(t.buffer()).second) continue;
      const std::uint64_t elements = t.dtype() == DType::string ? 0 : t.element_count();
      totals.elements += elements;
      totals.bytes += t.data().size();
      s.parameters += elements;
      s.constant_bytes += t.data().size();
    }
  }
  return s;
}

}  // namespace litelens
