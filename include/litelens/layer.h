// litelens/layer.h: every operator as a layer: its options and its inputs by role, with each
// parameter resolved to the constant that holds its numbers.
//
// A filter of an fp16 model is the output of a DEQUANTIZE op whose input is the FLOAT16
// constant; a sparse filter comes out of DENSIFY. Param::stored_tensor follows such chains back
// to the constant and Param::via lists the ops followed, so values are read from the file, not
// from a runtime's scratch memory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "litelens/array.h"
#include "litelens/model.h"
#include "litelens/value.h"

namespace litelens {

/// One input of a layer.
struct Param {
  std::string role;          ///< "filter", "bias", "input_to_forget_weights", or "input_<i>"
  int input_index = 0;       ///< position in the operator's inputs
  int tensor = -1;           ///< the operator's input tensor
  int stored_tensor = -1;    ///< the constant holding the values; -1 when fed at run time
  std::vector<std::string> via;  ///< ops followed from `tensor` to `stored_tensor`, nearest first
  std::vector<int> via_ops;      ///< their operator indices
  std::string layout;        ///< layout label of the values ("OHWI"), "" when none applies

  /// True when the values are not in the file (a graph input or a computed tensor).
  bool is_runtime() const noexcept { return stored_tensor < 0; }
};

/// An operator with its parameters.
struct Layer {
  int subgraph = 0;
  int index = 0;               ///< the operator's index in its subgraph
  std::string op;              ///< builtin name ("CONV_2D"), "CUSTOM", or "UNKNOWN"
  std::string custom_code;     ///< for custom ops
  std::string name;            ///< the first output tensor's name
  std::vector<std::string> name_parts;  ///< `name` split at ';' (converters fuse names that way)
  Value options;               ///< decoded options (a map)
  std::vector<Param> params;   ///< present inputs in input order; absent optional inputs omitted

  /// Stable key used by exports: "sg<subgraph>.op<index>.<op>", e.g. "sg0.op12.CONV_2D".
  std::string key() const;
  /// The parameter with this role, or nullptr. The generic name `input_<position>` is an alias
  /// of the role at that position (keys of exports made before an op had a role table).
  const Param* param(std::string_view role) const;
};

/// Which layers to return. Empty fields match everything.
struct LayerQuery {
  std::vector<std::string> ops;  ///< op names ("CONV_2D", case-insensitive) or custom codes
  std::string name;              ///< glob if it holds any of *?[ , else a substring
  bool exact = false;            ///< `name` must equal the layer name, a fused part or a param's name
  std::optional<int> subgraph;
  std::optional<int> index;      ///< operator index (within `subgraph`, default 0)
  bool first = false;            ///< stop at the first match
};

/// The layer of one operator. Throws std::out_of_range for bad indices.
Layer layer(const Model& model, int subgraph, int index);

/// Layers matching `query`, in subgraph then operator order. Throws std::out_of_range when
/// query.subgraph or query.index do not exist; an empty result is not an error.
std::vector<Layer> layers(const Model& model, const LayerQuery& query = {});

/// Up to `limit` layer names closest to query.name (edit distance to their best-matching
/// fragment), for "did you mean" messages.
std::vector<std::string> closest_layer_names(const Model& model, const LayerQuery& query, std::size_t limit = 5);

/// Why `query` matched nothing, with the closest candidates, for error messages: starts with
/// "no layer matches the selection", then, as they apply, "; closest ops: ..." (op names and
/// custom codes of the model by edit distance, when no operator has a wanted op), the valid
/// index range and the matching layers nearest `index`, the matching layers in other subgraphs
/// than `subgraph`, and last "; closest names: ..." (closest_layer_names()) for `name`.
std::string no_match_message(const Model& model, const LayerQuery& query);

/// The values of a parameter, decoded per `mode` from its stored constant, in the file's layout.
/// Throws std::invalid_argument for a runtime-fed parameter.
Array param_values(const Model& model, const Layer& layer, const Param& param, DecodeMode mode);

/// The values the operator consumes: what param_values gives with `dequantized` when the
/// parameter comes through DEQUANTIZE, otherwise the stored values (densified and unpacked).
Array consumed_values(const Model& model, const Layer& layer, const Param& param);

/// How `param` of `layer` maps to `framework`'s layout: the axis permutation for transpose()
/// and, when it differs from the permuted shape, the final shape (depthwise filters split C·M).
struct LayoutConversion {
  std::vector<int> perm;              ///< empty: no reordering
  std::vector<std::int64_t> shape;    ///< empty: the transposed shape as is
  std::string label;                  ///< the resulting layout label ("HWIO", "OIHW")
};

/// The conversion for `framework`, or nullopt when the parameter has no framework layout.
std::optional<LayoutConversion> layout_conversion(const Model& model, const Layer& layer, const Param& param,
                                                  Framework framework);

/// Applies layout_conversion() to values of that parameter (tflite returns `values` unchanged).
Array to_layout(const Model& model, const Layer& layer, const Param& param, const Array& values,
                Framework framework);

/// Where quantized_dimension `axis` of the stored layout lands after the conversion (depthwise
/// splits keep the last axis pointing at the combined channel only for tflite; see docs/layers.md, Layouts).
int converted_axis(const LayoutConversion& conversion, int axis);

}  // namespace litelens
