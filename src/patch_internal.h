// Shared between the patch implementation files.
#pragma once

#include "litelens/patch.h"

namespace litelens::detail {

/// The quantization parameters `u` gives tensor `tensor` (validated against its shape and
/// dtype). Throws PatchError.
Quantization apply_quant_update(const Model& model, const PatchTarget& target, int tensor, const QuantUpdate& u);

}  // namespace litelens::detail
