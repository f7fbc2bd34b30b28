"""Cross-check `litelens tensors/ops --json` against two independent oracles
(the PyPI `tflite` FlatBuffers bindings and the `ai-edge-litert` interpreter)
on real MediaPipe models and on a small synthetic model.

Setup:  scripts/fetch-models.sh   (fills ${LITELENS_CACHE:-~/.cache/litelens}/models)
        pip install numpy ai-edge-litert tflite pytest
Env:    LITELENS_CACHE  model cache root (models/ below it)
        LITELENS_CLI    litelens binary (default: <repo>/build/tools/litelens)

An empty model directory is a FAILURE, not a skip.  A missing CLI is also a
failure for the tests that need it; the oracle self-tests run without it.
Comparison rules and LiteRT quirks are documented in oracles.py.
"""
from __future__ import annotations

import copy
import glob
import json
import os
import sys

import numpy as np
import pytest

from locations import HERE, REPO, CACHE, MODEL_DIR, MODELS, CLI, FIXTURE_DIR  # noqa: E402
import cli_runner  # noqa: E402
sys.path.insert(0, HERE)

import oracles  # noqa: E402
from model_builder import (BFLOAT16, BOOL, FLOAT32, INT4, INT8, INT32, STRING, UINT8,  # noqa: E402
                           ModelBuilder)



def _ids(paths):
    return [os.path.basename(p)[:-len(".tflite")] for p in paths]


# ---------------------------------------------------------------- helpers

def _run_cli(cmd: str, model: str) -> dict:
    p = cli_runner.run_cli(cmd, model, "--json")
    try:
        return json.loads(p.stdout)
    except ValueError as e:
        pytest.fail(f"`litelens {cmd} --json` printed invalid JSON ({e}): {p.stdout[:500]!r}")


def _assert_no_diffs(errs: list[str], what: str):
    if errs:
        shown = "\n  ".join(errs[:40])
        more = f"\n  ... and {len(errs) - 40} more" if len(errs) > 40 else ""
        pytest.fail(f"{what}: {len(errs)} difference(s):\n  {shown}{more}")


def _litert_for_compare(path: str) -> dict | None:
    lit = oracles.litert_cached(path)
    # Even when allocate_tensors() failed (unresolved custom op), the
    # pre-allocation data is the real InterpreterBuilder's view of the file.
    return lit if lit.get("subgraphs") is not None else None


# ---------------------------------------------------------------- real models

def test_model_cache_not_empty():
    assert MODELS, (f"no .tflite models in {MODEL_DIR}: run scripts/fetch-models.sh "
                    f"(or set LITELENS_CACHE)")


@pytest.mark.parametrize("model", MODELS, ids=_ids(MODELS))
def test_oracles_agree(model):
    """Positive control without the CLI: the document a correct litelens
    would print (built from the tflite package) agrees with LiteRT."""
    pkg = oracles.tflite_pkg_cached(model)
    lit = oracles.litert_cached(model)
    assert lit.get("subgraphs") is not None, f"LiteRT could not even parse the model: {lit.get('error')}"
    tens, ops = oracles.contract_from_pkg(pkg)
    _assert_no_diffs(oracles.compare_tensors(tens, pkg, lit, oracles.file_bytes(model)), "tflite-pkg vs litert tensors")
    _assert_no_diffs(oracles.compare_ops(ops, pkg, lit), "tflite-pkg vs litert ops")
    assert lit.get("constants_changed_after_allocate", []) == []


@pytest.mark.parametrize("model", MODELS, ids=_ids(MODELS))
def test_tensors_match_oracles(model):
    ours = _run_cli("tensors", model)
    _assert_no_diffs(oracles.compare_tensors(ours, oracles.tflite_pkg_cached(model), _litert_for_compare(model), oracles.file_bytes(model)),
                     f"litelens tensors {os.path.basename(model)}")


@pytest.mark.parametrize("model", MODELS, ids=_ids(MODELS))
def test_ops_match_oracles(model):
    ours = _run_cli("ops", model)
    _assert_no_diffs(oracles.compare_ops(ours, oracles.tflite_pkg_cached(model), _litert_for_compare(model)),
                     f"litelens ops {os.path.basename(model)}")


# The converter-made fixtures add what the MediaPipe models lack, such as LSTM intermediates.
FIXTURES = sorted(glob.glob(os.path.join(FIXTURE_DIR, "*.tflite")))


def test_fixtures_present():
    assert FIXTURES, f"no fixtures in {FIXTURE_DIR}: run `make fixtures`"
    assert any(op.get("intermediates") for f in FIXTURES
               for sg in oracles.tflite_pkg_cached(f)["subgraphs"] for op in sg["operators"]), \
        "no fixture has operator intermediates, so their check below would prove nothing"


@pytest.mark.parametrize("model", FIXTURES, ids=_ids(FIXTURES))
def test_fixture_ops_match_oracles(model):
    ours = _run_cli("ops", model)
    _assert_no_diffs(oracles.compare_ops(ours, oracles.tflite_pkg_cached(model), _litert_for_compare(model)),
                     f"litelens ops {os.path.basename(model)}")


# ---------------------------------------------------------------- synthetic model
# Covers what the MediaPipe models lack (they are all float32/float16):
# int8 per-tensor + per-axis quantization, uint8, int4, bfloat16, string,
# bool, a second subgraph, an optional (-1) input, an unnamed tensor.

def build_synthetic_model() -> bytes:
    """A small hand-made model covering what the MediaPipe models lack:
    int8 per-tensor and per-axis quantization, int32 bias, int4/bfloat16/
    string/bool constants, a sparse (CSR) constant, a dynamic shape
    signature, an unnamed tensor, an optional (-1) operator input, a custom
    op with custom options, two subgraphs and a metadata entry."""
    mb = ModelBuilder(description="litelens synthetic test model")
    # The opcode table in this order (the tests read codes[5] and codes[6]): CUMSUM's code 128
    # leaves deprecated_builtin_code the placeholder 127; RESHAPE is written old-style (only
    # deprecated_builtin_code, builtin_code left 0 == ADD): the op is max() of the two.
    mb.opcode("DEQUANTIZE", version=2)
    mb.opcode("QUANTIZE")
    mb.opcode("FULLY_CONNECTED", version=5)
    mb.opcode("ADD")
    mb.opcode("CUSTOM", custom_code="LitelensTestOp")
    mb.opcode("CUMSUM")
    mb.opcode("RESHAPE", deprecated_code_only=True)

    rng = np.random.default_rng(1234)
    w_scales = [0.011, 0.022, 0.033]
    in_scale = 0.02

    def quant(scale, zero_point, axis=0):
        return {"scale": scale, "zero_point": zero_point, "axis": axis}

    # ---- subgraph 0 ----
    mb.tensor("input", FLOAT32, [1, 4], shape_signature=[-1, 4])                  # 0 dynamic batch
    mb.tensor("input_q", INT8, [1, 4], quant=quant([in_scale], [1]))             # 1
    mb.const("fc/weights", rng.integers(-127, 128, size=12, dtype=np.int8).reshape(3, 4),
             quant=quant(w_scales, [0, 0, 0]))                                    # 2 per-axis int8
    mb.const("fc/bias", np.array([7, -8, 9], np.int32),
             quant=quant([in_scale * s for s in w_scales], [0, 0, 0]))            # 3 per-axis int32
    mb.tensor("fc/out_q", INT8, [1, 3], quant=quant([0.05], [-3]))               # 4
    mb.tensor(None, FLOAT32, [1, 3])                                              # 5 unnamed!
    mb.const("half_const", np.array([1.5, -2.25], np.float16))                   # 6 feeds DEQUANTIZE
    mb.tensor("half_const_deq", FLOAT32, [2])                                     # 7
    csr = {"traversal_order": [0, 1],
           "levels": [{"format": 0, "dense_size": 2},
                      {"format": 1, "segments": [0, 1, 3], "indices": [1, 0, 2], "index_type": "u8"}]}
    mb.tensor("sparse_const", FLOAT32, [2, 3], np.array([1., 2., 3.], np.float32).tobytes(),
              sparsity=csr)                                                       # 8 [2,3], 3 stored
    mb.tensor("string_const", STRING, [2], np.array([2, 16, 18, 19], np.int32).tobytes() + b"abc")  # 9 "ab", "c"
    mb.tensor("int4_const", INT4, [5], bytes([0x21, 0xF3, 0x08]),
              quant=quant([0.5], [0]))                                            # 10 1,2,3,-1,-8 in 3 bytes
    mb.tensor("bf16_const", BFLOAT16, [2], bytes([0x80, 0x3f, 0x00, 0x40]))      # 11
    mb.tensor("bool_const", BOOL, [3], bytes([1, 0, 1]))                          # 12
    mb.tensor("u8_const", UINT8, [4], bytes([0, 128, 200, 255]),
              quant=quant([0.0078125], [128]))                                    # 13 asymmetric
    mb.tensor("custom_out", FLOAT32, [1, 3])                                      # 14
    mb.const("axis", np.array(0, np.int32))                                       # 15 rank 0: CUMSUM axis
    mb.tensor("cumsum_out", FLOAT32, [2])                                         # 16
    mb.const("new_shape", np.array([1, 2], np.int32))                             # 17 RESHAPE target
    mb.tensor("reshape_out", FLOAT32, [1, 2])                                     # 18
    mb.op("QUANTIZE", [0], [1])
    mb.op("FULLY_CONNECTED", [1, 2, 3], [4], version=5)
    mb.op("DEQUANTIZE", [4], [5], version=2)
    mb.op("DEQUANTIZE", [6], [7], version=2)
    mb.op("CUSTOM", [5], [14], custom_code="LitelensTestOp", custom_options=b"\x01\x02\x03")
    mb.op("CUMSUM", [7, 15], [16])
    mb.op("RESHAPE", [16, 17], [18], deprecated_code_only=True)
    mb.io([0], [14, 18])
    mb.name_subgraph(0, "main")
    # ---- subgraph 1 ----
    mb.tensor("x", FLOAT32, [1, 2], sg=1)
    mb.const("w", np.array([[1, 2], [3, 4]], np.float32), sg=1)
    mb.tensor("y", FLOAT32, [1, 2], sg=1)
    mb.const("k", np.array([5, 6], np.int32), sg=1)
    mb.tensor("i", INT32, [2], sg=1)
    mb.tensor("z", INT32, [2], sg=1)
    mb.op("FULLY_CONNECTED", [0, 1, -1], [2], version=5, sg=1)
    mb.op("ADD", [3, 4], [5], sg=1)
    mb.io([0, 4], [2, 5], sg=1)
    mb.name_subgraph(1, "second")

    mb.metadata("min_runtime_version", b"1.14.0\x00")
    return mb.build()


@pytest.fixture(scope="module")
def synthetic_model(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("synthetic") / "synthetic.tflite")
    with open(path, "wb") as f:
        f.write(build_synthetic_model())
    return path


def test_synthetic_oracles_agree(synthetic_model):
    pkg = oracles.tflite_pkg_cached(synthetic_model)
    lit = oracles.litert_cached(synthetic_model)
    s = oracles.summarize(pkg)
    assert s["tensor_counts"] == [19, 6] and s["op_counts"] == [7, 2]
    codes = pkg["operator_codes"]
    assert (codes[5]["op"], codes[5]["builtin_code"], codes[5]["deprecated_builtin_code"]) == ("CUMSUM", 128, 127)
    assert (codes[6]["op"], codes[6]["builtin_code"], codes[6]["deprecated_builtin_code"]) == ("RESHAPE", 0, 22)
    assert s["custom_ops"] == ["LitelensTestOp"] and s["sparse_tensors"] == 1
    assert s["per_axis_quantized_tensors"] == 2 and s["is_fp16"]
    # the custom op is unresolved -> allocate fails, pre-allocation data is kept
    assert lit["loaded"] is False and "LitelensTestOp" in lit["error"]
    lt = lit["subgraphs"][0]["tensors"]
    assert lt[10]["dtype"] == "int8"            # INT4 is reported as int8 ...
    assert lt[10]["sha256"] == oracles.sha256(bytes([1, 2, 3, 0xFF, 0xF8]))  # ... and unpacked
    assert "error" in lt[11]                     # BFLOAT16: wrapper can't describe it
    assert lt[9].get("data") == "string"
    assert lit["subgraphs"][1]["operators"] is None  # no node API for subgraph 1
    tens, ops = oracles.contract_from_pkg(pkg)
    _assert_no_diffs(oracles.compare_tensors(tens, pkg, lit, oracles.file_bytes(synthetic_model)), "synthetic tensors")
    _assert_no_diffs(oracles.compare_ops(ops, pkg, lit), "synthetic ops")


def test_synthetic_tensors_match_oracles(synthetic_model):
    ours = _run_cli("tensors", synthetic_model)
    _assert_no_diffs(oracles.compare_tensors(ours, oracles.tflite_pkg_cached(synthetic_model), oracles.litert_cached(synthetic_model),
                                             oracles.file_bytes(synthetic_model)), "litelens tensors synthetic")


def test_synthetic_ops_match_oracles(synthetic_model):
    ours = _run_cli("ops", synthetic_model)
    _assert_no_diffs(oracles.compare_ops(ours, oracles.tflite_pkg_cached(synthetic_model), oracles.litert_cached(synthetic_model)),
                     "litelens ops synthetic")


# ---------------------------------------------------------------- negative self-tests
# Every comparison must be able to fail: start from a document that matches
# (built from the tflite oracle), apply one mutation, expect a difference.

def _t(doc, name):
    for sg in doc["subgraphs"]:
        for t in sg["tensors"]:
            if t["name"] == name:
                return t
    raise KeyError(name)


def _ulp_up(x: float) -> float:
    return float(np.nextafter(np.float32(x), np.float32(np.inf)))


TENSOR_MUTATIONS = {
    "drop_tensor": lambda d: d["subgraphs"][0]["tensors"].pop(),
    "drop_subgraph": lambda d: d["subgraphs"].pop(),
    "subgraph_name": lambda d: d["subgraphs"][0].update(name="nope"),
    "name": lambda d: _t(d, "fc/weights").update(name="fc/weight"),
    "unnamed_gets_name": lambda d: d["subgraphs"][0]["tensors"][5].update(name="x"),
    "shape": lambda d: _t(d, "fc/weights").update(shape=[3, 5]),
    "scalar_shape": lambda d: _t(d, "axis").update(shape=[1]),
    "shape_signature": lambda d: _t(d, "input").update(shape_signature=[1, 4]),
    "dtype": lambda d: _t(d, "fc/weights").update(dtype="uint8"),
    "dtype_int4": lambda d: _t(d, "int4_const").update(dtype="int8"),
    "buffer": lambda d: _t(d, "fc/bias").update(buffer=_t(d, "fc/bias")["buffer"] + 1),
    "is_variable": lambda d: _t(d, "input").update(is_variable=True),
    "is_constant": lambda d: _t(d, "input").update(is_constant=True),
    "not_constant": lambda d: _t(d, "w").update(is_constant=False),
    "data_offset": lambda d: _t(d, "fc/weights").update(data_offset=_t(d, "fc/weights")["data_offset"] + 1),
    "nbytes": lambda d: _t(d, "half_const").update(nbytes=2),
    "offset_on_nonconst": lambda d: _t(d, "input").update(data_offset=0),
    "scale_1ulp": lambda d: _t(d, "fc/weights")["quantization"]["scale"].__setitem__(
        1, _ulp_up(_t(d, "fc/weights")["quantization"]["scale"][1])),
    "scale_per_tensor_1ulp": lambda d: _t(d, "u8_const")["quantization"]["scale"].__setitem__(
        0, _ulp_up(_t(d, "u8_const")["quantization"]["scale"][0])),
    "zero_point": lambda d: _t(d, "fc/out_q")["quantization"].update(zero_point=[3]),
    "quantized_dimension": lambda d: _t(d, "fc/bias")["quantization"].update(quantized_dimension=1),
    "quant_dropped": lambda d: _t(d, "input_q").update(quantization=None),
    "quant_added": lambda d: _t(d, "input").update(
        quantization={"scale": [1.0], "zero_point": [0], "quantized_dimension": 0}),
    "sparsity_dropped": lambda d: _t(d, "sparse_const").update(sparsity=None),
    "sparsity_added": lambda d: _t(d, "w").update(sparsity={}),
    "sparsity_traversal": lambda d: _t(d, "sparse_const")["sparsity"].update(traversal_order=[1, 0]),
}

OP_MUTATIONS = {
    "drop_op": lambda d: d["subgraphs"][0]["operators"].pop(),
    "op_name": lambda d: d["subgraphs"][0]["operators"][1].update(op="CONV_2D"),
    "custom_code": lambda d: d["subgraphs"][0]["operators"][4].update(custom_code="Other"),
    "custom_code_on_builtin": lambda d: d["subgraphs"][0]["operators"][0].update(custom_code="X"),
    "version": lambda d: d["subgraphs"][0]["operators"][1].update(version=4),
    "op_code_ge_127": lambda d: d["subgraphs"][0]["operators"][5].update(op="PLACEHOLDER_FOR_GREATER_OP_CODES"),
    "op_old_style_code": lambda d: d["subgraphs"][0]["operators"][6].update(op="ADD"),
    "inputs": lambda d: d["subgraphs"][0]["operators"][1].update(inputs=[1, 3, 2]),
    "optional_input": lambda d: d["subgraphs"][1]["operators"][0].update(inputs=[0, 1]),
    "outputs": lambda d: d["subgraphs"][1]["operators"][1].update(outputs=[4]),
}


@pytest.mark.parametrize("mutation", sorted(TENSOR_MUTATIONS))
def test_tensor_mutation_detected(synthetic_model, mutation):
    pkg = oracles.tflite_pkg_cached(synthetic_model)
    good, _ = oracles.contract_from_pkg(pkg)
    bad = copy.deepcopy(good)
    TENSOR_MUTATIONS[mutation](bad)
    assert bad != good
    assert oracles.compare_tensors(bad, pkg, oracles.litert_cached(synthetic_model), oracles.file_bytes(synthetic_model)), \
        f"mutation {mutation!r} was not detected"
    # and each oracle on its own catches it too (except where only one can)
    assert oracles.compare_tensors(bad, pkg, None, oracles.file_bytes(synthetic_model))


def test_constant_bytes_mutation_detected(synthetic_model, tmp_path):
    """Same JSON, but the file's constant bytes changed: the hash check fails
    against both oracles."""
    pkg = oracles.tflite_pkg_cached(synthetic_model)
    lit = oracles.litert_cached(synthetic_model)
    good, _ = oracles.contract_from_pkg(pkg)
    data = bytearray(oracles.file_bytes(synthetic_model))
    w = _t(good, "fc/weights")
    data[w["data_offset"]] ^= 0x01
    errs = oracles.compare_tensors(good, pkg, lit, bytes(data))
    assert any("tflite package" in e for e in errs), errs
    assert any("litert" in e for e in errs), errs
    # litert-only: unpacked int4 comparison
    pkg2 = copy.deepcopy(pkg)
    t4 = pkg2["subgraphs"][0]["tensors"][10]
    data = bytearray(oracles.file_bytes(synthetic_model))
    data[t4["data_offset"]] ^= 0x10
    t4["sha256"] = oracles.sha256(bytes(data[t4["data_offset"]:t4["data_offset"] + t4["nbytes"]]))
    errs = oracles.compare_tensors(good, pkg2, lit, bytes(data))
    assert any("int4_const" in e and "litert" in e for e in errs), errs


@pytest.mark.parametrize("mutation", sorted(OP_MUTATIONS))
def test_op_mutation_detected(synthetic_model, mutation):
    pkg = oracles.tflite_pkg_cached(synthetic_model)
    _, good = oracles.contract_from_pkg(pkg)
    bad = copy.deepcopy(good)
    OP_MUTATIONS[mutation](bad)
    assert bad != good
    assert oracles.compare_ops(bad, pkg, oracles.litert_cached(synthetic_model)), f"mutation {mutation!r} was not detected"


def test_litert_side_detects_on_its_own(synthetic_model):
    """Mutate the tflite-package oracle together with our JSON, so only the
    LiteRT comparison can notice."""
    pkg = copy.deepcopy(oracles.tflite_pkg_cached(synthetic_model))
    lit = oracles.litert_cached(synthetic_model)
    for t in (pkg["subgraphs"][0]["tensors"][2],):
        t["name"] = "renamed"
        t["quantization"]["scale"][0] = _ulp_up(t["quantization"]["scale"][0])
    pkg["subgraphs"][0]["operators"][1]["inputs"] = [1, 2, 2]
    tens, ops = oracles.contract_from_pkg(pkg)
    errs = oracles.compare_tensors(tens, pkg, lit, oracles.file_bytes(synthetic_model))
    assert any("litert=" in e and "name" in e for e in errs), errs
    assert any("litert=" in e and "quantization" in e for e in errs), errs
    errs = oracles.compare_ops(ops, pkg, lit)
    assert any("litert=" in e and "inputs" in e for e in errs), errs


@pytest.mark.skipif(not MODELS, reason="covered by test_model_cache_not_empty")
def test_real_model_mutation_detected():
    """A mutated copy of a correct document for a real model is caught."""
    model = min(MODELS, key=os.path.getsize)
    pkg = oracles.tflite_pkg_cached(model)
    good_t, good_o = oracles.contract_from_pkg(pkg)
    const = next(t for t in good_t["subgraphs"][0]["tensors"] if t["is_constant"])
    for mutate in (lambda d: d["subgraphs"][0]["tensors"][0]["shape"].append(1),
                   lambda d: _t(d, const["name"]).update(data_offset=const["data_offset"] - 4),
                   lambda d: _t(d, const["name"]).update(dtype="float64")):
        bad = copy.deepcopy(good_t)
        mutate(bad)
        assert oracles.compare_tensors(bad, pkg, oracles.litert_cached(model), oracles.file_bytes(model))
    bad = copy.deepcopy(good_o)
    bad["subgraphs"][0]["operators"][0]["op"] = "NOT_AN_OP"
    assert oracles.compare_ops(bad, pkg, oracles.litert_cached(model))
