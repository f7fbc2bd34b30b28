"""Input roles of the operators that take parameters, checked on a model built here where every
input is a distinct constant named after the role its position has: from the op's
definition (the TensorFlow op and the TFLite kernel's input order), the convolution,
fully-connected, embedding and LSTM/RNN/SVDF families included. Absent
optional inputs (-1) must be absent roles; the keys and exports use the roles.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import layer_oracles as lo  # noqa: E402
from model_builder import FLOAT32, ModelBuilder  # noqa: E402

# tflite-format.md 8.8: the 24 LSTM inputs.
LSTM = ["input",
        "input_to_input_weights", "input_to_forget_weights", "input_to_cell_weights", "input_to_output_weights",
        "recurrent_to_input_weights", "recurrent_to_forget_weights", "recurrent_to_cell_weights",
        "recurrent_to_output_weights",
        "cell_to_input_weights", "cell_to_forget_weights", "cell_to_output_weights",
        "input_gate_bias", "forget_gate_bias", "cell_gate_bias", "output_gate_bias",
        "projection_weights", "projection_bias", "output_state", "cell_state",
        "input_layer_norm_coefficients", "forget_layer_norm_coefficients", "cell_layer_norm_coefficients",
        "output_layer_norm_coefficients"]
# 48 inputs: input; forward 1-17; backward 1-17; states; aux input; aux weights fw, bw.
BIDI_LSTM = (["input"] + [f"fw_{r}" for r in LSTM[1:18]] + [f"bw_{r}" for r in LSTM[1:18]]
             + ["fw_activation_state", "fw_cell_state", "bw_activation_state", "bw_cell_state", "aux_input"]
             + [f"{d}_aux_input_to_{g}_weights" for d in ("fw", "bw") for g in ("input", "forget", "cell", "output")])

CASES = [
    ("CONV_2D", ["input", "filter", "bias"], None),
    ("DEPTHWISE_CONV_2D", ["input", "filter", "bias"], None),
    ("TRANSPOSE_CONV", ["output_shape", "filter", "input", "bias"], None),
    ("CONV_3D", ["input", "filter", "bias"], None),
    ("CONV_3D_TRANSPOSE", ["output_shape", "filter", "input", "bias"], None),
    ("FULLY_CONNECTED", ["input", "weights", "bias"], None),
    ("BATCH_MATMUL", ["lhs", "rhs"], None),
    ("EMBEDDING_LOOKUP", ["lookup", "value"], None),
    ("PRELU", ["input", "alpha"], None),
    ("LSTM", LSTM, None),
    ("LSTM", ["input", "prev_activation", "weights", "bias", "prev_state"], ("LSTMOptions", {"KernelType": 1})),
    ("UNIDIRECTIONAL_SEQUENCE_LSTM", LSTM, None),
    ("BIDIRECTIONAL_SEQUENCE_LSTM", BIDI_LSTM, None),
    ("RNN", ["input", "weights", "recurrent_weights", "bias", "hidden_state"], None),
    ("UNIDIRECTIONAL_SEQUENCE_RNN", ["input", "weights", "recurrent_weights", "bias", "hidden_state"], None),
    ("SVDF", ["input", "feature_weights", "time_weights", "bias", "activation_state"], None),
    ("BIDIRECTIONAL_SEQUENCE_RNN", ["input", "fw_weights", "fw_recurrent_weights", "fw_bias", "fw_hidden_state",
                                    "bw_weights", "bw_recurrent_weights", "bw_bias", "bw_hidden_state",
                                    "aux_input", "fw_aux_weights", "bw_aux_weights"], None),
    # Ops whose other inputs are commonly constants (docs/layers.md, Roles).
    ("PAD", ["input", "paddings"], None),
    ("PADV2", ["input", "paddings", "constant_values"], None),
    ("MIRROR_PAD", ["input", "paddings"], None),
    ("RESHAPE", ["input", "shape"], None),
    ("MEAN", ["input", "axis"], None),
    ("SUM", ["input", "axis"], None),
    ("REDUCE_MAX", ["input", "axis"], None),
    ("TRANSPOSE", ["input", "perm"], None),
    ("GATHER", ["params", "indices"], None),
    ("GATHER_ND", ["params", "indices"], None),
    ("STRIDED_SLICE", ["input", "begin", "end", "strides"], None),
    ("SLICE", ["input", "begin", "size"], None),
    ("RESIZE_BILINEAR", ["input", "size"], None),
    ("RESIZE_NEAREST_NEIGHBOR", ["input", "size"], None),
    ("HASHTABLE_LOOKUP", ["lookup", "keys", "values"], None),
    ("LSH_PROJECTION", ["hash", "input", "weight"], None),
    ("SPLIT", ["axis", "input"], None),
    ("SPLIT_V", ["input", "size_splits", "axis"], None),
    ("ADD", ["x", "y"], None),
    ("SUB", ["x", "y"], None),
    ("MUL", ["x", "y"], None),
    ("DIV", ["x", "y"], None),
    ("MAXIMUM", ["x", "y"], None),
    ("MINIMUM", ["x", "y"], None),
    ("SQUARED_DIFFERENCE", ["x", "y"], None),
    ("POW", ["x", "y"], None),
    ("FLOOR_DIV", ["x", "y"], None),
    ("FLOOR_MOD", ["x", "y"], None),
    ("LESS", ["x", "y"], None),
    ("LESS_EQUAL", ["x", "y"], None),
    ("GREATER", ["x", "y"], None),
    ("GREATER_EQUAL", ["x", "y"], None),
    ("EQUAL", ["x", "y"], None),
    ("NOT_EQUAL", ["x", "y"], None),
    ("LOGICAL_AND", ["x", "y"], None),
    ("LOGICAL_OR", ["x", "y"], None),
    ("BITWISE_XOR", ["x", "y"], None),
    ("RIGHT_SHIFT", ["x", "y"], None),
    ("ATAN2", ["y", "x"], None),
    ("SELECT", ["condition", "x", "y"], None),
    ("SELECT_V2", ["condition", "x", "y"], None),
    ("ARG_MAX", ["input", "axis"], None),
    ("ARG_MIN", ["input", "axis"], None),
    ("CUMSUM", ["input", "axis"], None),
    ("EXPAND_DIMS", ["input", "axis"], None),
    ("REVERSE_V2", ["input", "axis"], None),
    ("TILE", ["input", "multiples"], None),
    ("BROADCAST_TO", ["input", "shape"], None),
    ("EMBEDDING_LOOKUP_SPARSE", ["ids", "indices", "dense_shape", "weights", "value"], None),
    ("FILL", ["dims", "value"], None),
    ("ONE_HOT", ["indices", "depth", "on_value", "off_value"], None),
    ("RANGE", ["start", "limit", "delta"], None),
    ("SPACE_TO_BATCH_ND", ["input", "block_shape", "paddings"], None),
    ("BATCH_TO_SPACE_ND", ["input", "block_shape", "crops"], None),
    ("REVERSE_SEQUENCE", ["input", "seq_lengths"], None),
    ("SCATTER_ND", ["indices", "updates", "shape"], None),
    ("SEGMENT_SUM", ["data", "segment_ids"], None),
    ("UNSORTED_SEGMENT_SUM", ["data", "segment_ids", "num_segments"], None),
    ("UNSORTED_SEGMENT_MAX", ["data", "segment_ids", "num_segments"], None),
    ("MATRIX_SET_DIAG", ["input", "diagonal"], None),
    ("TOPK_V2", ["input", "k"], None),
    ("SPARSE_TO_DENSE", ["indices", "output_shape", "values", "default_value"], None),
    ("BROADCAST_ARGS", ["s0", "s1"], None),
    ("DYNAMIC_UPDATE_SLICE", ["operand", "update", "start_indices"], None),
    ("NON_MAX_SUPPRESSION_V4", ["boxes", "scores", "max_output_size", "iou_threshold", "score_threshold"], None),
    ("NON_MAX_SUPPRESSION_V5", ["boxes", "scores", "max_output_size", "iou_threshold", "score_threshold",
                                "soft_nms_sigma"], None),
    ("RFFT2D", ["input", "fft_length"], None),
    ("MULTINOMIAL", ["logits", "num_samples"], None),
    ("RANDOM_UNIFORM", ["shape"], None),
    ("DILATE", ["input", "dilations", "padding_value"], None),
    ("HASHTABLE_IMPORT", ["table", "keys", "values"], None),
    ("HASHTABLE_FIND", ["table", "keys", "default_value"], None),
    # variadic ops: one role per value joined
    ("CONCATENATION", ["values_0", "values_1", "values_2"], None),
    ("PACK", ["values_0", "values_1"], None),
    ("ADD_N", ["values_0", "values_1", "values_2", "values_3"], None),
    # past a table's end, and ops without a table: generic names
    ("RESHAPE", ["input", "shape", "input_2"], None),
    ("RELU", ["input_0"], None),
    ("SQUEEZE", ["input_0"], None),
]
# Inputs left out (-1) in a second copy of the op: CIFG, no peepholes, no projection, no layer norm.
ABSENT = {"LSTM": [1, 5, 9, 10, 11, 12, 16, 17, 20, 21, 22, 23], "UNIDIRECTIONAL_SEQUENCE_LSTM": [1, 5, 12],
          "BIDIRECTIONAL_SEQUENCE_LSTM": list(range(39, 48)), "CONV_2D": [2], "TRANSPOSE_CONV": [3],
          "FULLY_CONNECTED": [2]}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    mb = ModelBuilder()
    ops = []
    for case, (op, roles, options) in enumerate(CASES):
        for variant in ("all", "absent"):
            if variant == "absent" and (op not in ABSENT or options):
                continue
            inputs = []
            for pos, role in enumerate(roles):
                if variant == "absent" and pos in ABSENT[op]:
                    inputs.append(-1)
                    continue
                # Each input a distinct constant named after its expected role (the first one a
                # runtime tensor, as activations are).
                name = f"c{case}{variant[0]}/{role}"
                if pos == 0 and op not in ("TRANSPOSE_CONV", "CONV_3D_TRANSPOSE"):
                    inputs.append(mb.tensor(name, FLOAT32, [1, 2]))
                else:
                    inputs.append(mb.const(name, np.array([pos, case], np.float32)))
            out = mb.tensor(f"c{case}{variant[0]}/out", FLOAT32, [1])
            idx = mb.op(op, inputs, [out], options=options)
            ops.append((idx, op, roles, variant, inputs))
    mb.io([], [])
    path = tmp_path_factory.mktemp("roles") / "roles.tflite"
    path.write_bytes(mb.build())
    return str(path), ops


@pytest.fixture(scope="module")
def model_layers(model):
    path, ops = model
    layers = {l["index"]: l for l in lo.layers_json(path, "--no-values")}
    assert len(layers) == len(ops)
    return layers


@pytest.mark.parametrize("case", range(len(CASES)), ids=[f"{c[0]}-{len(c[1])}" for c in CASES])
def test_roles(model, model_layers, case):
    path, ops = model
    built = [o for o in ops if o[2] is CASES[case][1]]
    assert built
    for idx, op, roles, variant, inputs in built:
        layer = model_layers[idx]
        assert layer["op"] == op
        want = {r: t for r, t in zip(roles, inputs) if t >= 0}
        got = {r: p["tensor"] for r, p in layer["params"].items()}
        assert list(got) == list(want), f"{op} ({variant}): roles {list(got)} != {list(want)}"
        assert got == want
        for role, p in layer["params"].items():
            assert p["name"].split("/", 1)[1] == role, f"{op}: input named {p['name']} has role {role}"


def test_role_keys_in_export(model, tmp_path):
    path, ops = model
    arrays, manifest = lo.extract_npz(path, tmp_path, "--op", "BIDIRECTIONAL_SEQUENCE_LSTM")
    bidi = [o for o in ops if o[1] == "BIDIRECTIONAL_SEQUENCE_LSTM"]
    idx, _, roles, _, _ = bidi[0]
    assert {k for k in arrays if k.startswith(f"sg0.op{idx}.")} == {f"sg0.op{idx}.BIDIRECTIONAL_SEQUENCE_LSTM/{r}"
                                                                     for r in roles[1:]}
    for key, m in manifest["arrays"].items():
        assert m["name"].split("/", 1)[1] == m["role"], key
    idx_absent = bidi[1][0]
    assert len([k for k in arrays if k.startswith(f"sg0.op{idx_absent}.")]) == 38
