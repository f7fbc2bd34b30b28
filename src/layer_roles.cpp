// Input roles and parameter layouts per operator, from the format facts (tflite-format.md §8).
#include "layer_roles.h"

#include <array>
#include <span>

#include "tflite_generated.h"

namespace litelens::detail {

namespace {

using Names = std::span<const std::string_view>;

// The 24 inputs of LSTM and UNIDIRECTIONAL_SEQUENCE_LSTM (the legacy form stops at 20).
constexpr std::array<std::string_view, 24> kLstm = {
    "input",
    "input_to_input_weights", "input_to_forget_weights", "input_to_cell_weights", "input_to_output_weights",
    "recurrent_to_input_weights", "recurrent_to_forget_weights", "recurrent_to_cell_weights",
    "recurrent_to_output_weights",
    "cell_to_input_weights", "cell_to_forget_weights", "cell_to_output_weights",
    "input_gate_bias", "forget_gate_bias", "cell_gate_bias", "output_gate_bias",
    "projection_weights", "projection_bias",
    "output_state", "cell_state",
    "input_layer_norm_coefficients", "forget_layer_norm_coefficients", "cell_layer_norm_coefficients",
    "output_layer_norm_coefficients",
};
constexpr std::array<std::string_view, 5> kBasicLstm = {"input", "prev_activation", "weights", "bias", "prev_state"};
constexpr std::array<std::string_view, 5> kRnn = {"input", "weights", "recurrent_weights", "bias", "hidden_state"};
constexpr std::array<std::string_view, 12> kBidiRnn = {
    "input", "fw_weights", "fw_recurrent_weights", "fw_bias", "fw_hidden_state",
    "bw_weights", "bw_recurrent_weights", "bw_bias", "bw_hidden_state",
    "aux_input", "fw_aux_weights", "bw_aux_weights"};
constexpr std::array<std::string_view, 5> kSvdf = {"input", "feature_weights", "time_weights", "bias",
                                                   "activation_state"};
constexpr std::array<std::string_view, 3> kConv = {"input", "filter", "bias"};
constexpr std::array<std::string_view, 4> kTransposeConv = {"output_shape", "filter", "input", "bias"};
constexpr std::array<std::string_view, 3> kFullyConnected = {"input", "weights", "bias"};
constexpr std::array<std::string_view, 2> kBatchMatMul = {"lhs", "rhs"};
constexpr std::array<std::string_view, 2> kEmbeddingLookup = {"lookup", "value"};
constexpr std::array<std::string_view, 2> kPrelu = {"input", "alpha"};
constexpr std::array<std::string_view, 1> kUnary = {"input"};
constexpr std::array<std::string_view, 3> kPad = {"input", "paddings", "constant_values"};
constexpr std::array<std::string_view, 2> kReshape = {"input", "shape"};
constexpr std::array<std::string_view, 2> kReduce = {"input", "axis"};
constexpr std::array<std::string_view, 2> kTranspose = {"input", "perm"};
constexpr std::array<std::string_view, 2> kGather = {"params", "indices"};
constexpr std::array<std::string_view, 4> kStridedSlice = {"input", "begin", "end", "strides"};
constexpr std::array<std::string_view, 3> kSlice = {"input", "begin", "size"};
constexpr std::array<std::string_view, 2> kResize = {"input", "size"};
constexpr std::array<std::string_view, 3> kHashtableLookup = {"lookup", "keys", "values"};
constexpr std::array<std::string_view, 3> kLshProjection = {"hash", "input", "weight"};
constexpr std::array<std::string_view, 2> kSplit = {"axis", "input"};
constexpr std::array<std::string_view, 3> kSplitV = {"input", "size_splits", "axis"};
// Ops whose inputs are commonly constants, named after the operands of the op's definition
// (TensorFlow's op of the same name; the TFLite kernels read them in this order).
constexpr std::array<std::string_view, 2> kBinary = {"x", "y"};  // elementwise, broadcasting
constexpr std::array<std::string_view, 2> kAtan2 = {"y", "x"};   // atan2(y, x)
constexpr std::array<std::string_view, 3> kSelect = {"condition", "x", "y"};
constexpr std::array<std::string_view, 2> kAxisOp = {"input", "axis"};  // ARG_MAX, CUMSUM, EXPAND_DIMS, ...
constexpr std::array<std::string_view, 2> kTile = {"input", "multiples"};
constexpr std::array<std::string_view, 2> kBroadcastTo = {"input", "shape"};
constexpr std::array<std::string_view, 5> kEmbeddingLookupSparse = {"ids", "indices", "dense_shape", "weights",
                                                                    "value"};
constexpr std::array<std::string_view, 2> kFill = {"dims", "value"};
constexpr std::array<std::string_view, 4> kOneHot = {"indices", "depth", "on_value", "off_value"};
constexpr std::array<std::string_view, 3> kRange = {"start", "limit", "delta"};
constexpr std::array<std::string_view, 3> kSpaceToBatch = {"input", "block_shape", "paddings"};
constexpr std::array<std::string_view, 3> kBatchToSpace = {"input", "block_shape", "crops"};
constexpr std::array<std::string_view, 2> kReverseSequence = {"input", "seq_lengths"};
constexpr std::array<std::string_view, 3> kScatterNd = {"indices", "updates", "shape"};
constexpr std::array<std::string_view, 2> kSegmentSum = {"data", "segment_ids"};
constexpr std::array<std::string_view, 3> kUnsortedSegment = {"data", "segment_ids", "num_segments"};
constexpr std::array<std::string_view, 2> kMatrixSetDiag = {"input", "diagonal"};
constexpr std::array<std::string_view, 2> kTopK = {"input", "k"};
constexpr std::array<std::string_view, 4> kSparseToDense = {"indices", "output_shape", "values", "default_value"};
constexpr std::array<std::string_view, 2> kBroadcastArgs = {"s0", "s1"};
constexpr std::array<std::string_view, 3> kDynamicUpdateSlice = {"operand", "update", "start_indices"};
constexpr std::array<std::string_view, 6> kNonMaxSuppression = {"boxes", "scores", "max_output_size",
                                                                "iou_threshold", "score_threshold", "soft_nms_sigma"};
constexpr std::array<std::string_view, 2> kRfft2d = {"input", "fft_length"};
constexpr std::array<std::string_view, 2> kMultinomial = {"logits", "num_samples"};
constexpr std::array<std::string_view, 1> kRandom = {"shape"};
constexpr std::array<std::string_view, 3> kDilate = {"input", "dilations", "padding_value"};
constexpr std::array<std::string_view, 3> kHashtableImport = {"table", "keys", "values"};
constexpr std::array<std::string_view, 3> kHashtableFind = {"table", "keys", "default_value"};

// Variadic ops: every input is one of the values joined (values_0, values_1, ...).
bool is_variadic(std::int32_t opcode) {
  using namespace tflite;
  return opcode == BuiltinOperator_CONCATENATION || opcode == BuiltinOperator_PACK ||
         opcode == BuiltinOperator_ADD_N;
}

// Names for the 48 inputs of BIDIRECTIONAL_SEQUENCE_LSTM, built once from the LSTM names.
const std::vector<std::string>& bidi_lstm_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n{"input"};
    for (const char* dir : {"fw_", "bw_"})
      for (int i = 1; i <= 17; ++i) n.push_back(dir + std::string(kLstm[i]));
    for (const char* s : {"fw_activation_state", "fw_cell_state", "bw_activation_state", "bw_cell_state", "aux_input"})
      n.emplace_back(s);
    for (const char* dir : {"fw_", "bw_"})
      for (const char* gate : {"input", "forget", "cell", "output"})
        n.push_back(std::string(dir) + "aux_input_to_" + gate + "_weights");
    return n;
  }();
  return names;
}

Names names_for(std::int32_t opcode, const Value& options) {
  using namespace tflite;
  switch (opcode) {
    case BuiltinOperator_CONV_2D:
    case BuiltinOperator_DEPTHWISE_CONV_2D:
    case BuiltinOperator_CONV_3D: return kConv;
    case BuiltinOperator_TRANSPOSE_CONV:
    case BuiltinOperator_CONV_3D_TRANSPOSE: return kTransposeConv;
    case BuiltinOperator_FULLY_CONNECTED: return kFullyConnected;
    case BuiltinOperator_BATCH_MATMUL: return kBatchMatMul;
    case BuiltinOperator_EMBEDDING_LOOKUP: return kEmbeddingLookup;
    case BuiltinOperator_PRELU: return kPrelu;
    case BuiltinOperator_LSTM: {
      const Value* kernel = options.find("kernel_type");
      if (kernel && kernel->is_string() && kernel->as_string() == "BASIC") return kBasicLstm;
      return kLstm;
    }
    case BuiltinOperator_UNIDIRECTIONAL_SEQUENCE_LSTM: return kLstm;
    case BuiltinOperator_RNN:
    case BuiltinOperator_UNIDIRECTIONAL_SEQUENCE_RNN: return kRnn;
    case BuiltinOperator_BIDIRECTIONAL_SEQUENCE_RNN: return kBidiRnn;
    case BuiltinOperator_SVDF: return kSvdf;
    case BuiltinOperator_DEQUANTIZE:
    case BuiltinOperator_DENSIFY:
    case BuiltinOperator_QUANTIZE: return kUnary;
    case BuiltinOperator_PAD:
    case BuiltinOperator_PADV2:
    case BuiltinOperator_MIRROR_PAD: return kPad;
    case BuiltinOperator_RESHAPE: return kReshape;
    case BuiltinOperator_MEAN:
    case BuiltinOperator_SUM:
    case BuiltinOperator_REDUCE_MAX:
    case BuiltinOperator_REDUCE_MIN:
    case BuiltinOperator_REDUCE_PROD:
    case BuiltinOperator_REDUCE_ANY:
    case BuiltinOperator_REDUCE_ALL: return kReduce;
    case BuiltinOperator_TRANSPOSE: return kTranspose;
    case BuiltinOperator_GATHER:
    case BuiltinOperator_GATHER_ND: return kGather;
    case BuiltinOperator_STRIDED_SLICE: return kStridedSlice;
    case BuiltinOperator_SLICE: return kSlice;
    case BuiltinOperator_RESIZE_BILINEAR:
    case BuiltinOperator_RESIZE_NEAREST_NEIGHBOR: return kResize;
    case BuiltinOperator_HASHTABLE_LOOKUP: return kHashtableLookup;
    case BuiltinOperator_LSH_PROJECTION: return kLshProjection;
    case BuiltinOperator_SPLIT: return kSplit;
    case BuiltinOperator_SPLIT_V: return kSplitV;
    case BuiltinOperator_ADD:
    case BuiltinOperator_SUB:
    case BuiltinOperator_MUL:
    case BuiltinOperator_DIV:
    case BuiltinOperator_MAXIMUM:
    case BuiltinOperator_MINIMUM:
    case BuiltinOperator_SQUARED_DIFFERENCE:
    case BuiltinOperator_POW:
    case BuiltinOperator_FLOOR_DIV:
    case BuiltinOperator_FLOOR_MOD:
    case BuiltinOperator_LESS:
    case BuiltinOperator_LESS_EQUAL:
    case BuiltinOperator_GREATER:
    case BuiltinOperator_GREATER_EQUAL:
    case BuiltinOperator_EQUAL:
    case BuiltinOperator_NOT_EQUAL:
    case BuiltinOperator_LOGICAL_AND:
    case BuiltinOperator_LOGICAL_OR:
    case BuiltinOperator_BITWISE_XOR:
    case BuiltinOperator_RIGHT_SHIFT: return kBinary;
    case BuiltinOperator_ATAN2: return kAtan2;
    case BuiltinOperator_SELECT:
    case BuiltinOperator_SELECT_V2: return kSelect;
    case BuiltinOperator_ARG_MAX:
    case BuiltinOperator_ARG_MIN:
    case BuiltinOperator_CUMSUM:
    case BuiltinOperator_EXPAND_DIMS:
    case BuiltinOperator_REVERSE_V2: return kAxisOp;
    case BuiltinOperator_TILE: return kTile;
    case BuiltinOperator_BROADCAST_TO: return kBroadcastTo;
    case BuiltinOperator_EMBEDDING_LOOKUP_SPARSE: return kEmbeddingLookupSparse;
    case BuiltinOperator_FILL: return kFill;
    case BuiltinOperator_ONE_HOT: return kOneHot;
    case BuiltinOperator_RANGE: return kRange;
    case BuiltinOperator_SPACE_TO_BATCH_ND: return kSpaceToBatch;
    case BuiltinOperator_BATCH_TO_SPACE_ND: return kBatchToSpace;
    case BuiltinOperator_REVERSE_SEQUENCE: return kReverseSequence;
    case BuiltinOperator_SCATTER_ND: return kScatterNd;
    case BuiltinOperator_SEGMENT_SUM: return kSegmentSum;
    case BuiltinOperator_UNSORTED_SEGMENT_SUM:
    case BuiltinOperator_UNSORTED_SEGMENT_PROD:
    case BuiltinOperator_UNSORTED_SEGMENT_MAX:
    case BuiltinOperator_UNSORTED_SEGMENT_MIN: return kUnsortedSegment;
    case BuiltinOperator_MATRIX_SET_DIAG: return kMatrixSetDiag;
    case BuiltinOperator_TOPK_V2: return kTopK;
    case BuiltinOperator_SPARSE_TO_DENSE: return kSparseToDense;
    case BuiltinOperator_BROADCAST_ARGS: return kBroadcastArgs;
    case BuiltinOperator_DYNAMIC_UPDATE_SLICE: return kDynamicUpdateSlice;
    case BuiltinOperator_NON_MAX_SUPPRESSION_V4: return Names(kNonMaxSuppression).first(5);
    case BuiltinOperator_NON_MAX_SUPPRESSION_V5: return kNonMaxSuppression;
    case BuiltinOperator_RFFT2D: return kRfft2d;
    case BuiltinOperator_MULTINOMIAL: return kMultinomial;
    case BuiltinOperator_RANDOM_UNIFORM:
    case BuiltinOperator_RANDOM_STANDARD_NORMAL: return kRandom;
    case BuiltinOperator_DILATE: return kDilate;
    case BuiltinOperator_HASHTABLE_IMPORT: return kHashtableImport;
    case BuiltinOperator_HASHTABLE_FIND: return kHashtableFind;
    default: return {};
  }
}

}  // namespace

std::string input_role(std::int32_t opcode, const Value& options, std::size_t n_inputs, std::size_t position) {
  (void)n_inputs;
  if (opcode == tflite::BuiltinOperator_BIDIRECTIONAL_SEQUENCE_LSTM) {
    const auto& names = bidi_lstm_names();
    if (position < names.size()) return names[position];
  } else if (is_variadic(opcode)) {
    return "values_" + std::to_string(position);
  } else {
    const Names names = names_for(opcode, options);
    if (position < names.size()) return std::string(names[position]);
  }
  return "input_" + std::to_string(position);
}

std::optional<LayoutRule> layout_rule(std::int32_t opcode, std::string_view role, std::size_t rank) {
  using namespace tflite;
  const bool conv_like = opcode == BuiltinOperator_CONV_2D || opcode == BuiltinOperator_DEPTHWISE_CONV_2D ||
                         opcode == BuiltinOperator_TRANSPOSE_CONV || opcode == BuiltinOperator_CONV_3D ||
                         opcode == BuiltinOperator_CONV_3D_TRANSPOSE || opcode == BuiltinOperator_FULLY_CONNECTED;
  if (role == "bias" && conv_like && rank == 1) return LayoutRule{"O", "O", {}, "O", {}};
  if (role == "filter" && rank == 4) {
    if (opcode == BuiltinOperator_CONV_2D) return LayoutRule{"OHWI", "HWIO", {1, 2, 3, 0}, "OIHW", {0, 3, 1, 2}};
    // Output channel c*M + m of a depthwise filter reads input channel c.
    if (opcode == BuiltinOperator_DEPTHWISE_CONV_2D)
      return LayoutRule{"1HWC", "HWCM", {1, 2, 3, 0}, "O1HW", {3, 0, 1, 2}, true};
    if (opcode == BuiltinOperator_TRANSPOSE_CONV) return LayoutRule{"OHWI", "HWOI", {1, 2, 0, 3}, "IOHW", {3, 0, 1, 2}};
  }
  if (role == "filter" && rank == 5) {
    if (opcode == BuiltinOperator_CONV_3D) return LayoutRule{"DHWIO", "DHWIO", {}, "OIDHW", {4, 3, 0, 1, 2}};
    if (opcode == BuiltinOperator_CONV_3D_TRANSPOSE)
      return LayoutRule{"DHWOI", "DHWOI", {}, "IODHW", {4, 3, 0, 1, 2}};
  }
  if (role == "weights" && rank == 2 && opcode == BuiltinOperator_FULLY_CONNECTED)
    return LayoutRule{"OI", "IO", {1, 0}, "OI", {}};
  return std::nullopt;
}

}  // namespace litelens::detail
