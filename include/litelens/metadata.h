// litelens/metadata.h: what a model says about itself (the Model.metadata entries) and the
// associated files appended to it as a ZIP archive. See docs/metadata.md.
//
// Contract:
// - Model::open does not look at metadata contents or the appended archive, so a model with
//   broken metadata still opens. These functions verify what they read when they are called and
//   throw Error(ErrorKind::invalid_metadata, model.label(), message, offset) for broken bytes.
//   They never read out of bounds, whatever the file holds.
// - Unknown enum values and union members (written by newer tools) are not errors: they come
//   back as "UNKNOWN(<code>)" names or Kind::unknown.
// - Results are plain copies: they stay valid after the Model is gone, except the spans returned
//   by associated_file_data(), which point into the Model's bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "litelens/error.h"
#include "litelens/model.h"

namespace litelens {

// ---- TFLITE_METADATA (the "M001" FlatBuffer) ----------------------------------------------------

/// A file the metadata refers to (a member of the appended archive, by name).
struct AssociatedFileInfo {
  std::string name;
  std::string description;
  int type = 0;           ///< AssociatedFileType code
  std::string type_name;  ///< "TENSOR_AXIS_LABELS", "VOCABULARY", ..., "UNKNOWN(9)" for new codes
  std::string locale;
  std::string version;
};

/// An inclusive range of dimension indices.
struct DimensionRange {
  std::int32_t min = 0;
  std::int32_t max = 0;
};

/// What a tensor holds (TensorMetadata.content).
struct ContentInfo {
  enum class Kind : std::uint8_t { none, feature, image, bounding_box, audio, unknown };
  Kind kind = Kind::none;
  int kind_code = 0;  ///< the raw union tag (0 none, 1 feature, 2 image, 3 bounding box, 4 audio)
  // image
  std::string color_space;  ///< "RGB", "GRAYSCALE", "UNKNOWN"
  std::optional<std::uint32_t> default_width;
  std::optional<std::uint32_t> default_height;
  // bounding box
  std::vector<std::uint32_t> box_index;  ///< order of the four values; empty: natural order
  std::string box_type;                  ///< "BOUNDARIES", "UPPER_LEFT", "CENTER", "UNKNOWN"
  std::string coordinate_type;           ///< "RATIO", "PIXEL"
  // audio
  std::uint32_t sample_rate = 0;
  std::uint32_t channels = 0;
  /// Dimensions the content spans; nullopt: all but the batch axis.
  std::optional<DimensionRange> range;
};

/// "none", "feature", "image", "bounding_box", "audio", "unknown".
std::string_view content_kind_name(ContentInfo::Kind kind) noexcept;

/// A processing step applied outside the graph (ProcessUnit).
struct ProcessUnitInfo {
  enum class Kind : std::uint8_t {
    none,
    normalization,
    score_calibration,
    score_thresholding,
    bert_tokenizer,
    sentence_piece_tokenizer,
    regex_tokenizer,
    unknown
  };
  Kind kind = Kind::none;
  int kind_code = 0;  ///< the raw union tag
  // normalization: (x - mean) / std per channel
  std::vector<float> mean;
  std::vector<float> std;
  // score calibration
  std::string score_transformation;  ///< "IDENTITY", "LOG", "INVERSE_LOGISTIC"
  float default_score = 0;
  // score thresholding
  float global_score_threshold = 0;
  // tokenizers
  std::string delim_regex_pattern;                          ///< regex tokenizer
  std::vector<AssociatedFileInfo> vocab_files;              ///< all tokenizers
  std::vector<AssociatedFileInfo> sentence_piece_models;    ///< SentencePiece tokenizer
};

/// "none", "normalization", "score_calibration", "score_thresholding", "bert_tokenizer",
/// "sentence_piece_tokenizer", "regex_tokenizer", "unknown".
std::string_view process_unit_kind_name(ProcessUnitInfo::Kind kind) noexcept;

struct TensorMetadataInfo {
  std::string name;
  std::string description;
  std::vector<std::string> dimension_names;
  std::optional<ContentInfo> content;
  std::vector<ProcessUnitInfo> process_units;
  std::vector<float> stats_max;  ///< per channel; empty when absent
  std::vector<float> stats_min;
  std::vector<AssociatedFileInfo> associated_files;
};

struct TensorGroupInfo {
  std::string name;
  std::vector<std::string> tensor_names;
};

struct CustomMetadataInfo {
  std::string name;
  std::vector<std::uint8_t> data;  ///< opaque to litelens
};

struct SubgraphMetadataInfo {
  std::string name;
  std::string description;
  std::vector<TensorMetadataInfo> inputs;   ///< in the order of Subgraph::inputs()
  std::vector<TensorMetadataInfo> outputs;  ///< in the order of Subgraph::outputs()
  std::vector<AssociatedFileInfo> associated_files;
  std::vector<ProcessUnitInfo> input_process_units;
  std::vector<ProcessUnitInfo> output_process_units;
  std::vector<TensorGroupInfo> input_tensor_groups;
  std::vector<TensorGroupInfo> output_tensor_groups;
  std::vector<CustomMetadataInfo> custom_metadata;
};

/// The decoded TFLITE_METADATA entry.
struct ModelInfo {
  std::string name;
  std::string description;
  std::string version;  ///< the model's own version
  std::string author;
  std::string license;
  std::string min_parser_version;
  std::vector<SubgraphMetadataInfo> subgraphs;
  std::vector<AssociatedFileInfo> associated_files;

  /// Every AssociatedFileInfo anywhere in the metadata (model, subgraphs, tensors, tokenizers),
  /// in document order, duplicates by name removed.
  std::vector<AssociatedFileInfo> all_associated_files() const;
};

/// Decodes the TFLITE_METADATA entry; nullopt when the model has none. Throws
/// Error(invalid_metadata) when the entry is empty, lacks the "M001" identifier, fails the
/// FlatBuffers verifier, or shares tables so heavily that decoding would not end (the decoded
/// size is bounded by a multiple of the buffer's size).
std::optional<ModelInfo> read_model_metadata(const Model& model);

/// Decodes a TFLITE_METADATA buffer given directly (`label` names it in errors).
ModelInfo decode_model_metadata(std::span<const std::byte> bytes, const std::string& label = "<memory>",
                                std::optional<std::uint64_t> offset = std::nullopt);

// ---- CONVERSION_METADATA ----------------------------------------------------------------------

struct ConversionInfo {
  std::string tensorflow_version;
  std::uint32_t api_version = 0;
  std::string model_type;  ///< "TF_SAVED_MODEL", "KERAS_MODEL", ..., "UNKNOWN(n)"
  std::uint64_t model_hash = 0;
  std::vector<std::string> optimization_modes;  ///< "PTQ_FLOAT16", ..., "UNKNOWN(n)"
  bool allow_custom_ops = false;
  bool enable_select_tf_ops = false;
  bool force_select_tf_ops = false;
  std::vector<std::vector<std::uint32_t>> sparsity_block_sizes;
  bool has_environment = false;
  bool has_options = false;
};

/// Decodes the CONVERSION_METADATA entry; nullopt when absent. Throws Error(invalid_metadata).
std::optional<ConversionInfo> read_conversion_metadata(const Model& model);

// ---- The small well-known entries -------------------------------------------------------------

struct RuntimeVersion {
  std::string version;      ///< the bytes up to the first NUL
  bool terminated = true;   ///< false when there is no NUL (the runtime calls that malformed)
};

/// The min_runtime_version entry; nullopt when absent. Never throws for its content.
std::optional<RuntimeVersion> read_min_runtime_version(const Model& model);

/// Bytes as text when they are printable ASCII (trailing NULs dropped), otherwise as
/// "0x" followed by lowercase hex. Used for buffer_location and reduced_precision_support.
std::string metadata_bytes_text(std::span<const std::byte> bytes);

// ---- Associated files (the ZIP archive after the FlatBuffer) ----------------------------------

/// One member of the appended archive.
struct AssociatedFile {
  std::string name;                    ///< a safe relative path ("labels.txt", "vocab/en.txt")
  std::uint64_t offset = 0;            ///< absolute file offset of the stored bytes
  std::uint64_t size = 0;              ///< bytes once decompressed
  std::uint64_t compressed_size = 0;   ///< bytes stored in the file (== size when stored)
  std::uint16_t compression = 0;       ///< ZIP method: 0 stored, 8 deflate; others are unsupported
  std::string compression_name;        ///< "stored", "deflate", "method N"
  std::uint32_t crc32 = 0;             ///< as recorded by the archive
  std::uint64_t header_offset = 0;     ///< absolute offset of the member's local header

  bool is_stored() const noexcept { return compression == 0; }
  /// True when read_associated_file() can decode it (stored or deflate).
  bool is_supported() const noexcept { return compression == 0 || compression == 8; }
};

/// The members of the archive appended to the model (directory entries left out), in archive
/// order; empty when there is no archive. The whole archive is checked first: names that could
/// escape an output folder (absolute, "..", backslashes, NUL), offsets or sizes beyond the file,
/// overlapping members, local headers that contradict the central directory and absurd entry
/// counts all throw Error(invalid_metadata).
std::vector<AssociatedFile> associated_files(const Model& model);

/// The member called `name`, if any. Throws like associated_files().
std::optional<AssociatedFile> find_associated_file(const Model& model, std::string_view name);

/// Zero-copy bytes of a stored member, after checking its CRC-32 (Error(invalid_metadata) on a
/// mismatch). Throws std::invalid_argument for a compressed member: use read_associated_file().
/// The span stays valid while `model` lives.
std::span<const std::byte> associated_file_data(const Model& model, const AssociatedFile& file);

/// The member's decompressed bytes, CRC-checked. Throws Error(invalid_metadata) for corrupt data
/// or an unsupported compression method.
std::vector<std::byte> read_associated_file(const Model& model, const AssociatedFile& file);

/// Writes every member under `dir` (created if needed), each atomically: into a temporary file
/// in the destination folder, flushed with fsync, then renamed over the final name. Every member
/// is decoded and CRC-checked before any final name appears, so a corrupt archive leaves no new
/// files behind. Returns the paths written. Throws Error(invalid_metadata) for a broken archive
/// and Error(ErrorKind::output, <path>, reason) when writing fails; temporary files are removed.
std::vector<std::filesystem::path> extract_associated_files(const Model& model, const std::filesystem::path& dir);

}  // namespace litelens
