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
import functools
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from locations import HERE, REPO, CACHE, MODEL_DIR, MODELS, CLI  # noqa: E402
sys.path.insert(0, HERE)

import oracles  # noqa: E402



def _ids(paths):
    return [os.path.basename(p)[:-len(".tflite")] for p in paths]


# ---------------------------------------------------------------- helpers

@functools.lru_cache(maxsize=None)
def _file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


@functools.lru_cache(maxsize=None)
def _pkg(path: str) -> dict:
    return oracles.tflite_pkg_dump(path, _file(path))


@functools.lru_cache(maxsize=None)
def _litert(path: str) -> dict:
    return oracles.litert_dump(path)


def _run_cli(cmd: str, model: str) -> dict:
    if not os.path.isfile(CLI):
        pytest.fail(f"litelens CLI not found at {CLI} (build it, or set LITELENS_CLI)")
    p = subprocess.run([CLI, cmd, model, "--json"], capture_output=True, timeout=300)
    if p.returncode != 0:
        pytest.fail(f"`litelens {cmd} {model} --json` exited {p.returncode}: "
                    f"{p.stderr.decode(errors='replace')[-2000:]}")
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
    lit = _litert(path)
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
    pkg = _pkg(model)
    lit = _litert(model)
    assert lit.get("subgraphs") is not None, f"LiteRT could not even parse the model: {lit.get('error')}"
    tens, ops = oracles.contract_from_pkg(pkg)
    _assert_no_diffs(oracles.compare_tensors(tens, pkg, lit, _file(model)), "tflite-pkg vs litert tensors")
    _assert_no_diffs(oracles.compare_ops(ops, pkg, lit), "tflite-pkg vs litert ops")
    assert lit.get("constants_changed_after_allocate", []) == []


@pytest.mark.parametrize("model", MODELS, ids=_ids(MODELS))
def test_tensors_match_oracles(model):
    ours = _run_cli("tensors", model)
    _assert_no_diffs(oracles.compare_tensors(ours, _pkg(model), _litert_for_compare(model), _file(model)),
                     f"litelens tensors {os.path.basename(model)}")


@pytest.mark.parametrize("model", MODELS, ids=_ids(MODELS))
def test_ops_match_oracles(model):
    ours = _run_cli("ops", model)
    _assert_no_diffs(oracles.compare_ops(ours, _pkg(model), _litert_for_compare(model)),
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
    import flatbuffers
    import tflite
    b = flatbuffers.Builder(4096)
    buffers: list[bytes] = [b""]          # buffer 0: the empty sentinel

    def buf(data: bytes) -> int:
        buffers.append(bytes(data))
        return len(buffers) - 1

    def ivec(vals, dtype=np.int32):
        return b.CreateNumpyVector(np.asarray(vals, dtype=dtype))

    def ovec(offs):
        b.StartVector(4, len(offs), 4)
        for o in reversed(offs):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    def bytes_vec(data: bytes):
        b.StartVector(1, len(data), 16)
        b.head = b.head - len(data)
        b.Bytes[b.head:b.head + len(data)] = data
        return b.EndVector()

    def quant(scale, zp, qdim=0):
        s, z = ivec(scale, np.float32), ivec(zp, np.int64)
        tflite.QuantizationParametersStart(b)
        tflite.QuantizationParametersAddScale(b, s)
        tflite.QuantizationParametersAddZeroPoint(b, z)
        tflite.QuantizationParametersAddQuantizedDimension(b, qdim)
        return tflite.QuantizationParametersEnd(b)

    def u8vec(vals):
        v = ivec(vals, np.uint8)
        tflite.Uint8VectorStart(b); tflite.Uint8VectorAddValues(b, v)
        return tflite.Uint8VectorEnd(b)

    def csr_sparsity():
        seg, idx = u8vec([0, 1, 3]), u8vec([1, 0, 2])
        tflite.DimensionMetadataStart(b)
        tflite.DimensionMetadataAddFormat(b, tflite.DimensionType.DENSE)
        tflite.DimensionMetadataAddDenseSize(b, 2)
        d0 = tflite.DimensionMetadataEnd(b)
        tflite.DimensionMetadataStart(b)
        tflite.DimensionMetadataAddFormat(b, tflite.DimensionType.SPARSE_CSR)
        tflite.DimensionMetadataAddArraySegmentsType(b, tflite.SparseIndexVector.Uint8Vector)
        tflite.DimensionMetadataAddArraySegments(b, seg)
        tflite.DimensionMetadataAddArrayIndicesType(b, tflite.SparseIndexVector.Uint8Vector)
        tflite.DimensionMetadataAddArrayIndices(b, idx)
        d1 = tflite.DimensionMetadataEnd(b)
        to, dims = ivec([0, 1]), ovec([d0, d1])
        tflite.SparsityParametersStart(b)
        tflite.SparsityParametersAddTraversalOrder(b, to)
        tflite.SparsityParametersAddDimMetadata(b, dims)
        return tflite.SparsityParametersEnd(b)

    T = tflite.TensorType

    def tensor(name, ttype, shape, bidx=0, q=None, sig=None, sparsity=None):
        n = b.CreateString(name) if name is not None else None
        sh = ivec(shape)
        sg = ivec(sig) if sig is not None else None
        qq = q() if q else None
        sp = sparsity() if sparsity else None
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, sh)
        if sg is not None:
            tflite.TensorAddShapeSignature(b, sg)
        tflite.TensorAddType(b, ttype)
        tflite.TensorAddBuffer(b, bidx)
        if n is not None:
            tflite.TensorAddName(b, n)
        if qq is not None:
            tflite.TensorAddQuantization(b, qq)
        if sp is not None:
            tflite.TensorAddSparsity(b, sp)
        return tflite.TensorEnd(b)

    def operator(opcode, ins, outs, custom_options=None):
        i, o = ivec(ins), ivec(outs)
        co = ivec(list(custom_options), np.uint8) if custom_options else None
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, opcode)
        tflite.OperatorAddInputs(b, i)
        tflite.OperatorAddOutputs(b, o)
        if co is not None:
            tflite.OperatorAddCustomOptions(b, co)
        return tflite.OperatorEnd(b)

    def subgraph(name, tensors, ops, ins, outs):
        n = b.CreateString(name)
        tv, ov, iv, outv = ovec(tensors), ovec(ops), ivec(ins), ivec(outs)
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tv)
        tflite.SubGraphAddOperators(b, ov)
        tflite.SubGraphAddInputs(b, iv)
        tflite.SubGraphAddOutputs(b, outv)
        tflite.SubGraphAddName(b, n)
        return tflite.SubGraphEnd(b)

    BO = tflite.BuiltinOperator
    # opcode table: 0 DEQUANTIZE, 1 QUANTIZE, 2 FULLY_CONNECTED, 3 ADD,
    # 4 CUSTOM, 5 CUMSUM (code 128: deprecated_builtin_code holds the
    # placeholder 127), 6 RESHAPE written old-style (only
    # deprecated_builtin_code set, builtin_code left 0 == ADD): the op is
    # max(builtin_code, deprecated_builtin_code).
    opcodes = [(BO.DEQUANTIZE, None, 2), (BO.QUANTIZE, None, 1),
               (BO.FULLY_CONNECTED, None, 5), (BO.ADD, None, 1),
               (BO.CUSTOM, "LitelensTestOp", 1), (BO.CUMSUM, None, 1),
               (BO.RESHAPE, None, 1, "old")]

    rng = np.random.default_rng(1234)
    w_scales = [0.011, 0.022, 0.033]
    in_scale = 0.02
    # ---- subgraph 0 ----
    sg0 = [
        # 0 input, dynamic batch
        lambda: tensor("input", T.FLOAT32, [1, 4], sig=[-1, 4]),
        # 1 quantized input
        lambda: tensor("input_q", T.INT8, [1, 4], q=lambda: quant([in_scale], [1])),
        # 2 per-axis int8 weights
        lambda: tensor("fc/weights", T.INT8, [3, 4],
                       buf(rng.integers(-127, 128, size=12, dtype=np.int8).tobytes()),
                       q=lambda: quant(w_scales, [0, 0, 0], 0)),
        # 3 int32 bias, per-axis
        lambda: tensor("fc/bias", T.INT32, [3], buf(np.array([7, -8, 9], np.int32).tobytes()),
                       q=lambda: quant([in_scale * s for s in w_scales], [0, 0, 0], 0)),
        # 4 quantized output
        lambda: tensor("fc/out_q", T.INT8, [1, 3], q=lambda: quant([0.05], [-3])),
        # 5 float output (unnamed!)
        lambda: tensor(None, T.FLOAT32, [1, 3]),
        # 6 fp16 constant feeding DEQUANTIZE
        lambda: tensor("half_const", T.FLOAT16, [2], buf(np.array([1.5, -2.25], np.float16).tobytes())),
        # 7 its dequantized float32
        lambda: tensor("half_const_deq", T.FLOAT32, [2]),
        # 8 sparse CSR float32 constant [2,3] with 3 stored values
        lambda: tensor("sparse_const", T.FLOAT32, [2, 3], buf(np.array([1., 2., 3.], np.float32).tobytes()),
                       sparsity=csr_sparsity),
        # 9 string constant ["ab", "c"]
        lambda: tensor("string_const", T.STRING, [2],
                       buf(np.array([2, 16, 18, 19], np.int32).tobytes() + b"abc")),
        # 10 int4 constant, 5 values packed into 3 bytes
        lambda: tensor("int4_const", T.INT4, [5], buf(bytes([0x21, 0xF3, 0x08])),  # 1,2,3,-1,-8
                       q=lambda: quant([0.5], [0])),
        # 11 bfloat16 constant
        lambda: tensor("bf16_const", T.BFLOAT16, [2], buf(bytes([0x80, 0x3f, 0x00, 0x40]))),
        # 12 bool constant
        lambda: tensor("bool_const", T.BOOL, [3], buf(bytes([1, 0, 1]))),
        # 13 uint8 asymmetric-quantized constant
        lambda: tensor("u8_const", T.UINT8, [4], buf(bytes([0, 128, 200, 255])),
                       q=lambda: quant([0.0078125], [128])),
        # 14 output of the custom op
        lambda: tensor("custom_out", T.FLOAT32, [1, 3]),
        # 15 scalar (rank-0) int32 constant: CUMSUM axis
        lambda: tensor("axis", T.INT32, [], buf(np.array(0, np.int32).tobytes())),
        # 16 CUMSUM output
        lambda: tensor("cumsum_out", T.FLOAT32, [2]),
        # 17 RESHAPE target shape
        lambda: tensor("new_shape", T.INT32, [2], buf(np.array([1, 2], np.int32).tobytes())),
        # 18 RESHAPE output
        lambda: tensor("reshape_out", T.FLOAT32, [1, 2]),
    ]
    sg1 = [
        lambda: tensor("x", T.FLOAT32, [1, 2]),
        lambda: tensor("w", T.FLOAT32, [2, 2], buf(np.array([1, 2, 3, 4], np.float32).tobytes())),
        lambda: tensor("y", T.FLOAT32, [1, 2]),
        lambda: tensor("k", T.INT32, [2], buf(np.array([5, 6], np.int32).tobytes())),
        lambda: tensor("i", T.INT32, [2]),
        lambda: tensor("z", T.INT32, [2]),
    ]
    # Build buffers' contents first (tensor lambdas register them), but
    # flatbuffers needs children before parents, so: tensors -> ops -> ...
    sg0_t = [f() for f in sg0]
    sg0_ops = [
        operator(1, [0], [1]),
        operator(2, [1, 2, 3], [4]),
        operator(0, [4], [5]),
        operator(0, [6], [7]),
        operator(4, [5], [14], custom_options=b"\x01\x02\x03"),
        operator(5, [7, 15], [16]),
        operator(6, [16, 17], [18]),
    ]
    sg0_off = subgraph("main", sg0_t, sg0_ops, [0], [14, 18])
    sg1_t = [f() for f in sg1]
    sg1_ops = [operator(2, [0, 1, -1], [2]), operator(3, [3, 4], [5])]
    sg1_off = subgraph("second", sg1_t, sg1_ops, [0, 4], [2, 5])

    md_buf = buf(b"1.14.0\x00")

    ocs = []
    for code, custom, ver, *style in opcodes:
        cs = b.CreateString(custom) if custom else None
        tflite.OperatorCodeStart(b)
        tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
        if not style:
            tflite.OperatorCodeAddBuiltinCode(b, code)
        if cs is not None:
            tflite.OperatorCodeAddCustomCode(b, cs)
        tflite.OperatorCodeAddVersion(b, ver)
        ocs.append(tflite.OperatorCodeEnd(b))

    bufs = []
    for data in buffers:
        dv = bytes_vec(data) if data else None
        tflite.BufferStart(b)
        if dv is not None:
            tflite.BufferAddData(b, dv)
        bufs.append(tflite.BufferEnd(b))

    mname = b.CreateString("min_runtime_version")
    tflite.MetadataStart(b)
    tflite.MetadataAddName(b, mname)
    tflite.MetadataAddBuffer(b, md_buf)
    md = tflite.MetadataEnd(b)

    desc = b.CreateString("litelens synthetic test model")
    ocv, sgv, bv, mdv = ovec(ocs), ovec([sg0_off, sg1_off]), ovec(bufs), ovec([md])
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, ocv)
    tflite.ModelAddSubgraphs(b, sgv)
    tflite.ModelAddDescription(b, desc)
    tflite.ModelAddBuffers(b, bv)
    tflite.ModelAddMetadata(b, mdv)
    m = tflite.ModelEnd(b)
    b.Finish(m, file_identifier=b"TFL3")
    return bytes(b.Output())


@pytest.fixture(scope="module")
def synthetic_model(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("synthetic") / "synthetic.tflite")
    with open(path, "wb") as f:
        f.write(build_synthetic_model())
    return path


def test_synthetic_oracles_agree(synthetic_model):
    pkg = _pkg(synthetic_model)
    lit = _litert(synthetic_model)
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
    _assert_no_diffs(oracles.compare_tensors(tens, pkg, lit, _file(synthetic_model)), "synthetic tensors")
    _assert_no_diffs(oracles.compare_ops(ops, pkg, lit), "synthetic ops")


def test_synthetic_tensors_match_oracles(synthetic_model):
    ours = _run_cli("tensors", synthetic_model)
    _assert_no_diffs(oracles.compare_tensors(ours, _pkg(synthetic_model), _litert(synthetic_model),
                                             _file(synthetic_model)), "litelens tensors synthetic")


def test_synthetic_ops_match_oracles(synthetic_model):
    ours = _run_cli("ops", synthetic_model)
    _assert_no_diffs(oracles.compare_ops(ours, _pkg(synthetic_model), _litert(synthetic_model)),
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
    pkg = _pkg(synthetic_model)
    good, _ = oracles.contract_from_pkg(pkg)
    bad = copy.deepcopy(good)
    TENSOR_MUTATIONS[mutation](bad)
    assert bad != good
    assert oracles.compare_tensors(bad, pkg, _litert(synthetic_model), _file(synthetic_model)), \
        f"mutation {mutation!r} was not detected"
    # and each oracle on its own catches it too (except where only one can)
    assert oracles.compare_tensors(bad, pkg, None, _file(synthetic_model))


def test_constant_bytes_mutation_detected(synthetic_model, tmp_path):
    """Same JSON, but the file's constant bytes changed: the hash check fails
    against both oracles."""
    pkg = _pkg(synthetic_model)
    lit = _litert(synthetic_model)
    good, _ = oracles.contract_from_pkg(pkg)
    data = bytearray(_file(synthetic_model))
    w = _t(good, "fc/weights")
    data[w["data_offset"]] ^= 0x01
    errs = oracles.compare_tensors(good, pkg, lit, bytes(data))
    assert any("tflite package" in e for e in errs), errs
    assert any("litert" in e for e in errs), errs
    # litert-only: unpacked int4 comparison
    pkg2 = copy.deepcopy(pkg)
    t4 = pkg2["subgraphs"][0]["tensors"][10]
    data = bytearray(_file(synthetic_model))
    data[t4["data_offset"]] ^= 0x10
    t4["sha256"] = oracles.sha256(bytes(data[t4["data_offset"]:t4["data_offset"] + t4["nbytes"]]))
    errs = oracles.compare_tensors(good, pkg2, lit, bytes(data))
    assert any("int4_const" in e and "litert" in e for e in errs), errs


@pytest.mark.parametrize("mutation", sorted(OP_MUTATIONS))
def test_op_mutation_detected(synthetic_model, mutation):
    pkg = _pkg(synthetic_model)
    _, good = oracles.contract_from_pkg(pkg)
    bad = copy.deepcopy(good)
    OP_MUTATIONS[mutation](bad)
    assert bad != good
    assert oracles.compare_ops(bad, pkg, _litert(synthetic_model)), f"mutation {mutation!r} was not detected"


def test_litert_side_detects_on_its_own(synthetic_model):
    """Mutate the tflite-package oracle together with our JSON, so only the
    LiteRT comparison can notice."""
    pkg = copy.deepcopy(_pkg(synthetic_model))
    lit = _litert(synthetic_model)
    for t in (pkg["subgraphs"][0]["tensors"][2],):
        t["name"] = "renamed"
        t["quantization"]["scale"][0] = _ulp_up(t["quantization"]["scale"][0])
    pkg["subgraphs"][0]["operators"][1]["inputs"] = [1, 2, 2]
    tens, ops = oracles.contract_from_pkg(pkg)
    errs = oracles.compare_tensors(tens, pkg, lit, _file(synthetic_model))
    assert any("litert=" in e and "name" in e for e in errs), errs
    assert any("litert=" in e and "quantization" in e for e in errs), errs
    errs = oracles.compare_ops(ops, pkg, lit)
    assert any("litert=" in e and "inputs" in e for e in errs), errs


@pytest.mark.skipif(not MODELS, reason="covered by test_model_cache_not_empty")
def test_real_model_mutation_detected():
    """A mutated copy of a correct document for a real model is caught."""
    model = min(MODELS, key=os.path.getsize)
    pkg = _pkg(model)
    good_t, good_o = oracles.contract_from_pkg(pkg)
    const = next(t for t in good_t["subgraphs"][0]["tensors"] if t["is_constant"])
    for mutate in (lambda d: d["subgraphs"][0]["tensors"][0]["shape"].append(1),
                   lambda d: _t(d, const["name"]).update(data_offset=const["data_offset"] - 4),
                   lambda d: _t(d, const["name"]).update(dtype="float64")):
        bad = copy.deepcopy(good_t)
        mutate(bad)
        assert oracles.compare_tensors(bad, pkg, _litert(model), _file(model))
    bad = copy.deepcopy(good_o)
    bad["subgraphs"][0]["operators"][0]["op"] = "NOT_AN_OP"
    assert oracles.compare_ops(bad, pkg, _litert(model))
