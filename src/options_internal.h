// Operator options through the reflection schema, and FlexBuffers payloads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

#include "litelens/value.h"
#include "tflite_generated.h"

namespace litelens::detail {

/// Verifies a FlexBuffers payload (bounded, linear time).
bool verify_flexbuffer(std::span<const std::byte> bytes);

/// Decodes a verified FlexBuffers payload into a Value.
Value decode_flexbuffer(std::span<const std::byte> bytes);

/// Calls `fn(subgraph_index, field_name)` for every field of the operator's option tables that
/// names a subgraph (IF branches, WHILE bodies, CALL_ONCE, composites, StableHLO regions...).
void for_each_subgraph_reference(const tflite::Operator* op,
                                 const std::function<void(std::int64_t, std::string_view)>& fn);

/// Name of the table in the options union(s) in use, "" when none.
std::string_view options_type_name(const tflite::Operator* op);

/// Both builtin options unions decoded into one map, every field with its value or default.
Value decode_builtin_options(const tflite::Operator* op);

}  // namespace litelens::detail
