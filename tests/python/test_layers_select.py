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
    # a selection without --name that matches nothing has no candidates to offer
    p = lo.cli("layers", model, "--op", "LSTM", ok=False)
    assert p.returncode == 1 and "no layer matches" in p.stderr and "closest" not in p.stderr


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
    (layer,) = lo.layers_json(path)
    assert layer["params"]["input_1"]["first_values"] == [0, 1, 2, 3, 4, 5]
    assert "blockwise" in layer["params"]["input_1"]["values_note"]
    out = tmp_path / "x.npz"
    p = lo.cli("extract", path, "--dequantize", "-o", out, ok=False)
    assert p.returncode == 1 and "[output]" in p.stderr and not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["bw3.tflite"]
    arrays, manifest = lo.extract_npz(path, tmp_path)
    lo.assert_bits_equal(arrays["sg0.op0.ADD/input_1"], np.arange(6, dtype=np.int8).reshape(2, 3, 1), "stored")
    assert manifest["arrays"]["sg0.op0.ADD/input_1"]["quantization"]["scheme"] == "blockwise"
