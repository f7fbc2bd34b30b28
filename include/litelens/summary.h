// litelens/summary.h: whole-model figures for `litelens info` and friends.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "litelens/dtype.h"
#include "litelens/model.h"

namespace litelens {

/// Constants of one dtype.
struct DTypeTotals {
  std::uint64_t tensors = 0;   ///< constant tensors of this dtype
  std::uint64_t elements = 0;  ///< their (dense) element count, each buffer counted once
  std::uint64_t bytes = 0;     ///< their stored bytes, each buffer counted once
};

struct ModelSummary {
  std::uint64_t tensors = 0;
  std::uint64_t operators = 0;
  std::uint64_t constant_tensors = 0;
  /// Elements of all constants; a buffer shared by several tensors counts once.
  std::uint64_t parameters = 0;
  std::uint64_t constant_bytes = 0;
  /// Tensors whose values live in external files (schema "3d"), and their bytes there; an
  /// ExternalBuffer shared by several tensors counts once.
  std::uint64_t external_tensors = 0;
  std::uint64_t external_bytes = 0;
  /// Operator name (custom ops as "CUSTOM:<code>") to count, over all subgraphs.
  std::map<std::string, std::uint64_t> op_histogram;
  /// By dtype name.
  std::map<std::string, DTypeTotals> by_dtype;
};

/// Counts over every subgraph, or only `subgraph` when it is >= 0. Touches no data pages.
ModelSummary summarize(const Model& model, int subgraph = -1);

/// "CONV_2D", or "CUSTOM:<code>" for a custom op.
std::string display_op_name(const Operator& op);

}  // namespace litelens
