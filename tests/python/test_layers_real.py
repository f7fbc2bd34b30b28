"""Layer parameters of the real MediaPipe models (scripts/fetch-models.sh) against LiteRT.

* Every convolution / fully-connected weight and bias resolves to the constant that holds it,
  through exactly the DEQUANTIZE / DENSIFY chain an independent walk (the `tflite` package)
  finds; in every model that has such ops, all convolution filters come out that way.
* The resolved values equal what the LiteRT interpreter computes: after invoke() with
  experimental_preserve_all_tensors=True, every DEQUANTIZE output equals litelens's dequantized
  parameter, every DENSIFY output litelens's densified stored values, bit for bit. Models whose
  other operators LiteRT cannot run (unresolved MediaPipe custom ops) are run as a model holding
  only their DEQUANTIZE and DENSIFY operators with the same constants.
* The NumPy densify oracle agrees with LiteRT's DENSIFY on the real sparse tensors.
An empty model cache is a failure, not a skip.
"""
from __future__ import annotations

import functools
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import layer_oracles as lo  # noqa: E402

MODELS = lo.MODELS
IDS = [os.path.basename(p)[:-len(".tflite")] for p in MODELS]
WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED", "CONV_3D")
WEIGHT_ROLES = ("filter", "weights", "bias")
CONVERSION_OPS = ("DEQUANTIZE", "DENSIFY")


def test_model_cache_not_empty():
    assert MODELS, f"no .tflite models in {lo.MODEL_DIR}: run scripts/fetch-models.sh"


def _has_conversions(pkg: lo.PkgModel) -> bool:
    return any(op["op"] in CONVERSION_OPS for op in pkg.ops(0))


def expected_chain(pkg: lo.PkgModel, sg: int, tensor: int) -> tuple[list[str], int | None]:
    """Walks back from `tensor` through DEQUANTIZE/DENSIFY producers to a constant."""
    producers = pkg.producers(sg)
    via, t = [], tensor
    for _ in range(8):
        if pkg.is_constant(sg, t):
            return via, t
        op = producers.get(t)
        if op is None or op["op"] not in CONVERSION_OPS:
            break
        via.append(op["op"])
        t = op["inputs"][0]
    return [], None


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_weights_resolve_through_conversion_ops(model):
    pkg = lo.PkgModel.load(model)
    args = [a for op in WEIGHT_OPS for a in ("--op", op)]
    layers = lo.layers_json(model, "--no-values", *args)
    convs = [l for l in layers if l["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert convs, "every MediaPipe model has convolutions"
    checked = 0
    for layer in layers:
        ops = pkg.ops(layer["subgraph"])
        assert ops[layer["index"]]["op"] == layer["op"]
        for role in WEIGHT_ROLES:
            p = layer["params"].get(role)
            if p is None:
                continue
            via, stored = expected_chain(pkg, layer["subgraph"], p["tensor"])
            where = f"{layer['key']}/{role}"
            assert p["via"] == via, f"{where}: via {p['via']}, expected {via}"
            assert p["stored_tensor"] == stored, f"{where}: stored_tensor {p['stored_tensor']}, expected {stored}"
            assert p["runtime"] is (stored is None)
            if stored is not None:
                t = pkg.tensor(layer["subgraph"], stored)
                assert p["name"] == t["name"] and p["shape"] == t["shape"], where
            checked += 1
    assert checked >= len(convs)
    if _has_conversions(pkg):
        for layer in convs:
            f = layer["params"]["filter"]
            assert f["via"] and f["via"][0] == "DEQUANTIZE", \
                f"{layer['key']}: the filter of a model with DEQUANTIZE/DENSIFY ops did not come through them"
    else:  # float32 model: the filters are the constants themselves
        for layer in convs:
            assert layer["params"]["filter"]["via"] == [] and layer["params"]["filter"]["stored_tensor"] is not None


@functools.lru_cache(maxsize=4)
def _runtime(model: str):
    """(interpreter, old->new tensor map or None, how) for a model's conversion outputs."""
    try:
        return lo.litert_invoke(model_path=model), None, "full model"
    except RuntimeError as e:
        if "custom op" not in str(e):
            raise
    data, remap = lo.conversion_only_model(lo.PkgModel.load(model))
    return lo.litert_invoke(model_content=data), remap, "conversion ops only"


CONVERTED = [m for m in MODELS if _has_conversions(lo.PkgModel.load(m))]
CONVERTED_IDS = [os.path.basename(p)[:-len(".tflite")] for p in CONVERTED]


def test_some_models_have_conversions():
    assert len(CONVERTED) >= len(MODELS) - 2, "the MediaPipe models are fp16 (DEQUANTIZE) and sparse (DENSIFY)"
    assert any(any(op["op"] == "DENSIFY" for op in lo.PkgModel.load(m).ops(0)) for m in CONVERTED)


@pytest.mark.parametrize("model", CONVERTED, ids=CONVERTED_IDS)
def test_conversion_outputs_match_litert(model, tmp_path):
    it, remap, how = _runtime(model)
    pkg = lo.PkgModel.load(model)
    arrays_deq, _ = lo.extract_npz(model, tmp_path, "--all-ops", "--dequantize", name="deq.npz")
    arrays_stored = {}
    if any(op["op"] == "DENSIFY" for op in pkg.ops(0)):
        arrays_stored, _ = lo.extract_npz(model, tmp_path, "--all-ops", "--op", "DENSIFY", name="dense.npz")
    n = {"DEQUANTIZE": 0, "DENSIFY": 0}
    for op in pkg.ops(0):
        if op["op"] not in CONVERSION_OPS:
            continue
        out = op["outputs"][0]
        runtime = it.get_tensor(out if remap is None else remap[out])
        key = f"sg0.op{op['index']}.{op['op']}/input"
        # DEQUANTIZE: its output = the dequantized (widened) values of the resolved constant.
        # DENSIFY: its output = the constant densified, in its own dtype.
        ours = arrays_deq[key] if op["op"] == "DEQUANTIZE" else arrays_stored[key]
        lo.assert_bits_equal(ours, runtime, f"{os.path.basename(model)} {key} ({how})")
        n[op["op"]] += 1
    assert n["DEQUANTIZE"] > 0


@pytest.mark.parametrize("model", CONVERTED, ids=CONVERTED_IDS)
def test_resolved_weights_match_litert(model, tmp_path):
    """The weights as the convolutions consume them: `extract --dequantize` of each layer
    equals LiteRT's value of the op's input tensor (the DEQUANTIZE output)."""
    it, remap, how = _runtime(model)
    args = [a for op in WEIGHT_OPS for a in ("--op", op)]
    arrays, manifest = lo.extract_npz(model, tmp_path, "--dequantize", *args)
    checked = 0
    for key, entry in manifest["arrays"].items():
        if not entry["via"]:
            continue
        t = entry["tensor"]
        runtime = it.get_tensor(t if remap is None else remap[t])
        lo.assert_bits_equal(arrays[key], runtime, f"{os.path.basename(model)} {key} ({how})")
        assert entry["stored_dtype"] == "float16" and entry["dtype"] == "float32"
        checked += 1
    assert checked > 0


SPARSE = [m for m in CONVERTED if any(op["op"] == "DENSIFY" for op in lo.PkgModel.load(m).ops(0))]


@pytest.mark.parametrize("model", SPARSE, ids=[os.path.basename(p)[:-7] for p in SPARSE])
def test_numpy_densify_matches_litert(model):
    it, remap, _ = _runtime(model)
    pkg = lo.PkgModel.load(model)
    n = 0
    for op in pkg.ops(0):
        if op["op"] != "DENSIFY":
            continue
        t = pkg.tensor(0, op["inputs"][0])
        assert t["sparsity"] is not None
        out = op["outputs"][0]
        lo.assert_bits_equal(lo.np_stored(t), it.get_tensor(out if remap is None else remap[out]),
                             f"NumPy densify of tensor {t['index']}")
        n += 1
    assert n > 0


# Role tables of ops that appear in the MediaPipe models with constant inputs (docs/layers.md,
# Roles): each layer's roles must be these names, in this order, minus absent optional inputs.
REAL_ROLE_TABLES = {
    **{op: ["x", "y"] for op in ("ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE", "POW")},
    "PAD": ["input", "paddings"], "PADV2": ["input", "paddings", "constant_values"],
    "RESHAPE": ["input", "shape"], "MEAN": ["input", "axis"], "SUM": ["input", "axis"],
    "TRANSPOSE": ["input", "perm"], "GATHER": ["params", "indices"],
    "STRIDED_SLICE": ["input", "begin", "end", "strides"], "SLICE": ["input", "begin", "size"],
    "RESIZE_BILINEAR": ["input", "size"], "RESIZE_NEAREST_NEIGHBOR": ["input", "size"],
    "TILE": ["input", "multiples"], "BROADCAST_TO": ["input", "shape"], "ARG_MAX": ["input", "axis"],
    "SPLIT": ["axis", "input"], "SPLIT_V": ["input", "size_splits", "axis"], "PRELU": ["input", "alpha"],
}


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_real_role_names(model):
    seen = 0
    for layer in lo.layers_json(model, "--no-values"):
        roles = list(layer["params"])
        if layer["op"] in ("CONCATENATION", "PACK", "ADD_N"):
            assert roles == [f"values_{i}" for i in range(len(roles))], (layer["key"], roles)
            seen += 1
        elif layer["op"] in REAL_ROLE_TABLES:
            want = REAL_ROLE_TABLES[layer["op"]]
            assert roles == [r for r in want if r in roles] and set(roles) <= set(want), (layer["key"], roles)
            seen += 1
    assert seen > 0


def test_face_landmark_with_attention_mul_roles(tmp_path):
    """Its six MUL layers scale an activation (x, fed at run time) by an fp16 constant (y, through
    DEQUANTIZE): once pinned as the generic input_0 / input_1."""
    path = os.path.join(lo.MODEL_DIR, "face_landmark_with_attention.tflite")
    if not os.path.exists(path):
        pytest.fail(f"{path} missing: run scripts/fetch-models.sh")
    muls = lo.layers_json(path, "--op", "MUL", "--count", 2)
    assert len(muls) == 6
    pkg = lo.PkgModel.load(path)
    for layer in muls:
        assert list(layer["params"]) == ["x", "y"], layer["key"]
        x, y = layer["params"]["x"], layer["params"]["y"]
        assert x["runtime"] and x["stored_tensor"] is None
        assert not y["runtime"] and y["via"] == ["DEQUANTIZE"] and y["dtype"] == "float16"
        want_via, want_stored = expected_chain(pkg, layer["subgraph"], y["tensor"])
        assert (want_via, want_stored) == (["DEQUANTIZE"], y["stored_tensor"])
    # exported under the new keys, holding the file's float16 constants
    arrays, _ = lo.extract_npz(path, tmp_path, "--op", "MUL")
    assert sorted(arrays) == sorted(f"{l['key']}/y" for l in muls)
    for layer in muls:
        want = lo.np_stored(pkg.tensor(layer["subgraph"], layer["params"]["y"]["stored_tensor"]))
        lo.assert_bits_equal(arrays[f"{layer['key']}/y"], want, layer["key"])
