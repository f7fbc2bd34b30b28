// Small valid models that exercise every part of the format a hostile file can attack. They are
// the starting points of the corruption matrix (tests/unit/corruption_test.cpp) and the built
// half of the fuzz seed corpus (litelens_fuzz_seeds). Test-only: they use ModelBuilder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model_builder.h"

namespace litelens::hardening {

using litelens::testing::ModelBuilder;

/// conv_model() with its int8 weights quantized per output channel (4 scales on axis 0), an
/// int32 bias, per-tensor int8 activations, and min/max on the input.
/// Tensors: 0 input, 1 filter (per-axis), 2 bias, 3 output.
ModelBuilder quantized_model();

/// FULLY_CONNECTED with block-sparse float weights (the digest's worked example: shape [4,4],
/// levels DENSE(2), CSR(int32 segments [0,2,3], indices [0,1,1]), DENSE(2), DENSE(2), 12
/// stored values) and a second, CSR-only weight [3,4] with uint8 segments/indices.
/// Tensors: 0 input, 1 block-sparse weight, 2 output, 3 csr weight.
ModelBuilder sparse_model();

/// A STRING constant ["AB", ""] (tensor 0, shape [2]) and a scalar string "xyz" (tensor 1).
ModelBuilder string_model();

/// Four subgraphs: 0 main with WHILE(cond 1, body 2), IF(then 2, else 3) and CALL_ONCE(init 3);
/// 1 cond (LESS), 2 body (ADD), 3 init (no ops). No cycles.
ModelBuilder control_flow_model();

/// conv_model() plus two signatures, metadata entries ("min_runtime_version",
/// "litelens_notes", opaque bytes) and a legacy metadata_buffer.
ModelBuilder signature_model();

/// A custom op "LitelensCustom" whose options are a FlexBuffer map (numbers, a string, a vector,
/// a nested map, a blob), and a second custom op with opaque (non-FlexBuffer) options.
ModelBuilder custom_model();

/// int4 weights [4,6] (12 packed bytes) with blockwise quantization (block 2, float16 scales
/// tensor [4,3]), an int2 tensor [5] (2 bytes) and a uint4 tensor [3] (2 bytes).
/// Tensors: 0 input, 1 int4 weight, 2 scales, 3 output, 4 int2, 5 uint4.
ModelBuilder subbyte_model();

/// Odd but legal: an unknown builtin code (500), a builtin code above 127, an unknown dtype (100)
/// without data, a variable tensor, a dynamic shape signature, an unknown-rank tensor, and
/// external buffers (a group and one slice) named by a tensor.
ModelBuilder odd_model();

/// The FlexBuffer map used by custom_model() (also a seed for the options decoder).
std::vector<std::uint8_t> sample_flexbuffer();

/// Packs `b` with the custom options of operator (sg, op) moved after the FlatBuffer
/// (large_custom_options_offset/size), the way converters store large payloads.
std::vector<std::byte> finish_with_outside_custom_options(ModelBuilder& b, int sg, int op);

struct ZooModel {
  std::string name;
  std::vector<std::byte> bytes;
};

/// Every model above, finished, plus conv, conv with both constants stored after the
/// FlatBuffer, and conv followed by an appended ZIP archive. Names are file-name safe.
std::vector<ZooModel> zoo();

}  // namespace litelens::hardening
