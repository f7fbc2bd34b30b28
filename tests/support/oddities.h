// Test-only: every oddity litelens tolerates (a warning, not an error; docs/format.md lists them),
// as an edit that applies to any model, built or real. tests/unit/oddity_test.cpp checks that each
// opens with its warning on every base, and writes the cases for the property test
// (tests/corruption/oddity_matrix.py), which runs every command on them.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "model_builder.h"

namespace litelens::testing {

struct Oddity {
  std::string code;  ///< the warning the edited model must raise
  std::string name;  ///< unique and file-name safe
  /// Edits the model; false when it has no place for this oddity.
  std::function<bool(ModelBuilder&)> edit;
  /// Oddities of the byte layout edit the packed file afterwards (empty for the others).
  std::function<bool(std::vector<std::byte>&)> edit_packed;
};

/// The catalogue: at least one entry per warning code validate.cpp can give.
const std::vector<Oddity>& tolerated_oddities();

/// `base` (a model whose data is all inside its FlatBuffer) with `oddity` applied, or nullopt
/// when the base has no place for it.
std::optional<std::vector<std::byte>> with_oddity(std::span<const std::byte> base, const Oddity& oddity);

}  // namespace litelens::testing
