"""Layer selection (`--op`, `--name`, `--exact`, `--index`, `--subgraph`, `--first`) and the
`layers` output, on the export model of layer_oracles.build_export_model():

  sg0: op0 CONV_2D "model/block1/relu;model/block1/conv;model/block1/bias"
       op1 DEPTHWISE_CONV_2D "model/block2/depthwise"   op2 FULLY_CONNECTED "model/head/dense/BiasAdd"
       op3 DEQUANTIZE  op4 ADD "model/fp16/add"  op5 PRELU "model/prelu"  op6-9 ADD  op10 DENSIFY
       op11-13 ADD  op14 TRANSPOSE_CONV "model/up/conv2d_transpose"
  sg1: op0 FULLY_CONNECTED "second/dense"
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import layer_oracles as lo  # noqa: E402
from model_builder import FLOAT32, ModelBuilder  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("select") / "select_model.tflite"
    path.write_bytes(lo.build_export_model())
    return str(path)


def keys(model, *args):
    return [l["key"] for l in lo.layers_json(model, "--no-values", *args)]


def test_all_layers_in_order(model):
    got = keys(model)
    pkg = lo.PkgModel(lo.file_bytes(model))
    want = [f"sg{s}.op{o['index']}.{o['op']}" for s in range(pkg.subgraph_count()) for o in pkg.ops(s)]
    assert got == want and len(got) == 16


def test_op_repeatable_and_case_insensitive(model):
    assert keys(model, "--op", "CONV_2D") == ["sg0.op0.CONV_2D"]
    assert keys(model, "--op", "conv_2d", "--op", "PRELU") == ["sg0.op0.CONV_2D", "sg0.op5.PRELU"]
    assert keys(model, "--op", "FULLY_CONNECTED") == ["sg0.op2.FULLY_CONNECTED", "sg1.op0.FULLY_CONNECTED"]
    assert len(keys(model, "--op", "ADD")) == 8


def test_name_substring(model):
    # matches the fused name's parts and the parameters' tensor names too
    assert keys(model, "--name", "block1") == ["sg0.op0.CONV_2D"]
    assert keys(model, "--name", "dense") == ["sg0.op2.FULLY_CONNECTED", "sg1.op0.FULLY_CONNECTED"]
    assert keys(model, "--name", "prelu/alpha") == ["sg0.op5.PRELU"]


def test_name_glob(model):
    assert keys(model, "--name", "model/block?/*") == ["sg0.op0.CONV_2D", "sg0.op1.DEPTHWISE_CONV_2D"]
    assert keys(model, "--name", "*/dense") == ["sg1.op0.FULLY_CONNECTED"]  # anchored: whole names
    assert keys(model, "--name", "model/block[2]/depthwise") == ["sg0.op1.DEPTHWISE_CONV_2D"]
    assert lo.cli("layers", model, "--name", "dens*", ok=False).returncode == 1  # a glob is not a substring


def test_name_exact(model):
    assert keys(model, "--name", "model/block1/conv", "--exact") == ["sg0.op0.CONV_2D"]  # a fused part
    assert keys(model, "--name", "model/head/dense/kernel", "--exact") == ["sg0.op2.FULLY_CONNECTED"]  # a param
    # the stored constant behind DEQUANTIZE names both the DEQUANTIZE and the layer consuming it
    assert keys(model, "--name", "model/fp16/const", "--exact") == ["sg0.op3.DEQUANTIZE", "sg0.op4.ADD"]
    for pattern in ("model/block1", "model/block?/*"):  # neither a substring nor a glob with --exact
        p = lo.cli("layers", model, "--name", pattern, "--exact", ok=False)
        assert p.returncode == 1 and "no layer matches" in p.stderr


def test_index_and_subgraph(model):
    assert keys(model, "--index", 2) == ["sg0.op2.FULLY_CONNECTED"]
    assert keys(model, "--subgraph", 1) == ["sg1.op0.FULLY_CONNECTED"]
    assert keys(model, "--subgraph", 1, "--index", 0) == ["sg1.op0.FULLY_CONNECTED"]
    assert keys(model, "--subgraph", 0, "--op", "FULLY_CONNECTED") == ["sg0.op2.FULLY_CONNECTED"]
    p = lo.cli("layers", model, "--index", 15, ok=False)
    assert p.returncode != 0 and "out of range" in p.stderr and "15" in p.stderr
    p = lo.cli("layers", model, "--subgraph", 1, "--index", 1, ok=False)
    assert p.returncode != 0 and "out of range" in p.stderr
    p = lo.cli("layers", model, "--subgraph", 2, ok=False)
    assert p.returncode != 0 and "subgraph" in p.stderr
    arrays, _ = lo.extract_npz(model, os.path.dirname(model), "--subgraph", 1, name="sg1.npz")
    assert list(arrays) == ["sg1.op0.FULLY_CONNECTED/weights"]


def test_first(model):
    assert keys(model, "--op", "ADD", "--first") == ["sg0.op4.ADD"]
    assert keys(model, "--name", "dense", "--first") == ["sg0.op2.FULLY_CONNECTED"]
    arrays, _ = lo.extract_npz(model, os.path.dirname(model), "--op", "FULLY_CONNECTED", "--first", name="f.npz")
    assert sorted(arrays) == ["sg0.op2.FULLY_CONNECTED/bias", "sg0.op2.FULLY_CONNECTED/weights"]


def test_no_match_lists_closest_names(model, tmp_path):
    for cmd in (["layers", model], ["extract", model, "-o", tmp_path / "x.npz"]):
        p = lo.cli(*cmd, "--name", "blok1/conv", ok=False)
        assert p.returncode == 1, p.stderr
        assert "no layer matches" in p.stderr and "closest names:" in p.stderr
        closest = p.stderr.split("closest names:", 1)[1].strip().split(", ")
        assert closest[0].startswith("model/block1/"), closest
        assert 1 <= len(closest) <= 5
    assert not (tmp_path / "x.npz").exists()
    # closest names stay within the --op scope
    p = lo.cli("layers", model, "--op", "PRELU", "--name", "blok1", ok=False)
    assert "closest names: model/prelu" in p.stderr
    # scoped to a subgraph without such names: widened to every subgraph, keeping the op
    p = lo.cli("layers", model, "--subgraph", 1, "--op", "PRELU", "--name", "prelu", ok=False)
    assert p.stderr.rstrip().endswith("closest names: model/prelu"), p.stderr


def _no_match(model, *args) -> str:
    """The candidates part of a no-match message (after "no layer matches the selection; ")."""
    p = lo.cli("layers", model, *args, ok=False)
    assert p.returncode == 1, p.stderr
    head = f"litelens: {model}: no layer matches the selection; "
    assert p.stderr.startswith(head), p.stderr
    return p.stderr[len(head):].rstrip("\n")


def test_no_match_lists_closest_ops(model):
    # a typo of an op the model has: that op first, then the model's other ops by edit distance
    # (ties in file order); every candidate an op of the model
    msg = _no_match(model, "--op", "CONV2D")
    assert msg == "closest ops: CONV_2D, ADD, PRELU, DENSIFY, DEQUANTIZE", msg
    assert _no_match(model, "--op", "depthwise_conv2d").startswith("closest ops: DEPTHWISE_CONV_2D, ")
    assert _no_match(model, "--op", "FULLY_CONECTED").startswith("closest ops: FULLY_CONNECTED, ")
    # an op absent from the model: still the nearest ones it has, never the absent op itself
    msg = _no_match(model, "--op", "LSTM")
    assert msg.startswith("closest ops: ") and "LSTM" not in msg and len(msg.split(", ")) == 5, msg
    # with --name too: the ops, then the names (last)
    msg = _no_match(model, "--op", "CONV2D", "--name", "blok1")
    assert msg.startswith("closest ops: CONV_2D, ") and "; closest names: model/block1/relu;" in msg, msg


def test_no_match_lists_custom_codes(tmp_path):
    mb = ModelBuilder()
    x = mb.tensor("x", FLOAT32, [1, 4])
    w = mb.const("w", np.ones((4,), np.float32))
    y = mb.tensor("y", FLOAT32, [1, 4])
    z = mb.tensor("z", FLOAT32, [1, 4])
    mb.op("CUSTOM", [x, w], [y], custom_code="Convolution2DTransposeBias")
    mb.op("ADD", [y, w], [z])
    mb.io([x], [z])
    path = tmp_path / "custom.tflite"
    path.write_bytes(mb.build())
    assert _no_match(path, "--op", "Convolution2DTransposeBas") == (
        "closest ops: Convolution2DTransposeBias, ADD")
    assert _no_match(path, "--op", "ad") == "closest ops: ADD, Convolution2DTransposeBias"
    assert [l["key"] for l in lo.layers_json(path, "--op", "convolution2dtransposebias")] == ["sg0.op0.CUSTOM"]


def test_no_match_index_lists_range_and_nearby_layers(model):
    # an index whose operator is not of the wanted op: what it is, and the nearest that are
    msg = _no_match(model, "--index", 2, "--op", "CONV_2D")
    assert msg == ("subgraph 0 has operators 0 to 14, and 2 is sg0.op2.FULLY_CONNECTED (model/head/dense/BiasAdd); "
                   "nearest matching layers: sg0.op0.CONV_2D (model/block1/relu;model/block1/conv;model/block1/bias)")
    msg = _no_match(model, "--index", 7, "--op", "ADD", "--op", "PRELU", "--name", "fp16")
    assert msg.startswith("subgraph 0 has operators 0 to 14, and 7 is sg0.op7.ADD (model/int2/add); "
                          "nearest matching layers: sg0.op4.ADD (model/fp16/add)"), msg
    # the same op in another subgraph: named with the valid subgraphs
    msg = _no_match(model, "--subgraph", 1, "--index", 0, "--op", "PRELU")
    assert msg == ("subgraph 1 has operators 0 to 0, and 0 is sg1.op0.FULLY_CONNECTED (second/dense); "
                   "the model has subgraphs 0 to 1; matching layers in other subgraphs: sg0.op5.PRELU (model/prelu)")
    # out of range: a usage error with the range and the last layers
    p = lo.cli("layers", model, "--index", 15, ok=False)
    assert p.returncode == 2
    assert p.stderr.rstrip("\n") == (
        f"litelens: {model}: --index: operator index 15 is out of range: subgraph 0 has 15 operators, 0 to 14; "
        "the last: sg0.op12.ADD (model/uint4/add), sg0.op13.ADD (model/bool/add), "
        "sg0.op14.TRANSPOSE_CONV (model/up/conv2d_transpose)"), p.stderr
    p = lo.cli("layers", model, "--subgraph", 1, "--index", 3, ok=False)
    assert p.returncode == 2
    assert "subgraph 1 has 1 operator, 0 to 0; the last: sg1.op0.FULLY_CONNECTED (second/dense)" in p.stderr


def test_no_match_subgraph_lists_other_subgraphs(model):
    msg = _no_match(model, "--subgraph", 1, "--op", "CONV_2D")
    assert msg == ("the model has subgraphs 0 to 1; matching layers in other subgraphs: "
                   "sg0.op0.CONV_2D (model/block1/relu;model/block1/conv;model/block1/bias)")
    msg = _no_match(model, "--subgraph", 0, "--name", "second/dense", "--exact", "--op", "FULLY_CONNECTED")
    assert msg.startswith("the model has subgraphs 0 to 1; matching layers in other subgraphs: "
                          "sg1.op0.FULLY_CONNECTED (second/dense); closest names: "), msg


def test_layers_json_fields(model):
    (conv,) = lo.layers_json(model, "--op", "CONV_2D", "--count", 4)
    assert {"subgraph", "index", "op", "name", "name_parts", "options", "params"} <= set(conv)
    assert conv["name_parts"] == ["model/block1/relu", "model/block1/conv", "model/block1/bias"]
    assert conv["options"]["fused_activation_function"] == "RELU" and conv["options"]["stride_w"] == 1
    assert list(conv["params"]) == ["input", "filter", "bias"]
    f = conv["params"]["filter"]
    assert {"tensor", "stored_tensor", "via", "name", "shape", "dtype", "layout", "quantization"} <= set(f)
    assert (f["shape"], f["dtype"], f["layout"], f["via"]) == ([2, 3, 3, 3], "float32", "OHWI", [])
    want = lo.np_stored(lo.PkgModel(lo.file_bytes(model)).tensor(0, f["stored_tensor"])).reshape(-1)
    assert f["first_values"] == [float(v) for v in want[:4]]
    assert f["stats"]["min"] == float(want.min()) and f["stats"]["max"] == float(want.max())
    (up,) = lo.layers_json(model, "--op", "TRANSPOSE_CONV")
    assert list(up["params"]) == ["output_shape", "filter", "input", "bias"]
    assert up["params"]["filter"]["layout"] == "OHWI" and up["params"]["output_shape"]["layout"] is None
    (dw,) = lo.layers_json(model, "--op", "DEPTHWISE_CONV_2D")
    assert dw["params"]["filter"]["layout"] == "1HWC" and dw["options"]["depth_multiplier"] == 2
    assert dw["params"]["filter"]["quantization"]["quantized_dimension"] == 3
    (fc,) = lo.layers_json(model, "--subgraph", 1)
    assert list(fc["params"]) == ["input", "weights"] and fc["params"]["weights"]["layout"] == "OI"


def test_layers_text(model):
    out = lo.cli("layers", model, "--op", "CONV_2D", "--count", 3).stdout
    assert out.startswith("sg0.op0.CONV_2D  CONV_2D  model/block1/relu;")
    assert "parts: model/block1/relu | model/block1/conv | model/block1/bias" in out
    assert "stride_w=1" in out and "fused_activation_function=RELU" in out
    assert "[2,3,3,3] float32 OHWI" in out
    for word in ("min", "max", "mean", "std", "zeros"):
        assert f" {word} " in out
    assert "(fed at run time)" in out
    want = lo.np_stored(lo.PkgModel(lo.file_bytes(model)).tensor(0, 1)).reshape(-1)[:3]
    assert "[" + ", ".join(f"{v:.6g}" for v in want) + ", ...]" in out
    out = lo.cli("layers", model, "--op", "ADD", "--name", "fp16").stdout
    assert "#12 <- DEQUANTIZE <- #11" in out


def test_unsupported_dequantization_is_reported_not_fatal(tmp_path):
    """A 3-D blockwise tensor cannot be dequantized: `layers` shows its stored values and says
    why; `extract --dequantize` fails cleanly (exit 1, nothing written); plain `extract` works."""
    mb = ModelBuilder()
    x = mb.tensor("x", FLOAT32, [1])
    s = mb.const("scales", np.ones((2, 3, 1), np.float16))
    w = mb.const("w3d", np.arange(6, dtype=np.int8).reshape(2, 3, 1),
                 quant={"blockwise": {"scales": s, "zero_points": -1, "block_size": 1}})
    mb.op("ADD", [x, w], [mb.tensor("y", FLOAT32, [2, 3, 1])])
    mb.io([x], [])
    path = tmp_path / "bw3.tflite"
    path.write_bytes(mb.build())
    p = lo.cli("layers", path)
    assert "stored values:" in p.stdout and "[0, 1, 2, 3, 4, 5]" in p.stdout
    assert ("  y              #2                       [2,3,1] int8 q: blockwise block_size=1 "
            "scales=#1 scales [2,3,1] float16 zero_points=none (all 0)\n") in p.stdout
    (layer,) = lo.layers_json(path)
    assert layer["params"]["y"]["first_values"] == [0, 1, 2, 3, 4, 5]
    assert "blockwise" in layer["params"]["y"]["values_note"]
    out = tmp_path / "x.npz"
    p = lo.cli("extract", path, "--dequantize", "-o", out, ok=False)
    assert p.returncode == 1 and "[output]" in p.stderr and not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["bw3.tflite"]
    arrays, manifest = lo.extract_npz(path, tmp_path)
    lo.assert_bits_equal(arrays["sg0.op0.ADD/y"], np.arange(6, dtype=np.int8).reshape(2, 3, 1), "stored")
    assert manifest["arrays"]["sg0.op0.ADD/y"]["quantization"]["scheme"] == "blockwise"


def _quantized_weight_model(details=None) -> bytes:
    """FULLY_CONNECTED with an int8 [2,4] weight quantized blockwise (block 2, float16 scales
    [2,2], int8 zero points [2,2]), or, with `details`, with those QuantizationDetails instead.

    model_builder writes blockwise details only, so `details(builder)` (which returns the union
    tag and the table) is spliced into the weight's QuantizationParameters as the table opens;
    the weight is the only tensor with quantization parameters."""
    import tflite
    mb = ModelBuilder()
    x = mb.tensor("x", FLOAT32, [1, 4])
    scales = mb.const("w/scales", np.array([[0.5, 0.25], [2.0, 1.0]], np.float16))
    zps = mb.const("w/zero_points", np.array([[0, 1], [-1, 2]], np.int8))
    quant = ({"blockwise": {"scales": scales, "zero_points": zps, "block_size": 2}} if details is None
             else {"scale": [], "zero_point": []})
    w = mb.const("w", np.arange(8, dtype=np.int8).reshape(2, 4), quant=quant)
    y = mb.tensor("y", FLOAT32, [1, 2])
    mb.op("FULLY_CONNECTED", [x, w, -1], [y], options=("FullyConnectedOptions", {}))
    mb.io([x], [y])
    if details is None:
        return mb.build()
    real_start = tflite.QuantizationParametersStart

    def start(b):
        kind, table = details(b)
        real_start(b)
        tflite.QuantizationParametersAddDetailsType(b, kind)
        tflite.QuantizationParametersAddDetails(b, table)

    tflite.QuantizationParametersStart = start
    try:
        return mb.build()
    finally:
        tflite.QuantizationParametersStart = real_start


def _weight_line(path) -> str:
    out = lo.cli("layers", path, "--count", 4).stdout
    (line,) = [l for l in out.splitlines() if l.startswith("  weights ")]
    return line


def test_layers_text_blockwise_quantization(tmp_path):
    path = tmp_path / "bw.tflite"
    path.write_bytes(_quantized_weight_model())
    assert _weight_line(path) == ("  weights        #3                       [2,4] int8 OI q: blockwise block_size=2 "
                                  "scales=#1 w/scales [2,2] float16 zero_points=#2 w/zero_points [2,2] int8")
    # and the values shown are the dequantized ones: scale[r, c // 2] * (q - zero_point[r, c // 2])
    q = np.arange(8).reshape(2, 4)
    scale = np.repeat(np.array([[0.5, 0.25], [2.0, 1.0]]), 2, axis=1)
    zp = np.repeat(np.array([[0, 1], [-1, 2]]), 2, axis=1)
    want = (scale * (q - zp)).reshape(-1)
    out = lo.cli("layers", path, "--count", 8).stdout
    assert "[" + ", ".join(f"{v:.6g}" for v in want) + "]\n" in out, out


def test_layers_text_multi_axis_quantization(tmp_path):
    def multi_axis(b):
        # MultiAxisQuantization {scales, zero_points, block_size, quantized_dimensions}: by hand,
        # as the tflite package predates it
        dims = b.CreateNumpyVector(np.array([0, 1], np.int32))
        b.StartObject(4)
        b.PrependInt32Slot(0, 1, -1)
        b.PrependInt32Slot(1, 2, -1)
        b.PrependInt32Slot(2, 0, -1)
        b.PrependUOffsetTRelativeSlot(3, dims, 0)
        return 3, b.EndObject()

    path = tmp_path / "ma.tflite"
    path.write_bytes(_quantized_weight_model(multi_axis))
    assert _weight_line(path).endswith(" int8 OI q: multi_axis dims=[0,1] block_size=0 scales=#1 w/scales [2,2] "
                                       "float16 zero_points=#2 w/zero_points [2,2] int8")
    (layer,) = lo.layers_json(path, "--no-values")
    q = layer["params"]["weights"]["quantization"]
    assert (q["scheme"], q["quantized_dimensions"], q["scales_tensor"]) == ("multi_axis", [0, 1], 1)


def test_layers_text_custom_quantization(tmp_path):
    import tflite

    def custom(b):
        data = b.CreateNumpyVector(np.array([1, 2, 0xAB], np.uint8))
        tflite.CustomQuantizationStart(b)
        tflite.CustomQuantizationAddCustom(b, data)
        return 1, tflite.CustomQuantizationEnd(b)

    path = tmp_path / "cq.tflite"
    path.write_bytes(_quantized_weight_model(custom))
    line = _weight_line(path)
    assert line.endswith(" [2,4] int8 OI q: custom 3 bytes [01 02 ab]"), line
    (layer,) = lo.layers_json(path, "--no-values")
    assert layer["params"]["weights"]["quantization"]["scheme"] == "custom"
