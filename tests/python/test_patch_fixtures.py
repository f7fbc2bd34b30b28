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


def _interpreter_outputs(path: str, seed: int = 0) -> list:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_path=path, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    rng = np.random.default_rng(seed)
    for d in it.get_input_details():
        if np.issubdtype(d["dtype"], np.integer):
            info = np.iinfo(d["dtype"])
            x = rng.integers(info.min, info.max, size=d["shape"], endpoint=True).astype(d["dtype"])
        else:
            x = rng.uniform(-1, 1, size=d["shape"]).astype(d["dtype"])
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def _constant_bytes(path: str) -> dict:
    """(subgraph, tensor index) -> stored bytes of every constant."""
    doc = json.loads(run_cli("tensors", path, "--json").stdout)
    data = open(path, "rb").read()
    out = {}
    for s, sg in enumerate(doc["subgraphs"]):
        for t in sg["tensors"]:
            if t.get("data_offset") is not None:
                out[(s, t["index"])] = data[t["data_offset"]:t["data_offset"] + t["nbytes"]]
    return out


def test_quantize_per_channel_on_the_last_axis(tmp_path):
    """A depthwise filter [1,3,3,C] is quantized per channel along axis 3: each element uses the
    scale of its last index (the runtime's per-channel AffineQuantize)."""
    model = os.path.join(FIXTURE_DIR, "convnet_int8.tflite")
    doc = json.loads(run_cli("layers", model, "--op", "DEPTHWISE_CONV_2D", "--json", "--no-values").stdout)
    layer = doc["layers"][0]
    f = layer["params"]["filter"]
    assert f["dtype"] == "int8"
    quant = f["quantization"]
    axis = quant["quantized_dimension"]
    assert axis == 3 and len(f["shape"]) == 4 and f["shape"][0] == 1
    channels = f["shape"][3]
    scale = np.array(quant["scale"], np.float32)
    zp = np.array(quant["zero_point"], np.int64)
    assert scale.size == channels > 8 and np.unique(scale).size > 1  # per channel, and the scales differ
    rng = np.random.default_rng(5)
    new = (rng.normal(size=f["shape"]) * scale * 25).astype(np.float32)
    for c in range(4):  # exact ties, each on its own channel's scale: away from zero
        new[0, 0, 0, c] = np.float32(0.5) * scale[c]
        new[0, 0, 1, c] = np.float32(-2.5) * scale[c]
    new[0, 1, 1, 5] = np.float32(1.5) * scale[5]
    new[0, 2, 2, 7], new[0, 2, 1, 7] = 1e9, -1e9  # clamped
    path = str(tmp_path / "dw.npy")
    np.save(path, new)
    out = str(tmp_path / "dw.tflite")
    key = f"{layer['key']}/filter"
    report = json.loads(run_cli("patch", model, "-o", out, "--set", f"{key}={path}", "--quantize", "--json").stdout)
    (t,) = report["tensors"]
    assert t["conversion"] == "quantized per axis 3"
    assert t["clamped"] == 2
    # NumPy's version of the rule: x / scale in float32, round half away from zero, + zero point, clamp.
    q = np.clip(round_half_away(new / scale) + zp, -128, 127).astype(np.int8)
    assert list(q[0, 0, 0, :4]) == list(1 + zp[:4]) and list(q[0, 0, 1, :4]) == list(-3 + zp[:4])
    assert q[0, 1, 1, 5] == 2 + zp[5] and q[0, 2, 2, 7] == 127 and q[0, 2, 1, 7] == -128
    run_cli("extract", out, "-o", str(tmp_path / "stored.npz"), "--op", "DEPTHWISE_CONV_2D")
    stored = np.load(str(tmp_path / "stored.npz"))[key]
    np.testing.assert_array_equal(stored, q)
    # Read back dequantized, every value not clamped is within half a step of its channel's scale.
    run_cli("extract", out, "-o", str(tmp_path / "deq.npz"), "--op", "DEPTHWISE_CONV_2D", "--dequantize")
    deq = np.load(str(tmp_path / "deq.npz"))[key]
    inside = np.abs(new) < 1e8
    err = np.abs(deq.astype(np.float64) - new)
    assert np.all(err[inside] <= (np.broadcast_to(scale, new.shape)[inside] * (0.5 + 1e-6)))
    # Every other constant keeps its bytes, and the runtime runs the result (with other outputs).
    before, after = _constant_bytes(model), _constant_bytes(out)
    changed = [k for k in before if before[k] != after[k]]
    assert changed == [(0, t["tensor"])]
    outputs = _interpreter_outputs(out)
    assert not all(np.array_equal(a, b) for a, b in zip(outputs, _interpreter_outputs(model)))


def test_manifest_from_the_export_for_a_resaved_safetensors(tmp_path):
    """safetensors.numpy.save_file writes no litelens manifest; --manifest supplies it."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file
    model = FLOAT
    export = str(tmp_path / "w.safetensors")
    run_cli("extract", model, "-o", export, "--layout", "keras")
    with safe_open(export, "np") as f:
        manifest = (f.metadata() or {}).get("manifest")
    assert manifest, "the export carries a manifest"
    arrays = load_file(export)
    key = next(k for k in arrays if k.endswith("/filter") and "CONV_2D" in k and arrays[k].ndim == 4)
    edited = arrays[key].copy()
    edited[0, 0, 0, 0] += np.float32(0.75)
    arrays[key] = edited
    resaved = str(tmp_path / "resaved.safetensors")
    save_file(arrays, resaved)
    with safe_open(resaved, "np") as f:
        assert not (f.metadata() or {}).get("manifest")  # the manifest is gone
    out = str(tmp_path / "p.tflite")
    # Without the manifest the keys are plain selectors in tflite layout: the keras filters do not fit.
    p = run_cli("patch", model, "-o", out, "--from", resaved, ok=False)
    assert p.returncode == 2 and b"shape_mismatch" in p.stderr, p.stderr
    assert not os.path.exists(out)
    # The original export's manifest, or the same manifest as a manifest.json.
    manifest_json = str(tmp_path / "manifest.json")
    with open(manifest_json, "w") as f:
        f.write(manifest)
    for source in (export, manifest_json):
        report = json.loads(run_cli("patch", model, "-o", out, "--from", resaved, "--manifest", source,
                                    "--json").stdout)
        changed = [t for t in report["tensors"] if not t["unchanged"]]
        assert [t["selector"] for t in changed] == [key], source
        assert "keras layout" in changed[0]["conversion"]
        run_cli("extract", out, "-o", str(tmp_path / "back.npz"), "--layout", "keras")
        back = np.load(str(tmp_path / "back.npz"))
        np.testing.assert_array_equal(back[key], edited)
        before, after = _constant_bytes(model), _constant_bytes(out)
        assert [k for k in before if before[k] != after[k]] == [(0, changed[0]["tensor"])]


def test_a_shared_buffer_of_a_converter_model_is_split(tmp_path):
    """The converter deduplicates equal constants: in lstm_fp16 the two float16 initial states
    (arith.constant15 and arith.constant16, both behind DEQUANTIZE) share one buffer. Patching
    one gives it a buffer of its own, says so, and the runtime runs the result."""
    model = os.path.join(FIXTURE_DIR, "lstm_fp16.tflite")
    doc = json.loads(run_cli("tensors", model, "--json").stdout)
    by_name = {t["name"]: t for t in doc["subgraphs"][0]["tensors"]}
    a, b = by_name["arith.constant15"], by_name["arith.constant16"]
    assert a["buffer"] == b["buffer"] and a["dtype"] == b["dtype"] == "float16"
    shared = a["buffer"]
    new = np.linspace(-0.5, 0.5, int(np.prod(a["shape"])), dtype=np.float32).reshape(a["shape"])
    path = str(tmp_path / "state.npy")
    np.save(path, new)
    out = str(tmp_path / "split.tflite")
    report = json.loads(run_cli("patch", model, "-o", out, "--set", f"arith.constant15={path}", "--json").stdout)
    (t,) = report["tensors"]
    assert t["tensor"] == a["index"] and t["split"] is True and t["buffer"] != shared
    assert t["conversion"] == "narrowed to float16"
    split = [w for w in report["warnings"] if f"buffer {shared} is shared by" in w]
    assert len(split) == 1, report["warnings"]
    assert "arith.constant15" in split[0] and "arith.constant16" in split[0] and f"new buffer {t['buffer']}" in split[0]
    after = {t2["name"]: t2 for t2 in json.loads(run_cli("tensors", out, "--json").stdout)["subgraphs"][0]["tensors"]}
    assert after["arith.constant15"]["buffer"] == t["buffer"] and after["arith.constant16"]["buffer"] == shared
    before_bytes, after_bytes = _constant_bytes(model), _constant_bytes(out)
    assert after_bytes[(0, a["index"])] == new.astype(np.float16).tobytes()
    assert all(after_bytes[k] == v for k, v in before_bytes.items() if k != (0, a["index"]))
    # The runtime loads and runs it; the new initial state changes the output.
    original, patched = _interpreter_outputs(model), _interpreter_outputs(out)
    assert all(np.all(np.isfinite(o)) for o in patched)
    assert not np.array_equal(original[0], patched[0])
    # Both users given the same values keep sharing one buffer: no split, no warning.
    both = str(tmp_path / "both.tflite")
    report = json.loads(run_cli("patch", model, "-o", both, "--set", f"arith.constant15={path}",
                                "--set", f"arith.constant16={path}", "--json").stdout)
    assert [x["split"] for x in report["tensors"]] == [False, False]
    assert {x["buffer"] for x in report["tensors"]} == {shared}
    assert not any("shared by" in w for w in report["warnings"])
    _interpreter_outputs(both)
