// litelens/json.h: the library's values as JSON (nlohmann::json, header-only), one definition
// shared by the CLI, the exports' manifests and the diff report.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>

#include "litelens/model.h"
#include "litelens/value.h"

namespace litelens {

/// null, booleans, numbers, strings, lists and maps (keys in declaration order).
nlohmann::ordered_json to_json(const Value& value);

/// null, or {"scale", "zero_point", "quantized_dimension", "scheme", "min"?, "max"?,
/// "scales_tensor"?, "zero_points_tensor"?, "block_size"?, "quantized_dimensions"?, "custom"?}.
nlohmann::ordered_json to_json(const std::optional<Quantization>& quantization);

}  // namespace litelens
