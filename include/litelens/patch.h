// litelens/patch.h: write parameters back into a model: new constant values and new
// quantization parameters, with everything else preserved. See docs/patch.md.
//
// What a patch guarantees:
// - Every buffer that is not patched keeps its exact bytes; metadata entries, signatures,
//   descriptions, operator options and the appended associated-file archive are kept (the
//   archive is re-appended and its offsets rewritten when they are absolute).
// - Buffers stored after the FlatBuffer (the over-2-GB layout) stay there: the FlatBuffer is
//   rebuilt, the payloads are copied after it (each 16-byte aligned) and their offsets rewritten.
//   Inline buffers start on a 16-byte boundary (FlatBufferBuilder honours the schema's
//   force_align: 16).
// - A buffer shared by several tensors is split when only some of them get new bytes; the
//   report says so.
// - Output goes to a temporary file in the target folder, is re-opened and validated by
//   Model::open, compared with the input (patched tensors hold the new bytes, all others the old
//   ones), and only then renamed into place. The input is only ever read. Writing over the input
//   path needs PatchOptions::in_place and is just as atomic.
// - Links: in place (PatchOptions::in_place), a link (or chain of links) to the input is written
//   through: the file it leads to is replaced (the temporary is created beside that file) and the
//   link stays. Any other output path that is a link, dangling or not, is not followed: the link
//   itself is replaced by the new file and lends it nothing. A regular file that is replaced
//   keeps its permission bits, and its owner and group when the process may set them; a new file
//   gets 0666 minus the umask.
//
// Errors: a patch that cannot be applied as asked (unknown selector, shape or dtype mismatch,
// values that do not fit) throws PatchError before anything is written; problems with the input
// file throw litelens::Error as everywhere; a failed write throws Error(ErrorKind::output).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "litelens/array.h"
#include "litelens/layer.h"
#include "litelens/model.h"

namespace litelens {

/// A patch that cannot be applied as asked. what() is one readable line.
class PatchError : public std::invalid_argument {
 public:
  enum class Kind : std::uint8_t {
    unknown_selector,    ///< no tensor or layer parameter matches the selector
    ambiguous_selector,  ///< a tensor name used by several tensors
    not_constant,        ///< the tensor has no values in the file (fed at run time, variable, external)
    shape_mismatch,      ///< the new values' shape differs from the stored tensor's
    dtype_mismatch,      ///< the new values' dtype cannot be stored without --quantize, or at all
    value_out_of_range,  ///< e.g. 9 for an int4 tensor, or NaN to quantize
    sparsity_mismatch,   ///< non-zeros outside a sparse constant's stored pattern
    bad_quantization,    ///< malformed or inconsistent --set-quant parameters
    unsupported,         ///< a case litelens does not write (blockwise requantization, unknown fields...)
    duplicate,           ///< two updates for one tensor
    in_place_required,   ///< the output path is the input model
    bad_values_file,     ///< an .npy/.npz/.safetensors/manifest that cannot be used
    manifest_mismatch,   ///< an export's manifest describes another model
  };
  PatchError(Kind kind, const std::string& message) : std::invalid_argument(message), kind_(kind) {}
  Kind kind() const noexcept { return kind_; }

 private:
  Kind kind_;
};

/// Stable lowercase name of a kind ("shape_mismatch").
std::string_view patch_error_kind_name(PatchError::Kind kind) noexcept;

/// Where a selector leads.
struct PatchTarget {
  int subgraph = 0;
  int selected_tensor = -1;       ///< the tensor the selector names (an op input for layer keys)
  int tensor = -1;                ///< the constant holding its values; -1 when it has none
  std::vector<std::string> via;   ///< DEQUANTIZE / DENSIFY ops followed from selected to stored
  std::optional<Layer> layer;     ///< set for "<layer key>/<role>" selectors
  std::optional<Param> param;
  /// "sg0 #12 'conv/filter'" (the stored tensor when there is one), for messages.
  std::string describe(const Model& model) const;
};

/// Resolves a selector:
///   "#N"                       tensor N of `subgraph` (default 0);
///   "<layer key>/<role>"       a layer parameter as exports name it ("sg0.op12.CONV_2D/filter");
///   anything else              an exact tensor name, looked up in `subgraph` or, when it is
///                              nullopt, in every subgraph; it must name exactly one tensor.
/// A non-constant tensor produced by DEQUANTIZE or DENSIFY is followed back to its constant.
/// Throws PatchError (unknown_selector with close names, ambiguous_selector).
PatchTarget resolve_selector(const Model& model, std::string_view selector, std::optional<int> subgraph = std::nullopt);

/// New values for one tensor.
struct ValueUpdate {
  std::string selector;
  Array values;                           ///< dense, row-major, in `layout`
  Framework layout = Framework::tflite;   ///< keras/torch: inverted through the layer's layout (layer-key selectors)
  bool quantize = false;                  ///< float32 may be quantized with the tensor's own parameters
  std::string source;                     ///< where the values come from, for messages
};

/// New affine quantization parameters for one tensor. The stored integers are not changed
/// (their real values are); give new float values with quantize in the same patch to re-quantize.
struct QuantUpdate {
  std::string selector;
  std::vector<float> scale;                        ///< one (per tensor) or shape[axis] values, each > 0 and finite
  std::vector<std::int64_t> zero_point;            ///< empty: all 0; one value: used for every channel
  std::optional<std::int32_t> quantized_dimension; ///< unchanged (or 0 for a new table) when nullopt
  std::optional<std::vector<float>> min;           ///< calibration range; kept when nullopt
  std::optional<std::vector<float>> max;
};

/// Parses a --set-quant value: "scale:0.1,0.2;zero_point:0,0;axis:0" (keys scale, zero_point
/// (or zp), axis (or quantized_dimension), min, max; lists separated by ','), or the JSON object
/// {"scale": [...], "zero_point": [...], "quantized_dimension": 0, "min": [...], "max": [...]}
/// (a litelens manifest's "quantization" entry is accepted as is). Throws PatchError(bad_quantization).
QuantUpdate parse_quant_spec(std::string selector, std::string_view spec);

/// Everything one patch changes.
struct PatchSpec {
  std::vector<ValueUpdate> values;
  std::vector<QuantUpdate> quantization;
};

struct PatchOptions {
  std::optional<int> subgraph;  ///< where names and "#N" are looked up ("#N": subgraph 0 by default)
  bool quantize = false;        ///< allow float32 values for quantized tensors (see ValueUpdate::quantize)
  bool in_place = false;        ///< allow the output path to be the input model's path
};

/// One tensor the patch changed (or left alone because the new bytes equal the old ones).
struct PatchedTensor {
  std::string selector;
  int subgraph = 0;
  int tensor = -1;
  std::string name;
  std::vector<std::string> via;
  bool values = false;          ///< new values were given
  bool quantization = false;    ///< new quantization parameters were given
  bool unchanged = false;       ///< the new bytes equal the stored ones (and no quantization change)
  std::string conversion;       ///< "copied", "quantized", "narrowed to float16", "packed to int4", ...
  std::uint32_t buffer = 0;     ///< the buffer holding the values afterwards
  bool split = false;           ///< given a new buffer because the old one is shared
  std::uint64_t bytes = 0;      ///< stored bytes written
  std::uint64_t clamped = 0;    ///< quantized values clamped to the type's range
};

struct PatchReport {
  std::vector<PatchedTensor> tensors;
  std::vector<std::string> warnings;   ///< one line each (buffer splits, clamping, dropped trailing bytes)
  std::uint64_t output_size = 0;
  std::uint64_t flatbuffer_size = 0;
  bool archive = false;                ///< an associated-file archive was carried over
  bool archive_offsets_rewritten = false;
  std::uint64_t outside_payloads = 0;  ///< buffers written after the FlatBuffer
};

/// Applies `spec` to `model` and writes the result to `output` (see the guarantees above).
/// `model` must have been opened from a file or bytes that stay unchanged meanwhile.
PatchReport patch_model(const Model& model, const PatchSpec& spec, const std::filesystem::path& output,
                        const PatchOptions& options = {});

/// The same, into memory (validated and compared with the input like a file).
std::vector<std::byte> patch_to_memory(const Model& model, const PatchSpec& spec, const PatchOptions& options = {},
                                       PatchReport* report = nullptr);

/// The bytes `update` would store for its tensor: values converted to the stored dtype
/// (quantized, narrowed, packed), layout inverted, sparse constants gathered to their stored
/// order. `quantization` overrides the tensor's own parameters. Throws PatchError.
std::vector<std::byte> encode_values(const Model& model, const PatchTarget& target, const ValueUpdate& update,
                                     bool quantize, const std::optional<Quantization>& quantization = std::nullopt,
                                     std::string* conversion = nullptr, std::uint64_t* clamped = nullptr);

// ---- values files -------------------------------------------------------------------------

/// Parses .npy bytes (format 1.0-3.0; little-endian or single-byte numeric dtypes and bool; C
/// or Fortran order). Throws PatchError(bad_values_file) naming `label`.
Array parse_npy(std::span<const std::byte> bytes, const std::string& label);
/// Reads an .npy file.
Array read_npy(const std::filesystem::path& path);

/// One array of an .npz or .safetensors file.
struct NamedArray {
  std::string key;  ///< the member name without ".npy" / the safetensors key
  Array values;
};

/// The arrays of an .npz (stored or deflated members) or .safetensors file, in file order, and
/// the litelens manifest text if the file carries one (npz "manifest.json", safetensors
/// __metadata__["manifest"]). Throws PatchError(bad_values_file).
std::vector<NamedArray> read_array_file(const std::filesystem::path& path, std::string* manifest = nullptr);

/// The updates an export describes: every array of `file` (an .npz or .safetensors from
/// `litelens extract`, possibly edited), matched through the manifest (from `file`, or from
/// `manifest_file`: another export or a manifest.json). Manifest keys are checked against
/// `model` (the stored tensor and its name must agree), keras/torch layouts are inverted and
/// arrays exported with --dequantize are quantized back (or narrowed to float16). Arrays
/// without a manifest entry use their key as a selector. Throws PatchError.
std::vector<ValueUpdate> updates_from_export(const Model& model, const std::filesystem::path& file,
                                             const std::filesystem::path& manifest_file = {});

}  // namespace litelens
