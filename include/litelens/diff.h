// litelens/diff.h: compare two models parameter by parameter. See docs/patch.md ("diff").
//
// Layers are the operators that hold parameters (DEQUANTIZE, DENSIFY and QUANTIZE are
// followed or skipped, so a float model and its fp16 or int8 version line up). Subgraph i of A
// is compared with subgraph i of B. Within a subgraph, layers are matched in this order:
//   1. by name: equal layer names (the first output tensor's name), when each name is unique on
//      both sides;
//   2. by normalised name: the name split at ';' into fused parts, each part stripped of
//      quantization suffixes ("_int8", "_quantized", "/dequantize", ...), the parts sorted;
//      again unique on both sides;
//   3. by name stem: as 2, with digits the converter appends to make names unique removed
//      from the end of each part ("Conv2D2" -> "Conv2D"; "conv2d_1" keeps its "_1");
//   4. by position: the k-th still unmatched layer of an op type in A with the k-th of that op
//      type in B.
// Parameters of matched layers are paired by role ("filter", "bias", ...). Values are compared
// after dequantization (DecodeMode::dequantized) as float64: max |a-b|, ||a-b|| / ||a||, and
// the cosine similarity a.b / (||a|| ||b||).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "litelens/array.h"
#include "litelens/layer.h"
#include "litelens/model.h"

namespace litelens {

/// How close two arrays of equal element count are (as float64 values).
struct ValueComparison {
  std::uint64_t count = 0;        ///< elements compared (pairs where both are NaN count as equal)
  std::uint64_t differing = 0;    ///< elements that differ
  std::uint64_t nan_mismatch = 0; ///< pairs where exactly one side is NaN (left out of the metrics)
  double max_abs_diff = 0;
  double rel_error = 0;           ///< ||a-b|| / ||a||; 0 when equal; +inf when ||a|| is 0 and b is not
  double cosine = 1;              ///< 1 when both are all zero; 0 when exactly one is
  double norm_a = 0;
  double norm_b = 0;
};

/// Compares the values of `a` and `b`, which must have the same element count (else
/// std::invalid_argument). Any numeric dtype; float16/bfloat16/float8 are widened.
ValueComparison compare_values(const Array& a, const Array& b);

/// One side of a parameter pair.
struct ParamInfo {
  int tensor = -1;         ///< the stored tensor (or the op input when fed at run time)
  std::string name;
  std::vector<std::int32_t> shape;
  DType dtype = DType::float32;
  std::optional<Quantization> quantization;
  std::vector<std::string> via;
  bool runtime = false;    ///< no values in the file
};

struct ParamDiff {
  std::string role;
  std::optional<ParamInfo> a;  ///< nullopt: only in B
  std::optional<ParamInfo> b;  ///< nullopt: only in A
  bool shape_changed = false;
  bool dtype_changed = false;
  bool quantization_changed = false;  ///< scheme, scales, zero points or axis differ
  std::optional<ValueComparison> values;
  std::optional<bool> bytes_equal;    ///< stored bytes compared: non-numeric constants (strings), values that cannot be decoded
  std::string note;                   ///< why values were not compared, when they were not
  /// Same shape, dtype, quantization and values.
  bool identical() const noexcept;
};

struct LayerRef {
  int subgraph = 0;
  int index = 0;
  std::string key;
  std::string op;
  std::string name;
};

struct LayerDiff {
  LayerRef a;
  LayerRef b;
  std::string matched_by;  ///< "name", "normalized_name", "name_stem" or "position"
  std::vector<ParamDiff> params;
  bool identical() const noexcept;
};

struct ModelDiff {
  std::vector<LayerDiff> layers;   ///< matched layers, in A's order
  std::vector<LayerRef> only_in_a;
  std::vector<LayerRef> only_in_b;
  std::size_t subgraphs_a = 0;
  std::size_t subgraphs_b = 0;
};

struct DiffOptions {
  std::optional<int> subgraph;  ///< compare only this subgraph (of both models)
  bool values = true;           ///< false: shapes, dtypes and quantization only (reads no weights)
};

/// Compares `a` with `b` (see the matching rules above).
ModelDiff diff_models(const Model& a, const Model& b, const DiffOptions& options = {});

/// Counts over a ModelDiff, the figures of the CLI's summary line and of its JSON "summary".
/// One parameter can count under several changes (an int8 twin of a float weight changes dtype,
/// quantization and values).
struct DiffSummary {
  std::size_t matched_layers = 0;
  std::size_t only_in_a = 0;
  std::size_t only_in_b = 0;
  std::map<std::string, std::size_t> matched_by;  ///< layers per matching rule ("name", "position", ...)
  std::size_t params = 0;                ///< parameter pairs of matched layers (one side may be missing)
  std::size_t identical_params = 0;      ///< ParamDiff::identical()
  std::size_t values_changed = 0;        ///< compared values with differing elements, or strings whose bytes differ
  std::size_t shape_changed = 0;
  std::size_t dtype_changed = 0;
  std::size_t quantization_changed = 0;
};
DiffSummary summarize(const ModelDiff& diff);

/// The name used for rule 2: fused parts stripped of quantization suffixes, sorted, joined by ';'.
std::string normalize_layer_name(std::string_view name);

/// The name used for rule 3: normalize_layer_name() with appended uniquifying digits removed.
std::string layer_name_stem(std::string_view name);

}  // namespace litelens
