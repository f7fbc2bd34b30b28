"""`litelens patch` checked by the LiteRT interpreter on small models built here.

Setup:  pip install numpy ai-edge-litert tflite flatbuffers pytest
Env:    LITELENS_CLI  litelens binary (default: <repo>/build/tools/litelens/litelens)

The model: input [1,4] -> FULLY_CONNECTED (w1 [8,4], b1 [8]) -> FULLY_CONNECTED (w2 [3,8],
b2 [3]) -> output [1,3], optionally with its weights stored after the FlatBuffer (the
converter's >2 GB layout) and with an appended associated-file archive.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_runner  # noqa: E402
from model_builder import FLOAT32, ModelBuilder  # noqa: E402

W1 = (np.arange(32, dtype=np.float32).reshape(8, 4) - 16) / 10
B1 = np.linspace(-1, 1, 8, dtype=np.float32)
W2 = (np.arange(24, dtype=np.float32).reshape(3, 8) % 7 - 3) / 4
B2 = np.array([0.5, -1.25, 3.0], dtype=np.float32)
X = np.array([[0.3, -1.2, 2.5, 0.7]], dtype=np.float32)


def run_cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    return cli_runner.run_cli(*args, ok=ok)


def build_mlp(outside: bool = False) -> bytes:
    """The two-layer model as .tflite bytes (weights after the FlatBuffer when `outside`)."""
    mb = ModelBuilder(description="litelens patch test model")
    x = mb.tensor("input", FLOAT32, [1, 4])
    w1, b1 = mb.const("dense/kernel", W1), mb.const("dense/bias", B1)
    h = mb.tensor("dense/out", FLOAT32, [1, 8])
    w2, b2 = mb.const("head/kernel", W2), mb.const("head/bias", B2)
    y = mb.tensor("head/out", FLOAT32, [1, 3])
    mb.op("FULLY_CONNECTED", [x, w1, b1], [h], options=("FullyConnectedOptions", {}))
    mb.op("FULLY_CONNECTED", [h, w2, b2], [y], options=("FullyConnectedOptions", {}))
    mb.io([x], [y])
    mb.name_subgraph(0, "main")
    mb.metadata("min_runtime_version", b"1.5.0".ljust(16, b"\0"))
    if outside:
        mb.metadata("buffer_location", b"outside flatbuffers")
    mb.signature("serving_default", {"x": x}, {"y": y})  # to check it survives
    return mb.build(data_outside=outside)


def interpreter(path: str):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_path=path, experimental_preserve_all_tensors=True,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    return it


def run(path: str, x: np.ndarray = X) -> np.ndarray:
    it = interpreter(path)
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]).copy()


def expected(w1=W1, b1=B1, w2=W2, b2=B2, x=X) -> np.ndarray:
    return (x @ w1.T + b1) @ w2.T + b2


@pytest.fixture(params=["inline", "outside"])
def mlp(request, tmp_path) -> str:
    path = str(tmp_path / f"mlp_{request.param}.tflite")
    with open(path, "wb") as f:
        f.write(build_mlp(outside=request.param == "outside"))
    return path


def tensor_bytes(path: str) -> dict:
    doc = json.loads(run_cli("tensors", path, "--json").stdout)
    data = open(path, "rb").read()
    out = {}
    for t in doc["subgraphs"][0]["tensors"]:
        if t.get("data_offset") is not None:
            out[t["name"]] = data[t["data_offset"]:t["data_offset"] + t["nbytes"]]
    return out


# ------------------------------------------------------------------------------------------

def test_the_model_runs(mlp):
    np.testing.assert_allclose(run(mlp), expected(), rtol=1e-5, atol=1e-5)


def test_identity_patch_gives_identical_outputs(mlp, tmp_path):
    export = str(tmp_path / "w.npz")
    out = str(tmp_path / "same.tflite")
    run_cli("extract", mlp, "-o", export)
    run_cli("patch", mlp, "-o", out, "--from", export)
    np.testing.assert_array_equal(run(out), run(mlp))
    assert tensor_bytes(out) == tensor_bytes(mlp)


def test_zero_final_weights_and_set_bias(mlp, tmp_path):
    zeros, bias = str(tmp_path / "zeros.npy"), str(tmp_path / "bias.npy")
    new_bias = np.array([1.5, -2.0, 0.125], np.float32)
    np.save(zeros, np.zeros((3, 8), np.float32))
    np.save(bias, new_bias)
    out = str(tmp_path / "ablated.tflite")
    p = run_cli("patch", mlp, "-o", out, "--set", f"sg0.op1.FULLY_CONNECTED/weights={zeros}",
                "--set", f"head/bias={bias}", "--json")
    report = json.loads(p.stdout)
    assert [t["name"] for t in report["tensors"]] == ["head/kernel", "head/bias"]
    y = run(out)
    np.testing.assert_array_equal(y, new_bias[None, :])
    for x in (np.zeros((1, 4), np.float32), np.full((1, 4), 7.0, np.float32)):
        np.testing.assert_array_equal(run(out, x), new_bias[None, :])
    # The first layer is untouched, byte for byte.
    before, after = tensor_bytes(mlp), tensor_bytes(out)
    assert before["dense/kernel"] == after["dense/kernel"] and before["dense/bias"] == after["dense/bias"]


def test_new_first_layer_values(mlp, tmp_path):
    w1 = np.random.default_rng(7).normal(size=(8, 4)).astype(np.float32)
    path = str(tmp_path / "w1.npy")
    np.save(path, w1)
    out = str(tmp_path / "w1.tflite")
    run_cli("patch", mlp, "-o", out, "--set", f"dense/kernel={path}")
    np.testing.assert_allclose(run(out), expected(w1=w1), rtol=1e-5, atol=1e-5)


def test_outside_layout_is_kept(tmp_path):
    src = str(tmp_path / "outside.tflite")
    with open(src, "wb") as f:
        f.write(build_mlp(outside=True))
    path = str(tmp_path / "b2.npy")
    np.save(path, np.array([9, 8, 7], np.float32))
    out = str(tmp_path / "patched.tflite")
    run_cli("patch", src, "-o", out, "--set", f"head/bias={path}")
    info = json.loads(run_cli("info", out, "--json").stdout)
    fb = info["flatbuffer_size"]
    doc = json.loads(run_cli("tensors", out, "--json").stdout)
    constants = [t for t in doc["subgraphs"][0]["tensors"] if t.get("data_offset") is not None]
    assert len(constants) == 4
    for t in constants:
        assert t["data_offset"] % 16 == 0
        assert t["data_offset"] >= fb, t["name"]
    np.testing.assert_allclose(run(out), expected(b2=np.array([9, 8, 7], np.float32)), rtol=1e-5, atol=1e-5)


def test_dtype_and_shape_errors(mlp, tmp_path):
    bad_shape, bad_dtype = str(tmp_path / "s.npy"), str(tmp_path / "d.npy")
    np.save(bad_shape, np.zeros((3, 7), np.float32))
    np.save(bad_dtype, np.zeros((3, 8), np.float64))
    out = str(tmp_path / "never.tflite")
    p = run_cli("patch", mlp, "-o", out, "--set", f"head/kernel={bad_shape}", ok=False)
    assert p.returncode == 2 and b"shape_mismatch" in p.stderr
    p = run_cli("patch", mlp, "-o", out, "--set", f"head/kernel={bad_dtype}", ok=False)
    assert p.returncode == 2 and b"dtype_mismatch" in p.stderr
    p = run_cli("patch", mlp, "-o", out, "--set", f"no/such/tensor={bad_dtype}", ok=False)
    assert p.returncode == 1 and b"unknown_selector" in p.stderr
    p = run_cli("patch", mlp, "-o", mlp, "--set", f"head/kernel={bad_dtype}", ok=False)
    assert p.returncode == 2
    assert not os.path.exists(out)


def test_appended_archive_survives(tmp_path):
    src = str(tmp_path / "with_files.tflite")
    with open(src, "wb") as f:
        f.write(build_mlp())
    with zipfile.ZipFile(src, "a") as z:  # what the metadata populator does
        z.writestr("labels.txt", "cat\ndog\nbird\n")
        z.writestr("vocab/words.txt", "a b c\n")
    quant = "scale:0.25;zero_point:0"
    out = str(tmp_path / "patched.tflite")
    p = run_cli("patch", src, "-o", out, "--set-quant", f"head/out={quant}", "--json")
    assert json.loads(p.stdout)["archive"] is True
    with zipfile.ZipFile(out) as z:
        assert z.read("labels.txt") == b"cat\ndog\nbird\n"
        assert z.read("vocab/words.txt") == b"a b c\n"
        assert z.testzip() is None
    listing = run_cli("files", out).stdout.decode()
    assert "labels.txt" in listing and "vocab/words.txt" in listing
    interpreter(out)  # still loads


def test_diff_reports_the_change(mlp, tmp_path):
    path = str(tmp_path / "w2.npy")
    w2 = W2.copy()
    w2[0, 0] += 0.5
    np.save(path, w2)
    out = str(tmp_path / "w2.tflite")
    run_cli("patch", mlp, "-o", out, "--set", f"head/kernel={path}")
    d = json.loads(run_cli("diff", mlp, out, "--json").stdout)
    assert d["summary"]["matched_layers"] == 2 and d["summary"]["only_in_a"] == 0
    changed = [(l["a"]["key"], p["role"], p["values"]) for l in d["layers"] for p in l["params"] if not p["identical"]]
    assert len(changed) == 1
    key, role, values = changed[0]
    assert (key, role) == ("sg0.op1.FULLY_CONNECTED", "weights")
    assert values["differing"] == 1 and values["max_abs_diff"] == pytest.approx(0.5)
    a, b = W2.ravel().astype(np.float64), w2.ravel().astype(np.float64)
    assert values["rel_error"] == pytest.approx(np.linalg.norm(a - b) / np.linalg.norm(a))
    assert values["cosine"] == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
