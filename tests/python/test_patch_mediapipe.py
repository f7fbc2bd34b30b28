"""`litelens patch` on real MediaPipe models, checked by the LiteRT interpreter.

Setup:  scripts/fetch-models.sh   (fills ${LITELENS_CACHE:-~/.cache/litelens}/models)
        pip install numpy ai-edge-litert pytest
Env:    LITELENS_CACHE, LITELENS_CLI (default <repo>/build/tools/litelens/litelens)

The MediaPipe models are float16: each conv filter is a FLOAT16 constant behind DEQUANTIZE
(and behind DENSIFY in the sparse face detector), so patching a layer changes that constant.
An empty model directory is a failure, not a skip.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from locations import MODEL_DIR, MODELS  # noqa: E402
import cli_runner  # noqa: E402

FP16_MODEL = os.path.join(MODEL_DIR, "face_detection_short_range.tflite")
SPARSE_MODEL = os.path.join(MODEL_DIR, "face_detection_full_range_sparse.tflite")


def _ids(paths):
    return [os.path.basename(p)[:-len(".tflite")] for p in paths]


def run_cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    return cli_runner.run_cli(*args, ok=ok, timeout=600)


def interpreter(path: str):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_path=path, experimental_preserve_all_tensors=True,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    return it


def invoke(path: str, seed: int = 0):
    """The interpreter after one run on a fixed random input, and its outputs."""
    it = interpreter(path)
    rng = np.random.default_rng(seed)
    for d in it.get_input_details():
        it.set_tensor(d["index"], rng.uniform(-1, 1, size=d["shape"]).astype(d["dtype"]))
    it.invoke()
    return it, [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def first_layer(model: str, op: str = "CONV_2D") -> dict:
    doc = json.loads(run_cli("layers", model, "--op", op, "--first", "--json", "--no-values").stdout)
    return doc["layers"][0]


def constant_bytes(path: str) -> dict:
    doc = json.loads(run_cli("tensors", path, "--json").stdout)
    data = open(path, "rb").read()
    out = {}
    for sg in doc["subgraphs"]:
        for t in sg["tensors"]:
            if t.get("data_offset") is not None:
                out[(sg["index"], t["index"])] = data[t["data_offset"]:t["data_offset"] + t["nbytes"]]
    return out


def test_model_cache_not_empty():
    assert MODELS, f"no .tflite models in {MODEL_DIR}: run scripts/fetch-models.sh (or set LITELENS_CACHE)"
    assert os.path.isfile(FP16_MODEL), FP16_MODEL


@pytest.mark.parametrize("model", MODELS, ids=_ids(MODELS))
def test_extract_patch_round_trip_is_identical(model, tmp_path):
    """extract -> patch --from: every constant byte-identical, the same outputs."""
    export = str(tmp_path / "w.npz")
    out = str(tmp_path / "same.tflite")
    run_cli("extract", model, "-o", export)
    run_cli("patch", model, "-o", out, "--from", export)
    assert constant_bytes(out) == constant_bytes(model)
    try:
        _, a = invoke(model)
    except RuntimeError as e:  # MediaPipe custom ops the pip interpreter lacks
        assert "custom op" in str(e)
        interpreter_loads = False
    else:
        interpreter_loads = True
    if not interpreter_loads:
        with pytest.raises(RuntimeError, match="custom op"):
            invoke(out)
        return
    _, b = invoke(out)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_dequantized_keras_export_round_trips(tmp_path):
    """Exported as float32 in Keras layout: patching it back narrows to fp16 and re-permutes."""
    export = str(tmp_path / "w.safetensors")
    out = str(tmp_path / "same.tflite")
    run_cli("extract", FP16_MODEL, "-o", export, "--dequantize", "--layout", "keras")
    run_cli("patch", FP16_MODEL, "-o", out, "--from", export)
    assert constant_bytes(out) == constant_bytes(FP16_MODEL)


def test_fp16_conv_through_dequantize(tmp_path):
    layer = first_layer(FP16_MODEL)
    filt = layer["params"]["filter"]
    assert filt["via"] == ["DEQUANTIZE"] and filt["dtype"] == "float16"
    shape = filt["shape"]
    new = np.random.default_rng(3).normal(scale=0.2, size=shape).astype(np.float32)
    values = str(tmp_path / "filter.npy")
    np.save(values, new)
    out = str(tmp_path / "patched.tflite")
    report = json.loads(run_cli("patch", FP16_MODEL, "-o", out, "--set", f"{layer['key']}/filter={values}",
                                "--json").stdout)
    (t,) = report["tensors"]
    assert t["tensor"] == filt["stored_tensor"] and t["via"] == ["DEQUANTIZE"]
    assert t["conversion"] == "narrowed to float16"
    it, _ = invoke(out)
    dequantized = it.get_tensor(filt["tensor"])  # the DEQUANTIZE output the conv consumes
    np.testing.assert_array_equal(dequantized, new.astype(np.float16).astype(np.float32))
    # Every other constant is unchanged.
    before, after = constant_bytes(FP16_MODEL), constant_bytes(out)
    changed = [k for k in before if before[k] != after[k]]
    assert changed == [(0, filt["stored_tensor"])]


def test_edited_npz_from_numpy(tmp_path):
    """The workflow: extract, edit with numpy (np.savez of np.load), patch --from."""
    export = str(tmp_path / "w.npz")
    run_cli("extract", FP16_MODEL, "-o", export, "--dequantize")
    arrays = dict(np.load(export))
    layer = first_layer(FP16_MODEL)
    key = f"{layer['key']}/bias"
    arrays[key] = np.full_like(arrays[key], 0.75)
    edited = str(tmp_path / "edited.npz")
    np.savez(edited, **arrays)  # keeps manifest.json as a bytes array
    out = str(tmp_path / "patched.tflite")
    report = json.loads(run_cli("patch", FP16_MODEL, "-o", out, "--from", edited, "--json").stdout)
    changed = [t for t in report["tensors"] if not t["unchanged"]]
    assert [t["selector"] for t in changed] == [key]
    it, _ = invoke(out)
    np.testing.assert_array_equal(it.get_tensor(layer["params"]["bias"]["tensor"]), np.full(arrays[key].shape, 0.75))


def test_sparse_model_through_densify(tmp_path):
    """A DENSIFY'd filter: values at stored positions change; new non-zeros elsewhere are refused."""
    doc = json.loads(run_cli("layers", SPARSE_MODEL, "--json", "--no-values").stdout)
    layer = next(l for l in doc["layers"] if "DENSIFY" in l["params"].get("filter", {}).get("via", []))
    filt = layer["params"]["filter"]
    export = str(tmp_path / "w.npz")
    run_cli("extract", SPARSE_MODEL, "-o", export, "--dequantize", "--index", str(layer["index"]))
    dense = np.load(export)[f"{layer['key']}/filter"]
    scaled = str(tmp_path / "scaled.npy")
    np.save(scaled, dense * 2)  # same zero pattern
    out = str(tmp_path / "patched.tflite")
    run_cli("patch", SPARSE_MODEL, "-o", out, "--set", f"{layer['key']}/filter={scaled}")
    it, _ = invoke(out)
    np.testing.assert_array_equal(it.get_tensor(filt["tensor"]),
                                  (dense * 2).astype(np.float16).astype(np.float32))
    if (dense == 0).any():
        filled = str(tmp_path / "filled.npy")
        np.save(filled, np.ones_like(dense))
        p = run_cli("patch", SPARSE_MODEL, "-o", str(tmp_path / "never.tflite"), "--set",
                    f"{layer['key']}/filter={filled}", ok=False)
        assert p.returncode == 2 and b"sparsity_mismatch" in p.stderr


def test_diff_float_vs_patched_fp16(tmp_path):
    """diff matches every layer by name and reports only the patched parameter."""
    layer = first_layer(FP16_MODEL)
    filt = layer["params"]["filter"]
    values = str(tmp_path / "filter.npy")
    np.save(values, np.zeros(filt["shape"], np.float32))
    out = str(tmp_path / "zeroed.tflite")
    run_cli("patch", FP16_MODEL, "-o", out, "--set", f"{layer['key']}/filter={values}")
    d = json.loads(run_cli("diff", FP16_MODEL, out, "--json").stdout)
    assert d["summary"]["only_in_a"] == 0 and d["summary"]["only_in_b"] == 0
    assert all(l["matched_by"] == "name" for l in d["layers"])
    changed = [(l["a"]["key"], p["role"]) for l in d["layers"] for p in l["params"] if not p["identical"]]
    assert changed == [(layer["key"], "filter")]
    p = next(p for l in d["layers"] for p in l["params"] if not p["identical"])
    assert p["values"]["rel_error"] == pytest.approx(1.0) and p["values"]["cosine"] == 0
