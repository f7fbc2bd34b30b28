// Role names of operator inputs, and the layout of parameters that have one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "litelens/value.h"

namespace litelens::detail {

/// Role of input `position` of an op with builtin code `opcode` (options decide LSTM variants).
/// Falls back to "input_<position>".
std::string input_role(std::int32_t opcode, const Value& options, std::size_t n_inputs, std::size_t position);

/// A parameter layout: its label and how to reach each framework's layout.
struct LayoutRule {
  std::string_view label;        ///< stored layout, e.g. "OHWI"
  std::string_view keras_label;
  std::vector<int> keras_perm;   ///< empty = identity
  std::string_view torch_label;
  std::vector<int> torch_perm;
  bool depthwise = false;        ///< keras needs C·M split into C and M
};

/// The layout of (opcode, role), if the role carries one.
std::optional<LayoutRule> layout_rule(std::int32_t opcode, std::string_view role, std::size_t rank);

}  // namespace litelens::detail
