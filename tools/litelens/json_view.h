// The CLI's JSON documents (the contract in docs/cli.md).
#pragma once

#include <nlohmann/json.hpp>

#include "litelens/json.h"
#include "litelens/model.h"

namespace litelens::cli {

nlohmann::ordered_json tensor_json(const Tensor& tensor);
nlohmann::ordered_json operator_json(const Operator& op);

/// `tensors --json`, `ops --json` and `info --json`; subgraph < 0 means all.
nlohmann::ordered_json tensors_document(const Model& model, int subgraph);
nlohmann::ordered_json ops_document(const Model& model, int subgraph);
nlohmann::ordered_json info_document(const Model& model, int subgraph);

}  // namespace litelens::cli
