"""`litelens patch` and `diff` on models made by TensorFlow's converter (scripts/make-fixtures.py,
run by `make fixtures`): float32, fp16, dynamic-range, full-integer int8 and 16x8 versions of
one network.

* extract --dequantize (any layout) then patch --from reproduces every stored byte: the
  quantizer inverts the dequantizer exactly on converter-made int8/int16/int32/int64 data;
* --quantize stores round(x / scale) + zero_point, ties away from zero, clamped (checked here
  against NumPy), and the interpreter runs the result;
* diff pairs every layer of the float model with its quantized twin.
"""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from locations import FIXTURE_DIR  # noqa: E402
import cli_runner  # noqa: E402

FIXTURES = sorted(glob.glob(os.path.join(FIXTURE_DIR, "*.tflite")))
FLOAT = os.path.join(FIXTURE_DIR, "convnet_float32.tflite")
VARIANTS = ["fp16", "dynamic", "int8", "int16x8"]


def run_cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    return cli_runner.run_cli(*args, ok=ok)


def _ids(paths):
    return [os.path.basename(p)[:-len(".tflite")] for p in paths]


def test_fixtures_present():
    assert FIXTURES, f"no converter fixtures in {FIXTURE_DIR}: run `make fixtures` (or set LITELENS_CACHE)"


@pytest.mark.parametrize("layout", ["tflite", "keras", "torch"])
@pytest.mark.parametrize("model", FIXTURES, ids=_ids(FIXTURES))
def test_dequantized_export_patches_back_exactly(model, layout, tmp_path):
    export = str(tmp_path / "w.safetensors")
    run_cli("extract", model, "-o", export, "--dequantize", "--layout", layout)
    report = json.loads(run_cli("patch", model, "-o", str(tmp_path / "p.tflite"), "--from", export,
                                "--json").stdout)
    assert report["tensors"], "the export held no arrays"
    changed = [t["selector"] for t in report["tensors"] if not t["unchanged"]]
    assert changed == []


def round_half_away(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)  # exact for float32 inputs
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def test_quantize_matches_the_runtime_rule(tmp_path):
    model = os.path.join(FIXTURE_DIR, "convnet_int8.tflite")
    doc = json.loads(run_cli("layers", model, "--op", "FULLY_CONNECTED", "--json", "--no-values").stdout)
    layer = doc["layers"][0]
    w = layer["params"]["weights"]
    assert w["dtype"] == "int8"
    scale = np.array(w["quantization"]["scale"], np.float32)
    zp = np.array(w["quantization"]["zero_point"], np.int64)
    axis = w["quantization"]["quantized_dimension"]
    assert axis == 0 and scale.size == w["shape"][0]
    rng = np.random.default_rng(11)
    new = (rng.normal(size=w["shape"]) * scale[:, None] * 60).astype(np.float32)
    new[0, :2] = np.array([0.5, -0.5], np.float32) * scale[0]  # exact ties: away from zero
    new[1, 0] = 1e9  # clamped
    path = str(tmp_path / "w.npy")
    np.save(path, new)
    out = str(tmp_path / "q.tflite")
    key = f"{layer['key']}/weights"
    p = run_cli("patch", model, "-o", out, "--set", f"{key}={path}", ok=False)
    assert p.returncode == 2 and b"--quantize" in p.stderr
    report = json.loads(run_cli("patch", model, "-o", out, "--set", f"{key}={path}", "--quantize", "--json").stdout)
    (t,) = report["tensors"]
    assert t["conversion"] == "quantized per axis 0" and t["clamped"] >= 1
    assert any("clamped" in w for w in report["warnings"])
    q = np.clip(round_half_away(new / scale[:, None]) + zp[:, None], -128, 127).astype(np.int8)
    assert list(q[0, :2]) == [1 + zp[0], -1 + zp[0]]
    run_cli("extract", out, "-o", str(tmp_path / "stored.npz"), "--op", "FULLY_CONNECTED")
    stored = np.load(str(tmp_path / "stored.npz"))[key]
    np.testing.assert_array_equal(stored, q)
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_path=out, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    it.invoke()


@pytest.mark.parametrize("variant", VARIANTS)
def test_diff_pairs_float_with_quantized(variant):
    other = os.path.join(FIXTURE_DIR, f"convnet_{variant}.tflite")
    d = json.loads(run_cli("diff", FLOAT, other, "--json").stdout)
    assert d["summary"]["only_in_a"] == 0 and d["summary"]["only_in_b"] == 0
    layers = json.loads(run_cli("layers", FLOAT, "--json", "--no-values").stdout)["layers"]
    with_params = [l for l in layers if l["op"] not in ("DEQUANTIZE", "DENSIFY", "QUANTIZE")
                   and any(not p["runtime"] for p in l["params"].values())]
    assert d["summary"]["matched_layers"] == len(with_params)
    assert all(l["a"]["op"] == l["b"]["op"] for l in d["layers"])
    assert all(l["matched_by"] != "position" for l in d["layers"]), [l["matched_by"] for l in d["layers"]]
    for l in d["layers"]:
        for p in l["params"]:
            assert not p["shape_changed"], (l["a"]["key"], p["role"])
            if p["values"] is not None and p["role"] != "shape":
                assert p["values"]["cosine"] > 0.999, (l["a"]["key"], p["role"], p["values"])
