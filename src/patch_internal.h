// Shared between the patch implementation files.
#pragma once

#include <filesystem>
#include <functional>

#include "litelens/patch.h"

namespace litelens::detail {

/// The quantization parameters `u` gives tensor `tensor` (validated against its shape and
/// dtype). Throws PatchError.
Quantization apply_quant_update(const Model& model, const PatchTarget& target, int tensor, const QuantUpdate& u);

/// TEST ONLY (the unit tests include src/). Calls `hook` with patch_model()'s temporary output
/// file once it is written and before it is re-opened and compared, so that a test can damage it
/// and check that the patch then fails, leaves the target as it was and removes the temporary.
/// Not thread-safe; an empty function removes the hook.
void set_patch_output_hook_for_testing(std::function<void(const std::filesystem::path& temp)> hook);

}  // namespace litelens::detail
