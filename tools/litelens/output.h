// Output helpers shared by the commands.
#pragma once

#include <nlohmann/json.hpp>

#include "litelens/model.h"

namespace litelens::cli {

/// Prints a JSON document on stdout (invalid UTF-8 in names is replaced, not fatal).
void print_json(const nlohmann::ordered_json& doc);

/// Throws UsageError when `subgraph` (>= 0) is not a subgraph of `model`.
void check_subgraph_arg(const Model& model, int subgraph);

}  // namespace litelens::cli
