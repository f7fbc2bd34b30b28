// Small valid models that exercise every part of the format a hostile file can attack. They are
// the starting points of the corruption matrix (tests/unit/corruption_test.cpp) and the built
// half of the fuzz seed corpus (litelens_fuzz_seeds). Test-only: they use ModelBuilder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "metadata_generated.h"
#include "model_builder.h"

namespace litelens::hardening {

using litelens::testing::ModelBuilder;

/// conv_model() with its int8 weights quantized per output channel (4 scales on axis 0), an
/// int32 bias, per-tensor int8 activations, and min/max on the input.
/// Tensors: 0 input, 1 filter (per-axis), 2 bias, 3 output.
ModelBuilder quantized_model();

/// FULLY_CONNECTED with block-sparse float weights (the example worked in include/litelens/decode.h: shape [4,4],
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

// ---- Metadata and appended archives -----------------------------------------------------------
// Shared by tests/unit/metadata_test.cpp, the metadata cases of the corruption matrix and the
// zoo's metadata bases.

/// A TFLITE_METADATA table that uses every table, union member and enum of the metadata schema
/// (model "Bird classifier"; its exact content is asserted by metadata_test.decodes_every_field).
tflite_metadata::ModelMetadataT sample_model_metadata();
/// `m` packed as an "M001" FlatBuffer.
std::vector<std::uint8_t> pack_model_metadata(const tflite_metadata::ModelMetadataT& m);

/// An AssociatedFile entry of a metadata buffer.
inline std::unique_ptr<tflite_metadata::AssociatedFileT> file_ref(std::string name, tflite_metadata::AssociatedFileType type,
                                                                std::string locale = "", std::string version = "",
                                                                std::string description = "") {
  auto f = std::make_unique<tflite_metadata::AssociatedFileT>();
  f->name = std::move(name);
  f->type = type;
  f->locale = std::move(locale);
  f->version = std::move(version);
  f->description = std::move(description);
  return f;
}

/// A ProcessUnit holding `options` (NormalizationOptions, a tokenizer's options, ...).
template <class T>
std::unique_ptr<tflite_metadata::ProcessUnitT> unit(T&& options) {
  auto u = std::make_unique<tflite_metadata::ProcessUnitT>();
  u->options.Set(std::forward<T>(options));
  return u;
}
/// A CONVERSION_METADATA buffer: TF 2.16.1, API 2, KERAS_MODEL, hash 0x0123456789abcdef,
/// modes [PTQ_FULL_INTEGER, 4242 (unknown)], allow_custom_ops, force_select_tf_ops, blocks [[4,1]].
std::vector<std::uint8_t> sample_conversion_metadata();

/// conv_model() with min_runtime_version "2.3.0", the sample TFLITE_METADATA and the sample
/// CONVERSION_METADATA.
ModelBuilder metadata_model();

// A small ZIP writer with its own CRC-32, independent of the library's reader.
std::uint32_t zip_crc32(std::span<const std::uint8_t> data);
void put16(std::vector<std::uint8_t>& v, std::uint64_t x);
void put32(std::vector<std::uint8_t>& v, std::uint64_t x);
void put64(std::vector<std::uint8_t>& v, std::uint64_t x);
void set16(std::vector<std::uint8_t>& v, std::size_t at, std::uint64_t x);
void set32(std::vector<std::uint8_t>& v, std::size_t at, std::uint64_t x);
void set64(std::vector<std::uint8_t>& v, std::size_t at, std::uint64_t x);
std::uint32_t get32(const std::vector<std::uint8_t>& v, std::size_t at);

struct ZipEntry {
  std::string name;
  std::vector<std::uint8_t> stored;  ///< the bytes as they sit in the archive
  std::uint16_t method = 0;
  std::uint32_t size = 0;            ///< uncompressed
  std::uint32_t crc = 0;
  std::uint16_t flags = 0;
  std::uint32_t external_attributes = 0;  ///< high 16 bits: Unix mode (0120777 marks a symlink)
};

ZipEntry stored_entry(std::string name, const std::string& content);
/// A DEFLATE stream made of one uncompressed ("stored") block: valid input for any inflater.
ZipEntry deflate_block_entry(std::string name, const std::string& content);
/// animals_text(), compressed with zlib level 9 (raw DEFLATE, 21 bytes).
ZipEntry deflated_animals(std::string name);
/// "cat\ndog\ncat\ndog\ncat\ndog\nbird\n" four times.
const std::string& animals_text();

struct ZipOptions {
  bool relative = false;  ///< offsets counted from the archive start instead of the file start
  bool zip64 = false;     ///< ZIP64 end record and per-entry ZIP64 fields
  std::string comment;
};

struct Zip {
  std::vector<std::uint8_t> bytes;
  std::vector<std::size_t> local;    ///< local header positions (in bytes)
  std::vector<std::size_t> central;  ///< central directory entry positions
  std::size_t cd = 0;
  std::size_t eocd = 0;
  std::size_t zip64_record = 0;
  std::size_t zip64_locator = 0;
};

/// An archive of `entries`; `base` is where it will start in the file.
Zip make_zip(const std::vector<ZipEntry>& entries, std::uint64_t base, const ZipOptions& o = {});
/// `model` followed by the archive.
std::vector<std::byte> with_archive(std::vector<std::byte> model, const Zip& z);

struct ZooModel {
  std::string name;
  std::vector<std::byte> bytes;
};

/// Every model above, finished, plus conv, conv with both constants stored after the
/// FlatBuffer, conv followed by an appended ZIP archive, and (last, so earlier indices stay put)
/// metadata_model() followed by an archive of the files its metadata names ("metadata_zip":
/// stored and deflate members, absolute offsets) and the same with both constants stored after
/// the FlatBuffer and a ZIP64 archive with offsets relative to its start ("metadata_zip64").
/// Names are file-name safe.
std::vector<ZooModel> zoo();

}  // namespace litelens::hardening
