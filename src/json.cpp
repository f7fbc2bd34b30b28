#include "litelens/json.h"

namespace litelens {

using json = nlohmann::ordered_json;

json to_json(const Value& value) {
  return std::visit(
      [](const auto& v) -> json {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return nullptr;
        } else if constexpr (std::is_same_v<T, Value::List>) {
          json out = json::array();
          for (const auto& item : v) out.push_back(to_json(item));
          return out;
        } else if constexpr (std::is_same_v<T, Value::Map>) {
          json out = json::object();
          for (const auto& [k, item] : v) out[k] = to_json(item);
          return out;
        } else {
          return v;
        }
      },
      value.storage());
}

json to_json(const std::optional<Quantization>& q) {
  if (!q) return nullptr;
  json out = {{"scale", q->scale},
              {"zero_point", q->zero_point},
              {"quantized_dimension", q->quantized_dimension},
              {"scheme", scheme_name(q->scheme)}};
  if (!q->min.empty()) out["min"] = q->min;
  if (!q->max.empty()) out["max"] = q->max;
  if (q->scheme == Quantization::Scheme::blockwise || q->scheme == Quantization::Scheme::multi_axis) {
    out["scales_tensor"] = q->scales_tensor;
    out["zero_points_tensor"] = q->zero_points_tensor;
    out["block_size"] = q->block_size;
  }
  if (q->scheme == Quantization::Scheme::multi_axis) out["quantized_dimensions"] = q->quantized_dimensions;
  if (q->scheme == Quantization::Scheme::custom) out["custom"] = q->custom;
  return out;
}

}  // namespace litelens
