"""Every decode path of `litelens extract` / `layers --json`, on models built here, checked
against the independent NumPy decoders of layer_oracles.py: float16 and bfloat16 widening,
INT4/UINT4/INT2 unpacking, densifying, per-tensor / per-channel / blockwise dequantization,
int32 and int64 biases. The NumPy decoders are checked in turn against hand-worked
examples and, where LiteRT has a kernel, against LiteRT's DEQUANTIZE and DENSIFY outputs.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import layer_oracles as lo  # noqa: E402
from model_builder import (BFLOAT16, FLOAT16, FLOAT32, INT2, INT4, INT8, INT16, INT32, INT64,  # noqa: E402
                           UINT4, UINT8, ModelBuilder, conv_options, pack_int2, pack_int4)

# ---------------------------------------------------------------------------------------------
# The NumPy decoders on hand-worked examples (so the oracle itself can be wrong only in
# ways these would catch).


def test_oracle_unpack_examples():
    assert lo.unpack_int4(bytes([0x12, 0x34]), 4).tolist() == [2, 1, 4, 3]
    assert lo.unpack_int2(bytes([0x84]), 4).tolist() == [0, 1, 0, -2]
    assert lo.unpack_int4(bytes([0xF8]), 2).tolist() == [-8, -1]
    assert lo.unpack_uint4(bytes([0xF8, 0x01]), 3).tolist() == [8, 15, 1]
    assert pack_int4([2, 1, 4, 3]) == bytes([0x12, 0x34])
    assert pack_int2([0, 1, 0, -2]) == bytes([0x84])


def test_oracle_densify_example():
    levels = [{"format": 0, "dense_size": 2},
              {"format": 1, "segments": [0, 2, 3], "indices": [0, 1, 1]},
              {"format": 0, "dense_size": 2}, {"format": 0, "dense_size": 2}]
    got = lo.densify([4, 4], [0, 1, 2, 3], [0, 1], levels, np.array([1, 0, 0, 4, 2, 3, 0, 0, 5, 0, 0, 6], np.float32))
    assert got.tolist() == [[1, 0, 2, 3], [0, 4, 0, 0], [0, 0, 5, 0], [0, 0, 0, 6]]


def test_oracle_widen_examples():
    assert lo.widen_bf16(bytes([0x80, 0x3F, 0x00, 0xC0])).tolist() == [1.0, -2.0]
    assert lo.widen_f16(bytes([0x00, 0x3C, 0x01, 0x00])).tolist() == [1.0, 2.0 ** -24]


def test_oracle_dequantize_examples():
    assert lo.dequantize(np.array([[1, 2], [3, 4]], np.int8), [0.5, 2.0], [0, 1], axis=1).tolist() == \
        [[0.5, 2.0], [1.5, 6.0]]
    assert lo.dequantize(np.array([0, 255], np.uint8), [0.5], [128]).tolist() == [-64.0, 63.5]
    got = lo.dequantize_blockwise(np.array([[1, 2, 3, 4]], np.int8), [1.0, 10.0], None, 2)
    assert got.tolist() == [[1, 2, 30, 40]]


# ---------------------------------------------------------------------------------------------
# The zoo: one constant per decode path, each the second input of its own ADD operator (so it is
# a layer parameter with key sg0.op<i>.ADD/y).

RNG = np.random.default_rng(20260)


def _f16_values(n):
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 65504.0, -65504.0, 2.0 ** -24, -(2.0 ** -24),
                        2.0 ** -14, 6.1e-5, 1.0, -1.5], np.float16)
    rest = RNG.normal(0, 3, n - special.size).astype(np.float16)
    return np.concatenate([special, rest])


def _bf16_bits(n):
    special = np.array([0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC1, 0x7F81, 0x0001, 0x8001, 0x3F80, 0x4049],
                       np.uint16)
    rest = (RNG.normal(0, 10, n - special.size).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    return np.concatenate([special, rest])


def _sparse_csr():
    # [3, 5] float32: rows with 2, 0 and 3 stored values; uint8 index vectors.
    return ({"traversal_order": [0, 1], "block_map": [],
             "levels": [{"format": 0, "dense_size": 3},
                        {"format": 1, "segments": [0, 2, 2, 5], "indices": [1, 4, 0, 2, 3], "index_type": "u8"}]},
            np.array([1.5, -2.0, 3.25, 4.0, -5.5], np.float32))


def _sparse_block():
    # [4, 8] int8 with 1x4 blocks (block_map [1]): rows 0 and 2 store block columns 1 and 0,
    # uint16 index vectors; zeros inside stored blocks are stored too.
    levels = [{"format": 0, "dense_size": 4},
              {"format": 1, "segments": [0, 1, 1, 3, 4], "indices": [1, 0, 1, 0], "index_type": "u16"},
              {"format": 0, "dense_size": 4}]
    vals = np.array([1, -2, 0, 4, 5, 6, -7, 8, 9, 0, 11, -12, 13, 14, 15, -16], np.int8)
    return {"traversal_order": [0, 1, 2], "block_map": [1], "levels": levels}, vals


def _sparse_3d_permuted():
    # [2, 3, 4] float16 walked in order (1, 0, 2): dim 1 dense, dim 0 CSR, dim 2 CSR; int32 indices.
    levels = [{"format": 0, "dense_size": 3},
              {"format": 1, "segments": [0, 2, 3, 3], "indices": [0, 1, 1], "index_type": "i32"},
              {"format": 1, "segments": [0, 1, 3, 4], "indices": [3, 0, 2, 1], "index_type": "i32"}]
    vals = np.array([1.0, -2.5, 3.0, 0.125], np.float16)
    return {"traversal_order": [1, 0, 2], "block_map": [], "levels": levels}, vals


def _sparse_digest():
    levels = [{"format": 0, "dense_size": 2},
              {"format": 1, "segments": [0, 2, 3], "indices": [0, 1, 1], "index_type": "u8"},
              {"format": 0, "dense_size": 2}, {"format": 0, "dense_size": 2}]
    return ({"traversal_order": [0, 1, 2, 3], "block_map": [0, 1], "levels": levels},
            np.array([1, 0, 0, 4, 2, 3, 0, 0, 5, 0, 0, 6], np.float32))


def _cases():
    """name -> dict(type, shape, raw, quant, sparsity, source): `source` is what the generator
    meant (the stored values), compared with the oracle's decoding of `raw`."""
    c = {}
    f16 = _f16_values(30)
    c["f16"] = dict(type=FLOAT16, shape=[5, 6], raw=f16.tobytes(), source=f16.reshape(5, 6))
    bf = _bf16_bits(21)
    c["bf16"] = dict(type=BFLOAT16, shape=[3, 7], raw=bf.tobytes(), source=None)
    v = RNG.integers(-8, 8, 9).astype(np.int8)
    c["int4_tensor"] = dict(type=INT4, shape=[3, 3], raw=pack_int4(v), source=v.reshape(3, 3),
                            quant={"scale": [0.25], "zero_point": [0]})
    v = RNG.integers(-8, 8, 4 * 7).astype(np.int8)
    c["int4_channel"] = dict(type=INT4, shape=[4, 7], raw=pack_int4(v), source=v.reshape(4, 7),
                             quant={"scale": [0.5, 0.125, 1.5, 3.0e-3], "zero_point": [0, 0, 0, 0], "axis": 0})
    v = RNG.integers(0, 16, 11).astype(np.uint8)
    c["uint4_tensor"] = dict(type=UINT4, shape=[11], raw=pack_int4(v.astype(np.int16)), source=v,
                             quant={"scale": [0.1], "zero_point": [8]})
    v = RNG.integers(-2, 2, 2 * 5).astype(np.int8)
    c["int2_channel"] = dict(type=INT2, shape=[2, 5], raw=pack_int2(v), source=v.reshape(2, 5),
                             quant={"scale": [0.5, 1.0, 2.0, 0.25, 0.75], "zero_point": [0] * 5, "axis": 1})
    v = RNG.integers(-127, 128, (1, 3, 3, 6)).astype(np.int8)
    c["int8_axis3"] = dict(type=INT8, shape=[1, 3, 3, 6], raw=v.tobytes(), source=v,
                           quant={"scale": list(RNG.uniform(1e-3, 1e-1, 6).astype(np.float32)),
                                  "zero_point": [0] * 6, "axis": 3})
    v = RNG.integers(-128, 128, (3, 4, 2)).astype(np.int8)
    c["int8_axis1_zp"] = dict(type=INT8, shape=[3, 4, 2], raw=v.tobytes(), source=v,
                              quant={"scale": [0.5, 0.25, 0.125, 0.0625], "zero_point": [-3, 0, 5, 127], "axis": 1})
    v = RNG.integers(0, 256, 12).astype(np.uint8)
    c["uint8_tensor"] = dict(type=UINT8, shape=[12], raw=v.tobytes(), source=v,
                             quant={"scale": [0.0078125], "zero_point": [128]})
    v = RNG.integers(-32768, 32768, (4, 5)).astype(np.int16)
    c["int16_tensor"] = dict(type=INT16, shape=[4, 5], raw=v.astype("<i2").tobytes(), source=v,
                             quant={"scale": [3.0517578e-05], "zero_point": [0]})
    v = np.array([7, -8, 2 ** 31 - 1, -(2 ** 31), 123456, -1], np.int32)
    c["int32_bias"] = dict(type=INT32, shape=[6], raw=v.astype("<i4").tobytes(), source=v,
                           quant={"scale": list(np.float32([1e-4, 2e-5, 3e-6, 4e-7, 5e-3, 0.7])),
                                  "zero_point": [0] * 6, "axis": 0})
    v = np.array([2 ** 40 + 3, -(2 ** 35), 17, -(2 ** 53) - 1], np.int64)
    c["int64_bias"] = dict(type=INT64, shape=[4], raw=v.astype("<i8").tobytes(), source=v,
                           quant={"scale": list(np.float32([1e-9, 3e-7, 0.5, 1e-12])), "zero_point": [0] * 4,
                                  "axis": 0})
    v = RNG.integers(-100, 100, 8).astype(np.int32)
    c["int32_plain"] = dict(type=INT32, shape=[8], raw=v.astype("<i4").tobytes(), source=v)
    sp, vals = _sparse_csr()
    c["sparse_csr_f32"] = dict(type=FLOAT32, shape=[3, 5], raw=vals.tobytes(), sparsity=sp, source=None)
    sp, vals = _sparse_block()
    c["sparse_block_int8"] = dict(type=INT8, shape=[4, 8], raw=vals.tobytes(), sparsity=sp, source=None,
                                  quant={"scale": [0.5, 0.25, 2.0, 1.0], "zero_point": [0] * 4, "axis": 0})
    sp, vals = _sparse_3d_permuted()
    c["sparse_3d_f16"] = dict(type=FLOAT16, shape=[2, 3, 4], raw=vals.tobytes(), sparsity=sp, source=None)
    sp, vals = _sparse_digest()
    c["sparse_digest"] = dict(type=FLOAT32, shape=[4, 4], raw=vals.tobytes(), sparsity=sp,
                              source=np.array([[1, 0, 2, 3], [0, 4, 0, 0], [0, 0, 5, 0], [0, 0, 0, 6]], np.float32))
    # Blockwise: weights [rows, cols], scales a FLOAT16 tensor [rows, cols / block] (its own constant).
    v = RNG.integers(-8, 8, 4 * 8).astype(np.int8)
    c["blockwise_int4"] = dict(type=INT4, shape=[4, 8], raw=pack_int4(v), source=v.reshape(4, 8),
                               blockwise=dict(block_size=4, scales=RNG.uniform(0.01, 1, (4, 2)).astype(np.float16),
                                              zero_points=None))
    v = RNG.integers(-128, 128, 3 * 6).astype(np.int8)
    c["blockwise_int8_zp"] = dict(type=INT8, shape=[3, 6], raw=v.tobytes(), source=v.reshape(3, 6),
                                  blockwise=dict(block_size=2, scales=RNG.uniform(0.01, 1, (3, 3)).astype(np.float16),
                                                 zero_points=RNG.integers(-5, 5, (3, 3)).astype(np.int8)))
    v = RNG.integers(0, 256, 2 * 4).astype(np.uint8)
    v[:2] = [200, 255]
    c["blockwise_uint8_zp"] = dict(type=UINT8, shape=[2, 4], raw=v.tobytes(), source=v.reshape(2, 4),
                                   blockwise=dict(block_size=2, scales=np.array([[0.5, 1.0], [0.25, 2.0]], np.float16),
                                                  zero_points=np.array([[128, 100], [0, 255]], np.uint8)))
    return c


CASES = _cases()


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """The zoo model: case i is input 1 of operator i (an ADD). Returns (path, {case: op index})."""
    mb = ModelBuilder()
    x = mb.tensor("x", FLOAT32, [1])
    ops = {}
    for name, case in CASES.items():
        quant = case.get("quant")
        if "blockwise" in case:
            bw = case["blockwise"]
            s = mb.const(f"{name}/scales", bw["scales"])
            z = mb.const(f"{name}/zero_points", bw["zero_points"]) if bw["zero_points"] is not None else -1
            quant = {"blockwise": {"scales": s, "zero_points": z, "block_size": bw["block_size"]}}
        t = mb.tensor(name, case["type"], case["shape"], case["raw"], quant=quant, sparsity=case.get("sparsity"))
        out = mb.tensor(f"{name}/out", FLOAT32, case["shape"])
        ops[name] = mb.op("ADD", [x, t], [out])
    mb.io([x], [])
    path = tmp_path_factory.mktemp("zoo") / "zoo.tflite"
    path.write_bytes(mb.build())
    return str(path), ops


def _oracle(path: str, name: str, ops: dict) -> dict:
    """The case's tensor read with the tflite package, decoded by the NumPy oracle."""
    pkg = lo.PkgModel.load(path)
    t = pkg.tensor(0, pkg.ops(0)[ops[name]]["inputs"][1])
    stored = lo.np_stored(t)
    widened = lo.np_widened(t)
    q = t["quant"]
    if q and q.get("blockwise"):
        bw = q["blockwise"]
        scales = lo.np_widened(pkg.tensor(0, bw["scales"]))
        zps = lo.np_stored(pkg.tensor(0, bw["zero_points"])) if bw["zero_points"] >= 0 else None
        deq = lo.dequantize_blockwise(stored, scales, zps, bw["block_size"])
    elif q and q["scale"]:
        deq = lo.dequantize(stored, q["scale"], q["zero_point"], q["axis"])
    else:
        deq = widened
    return {"tensor": t, "stored": stored, "widened": widened, "dequantized": deq}


@pytest.fixture(scope="module")
def zoo_exports(zoo, tmp_path_factory):
    path, _ = zoo
    d = tmp_path_factory.mktemp("zoo_export")
    stored, m1 = lo.extract_npz(path, d, name="stored.npz")
    deq, m2 = lo.extract_npz(path, d, "--dequantize", name="deq.npz")
    return {"stored": (stored, m1), "dequantized": (deq, m2)}


# What extract writes to .npz without --dequantize: the stored dtype, with packed types unpacked
# to int8/uint8 and bfloat16 (which .npy cannot hold) widened to float32.
def _expected_stored(o):
    if o["tensor"]["type"] == BFLOAT16:
        return o["widened"]
    return o["stored"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_oracle_matches_generator(zoo, case):
    """The oracle's reading of the file gives back what the generator meant to store."""
    path, ops = zoo
    src = CASES[case]["source"]
    o = _oracle(path, case, ops)
    if src is None:  # bfloat16 bits and the sparse cases: checked against LiteRT or by hand below
        assert o["stored"].shape == tuple(CASES[case]["shape"])
        return
    lo.assert_bits_equal(o["stored"], src, f"{case}: oracle decoding vs generator")


@pytest.mark.parametrize("case", sorted(CASES))
def test_extract_stored_values(zoo, zoo_exports, case):
    path, ops = zoo
    arrays, manifest = zoo_exports["stored"]
    key = f"sg0.op{ops[case]}.ADD/y"
    assert key in arrays, f"{key} missing from the export (have {sorted(arrays)[:8]}...)"
    o = _oracle(path, case, ops)
    lo.assert_bits_equal(arrays[key], _expected_stored(o), f"{case} stored")
    entry = manifest["arrays"][key]
    assert entry["shape"] == list(o["stored"].shape)
    assert entry["dtype"] == str(arrays[key].dtype) or (entry["dtype"], str(arrays[key].dtype)) == ("bool", "bool")


@pytest.mark.parametrize("case", sorted(CASES))
def test_extract_dequantized_values(zoo, zoo_exports, case):
    path, ops = zoo
    arrays, manifest = zoo_exports["dequantized"]
    key = f"sg0.op{ops[case]}.ADD/y"
    o = _oracle(path, case, ops)
    want = o["dequantized"]
    lo.assert_bits_equal(arrays[key], want, f"{case} dequantized")
    # Integers and booleans without quantization are exported exactly as stored, and say so.
    assert manifest["arrays"][key]["values"] == ("dequantized" if want.dtype.kind in "fc" else "stored")


@pytest.mark.parametrize("case", sorted(CASES))
def test_layers_json_values(zoo, case):
    """`layers --json`: quantization, dtype and shape of the stored tensor; statistics and first
    values of the dequantized values."""
    path, ops = zoo
    (layer,) = lo.layers_json(path, "--index", ops[case], "--count", 100)
    p = layer["params"]["y"]
    o = _oracle(path, case, ops)
    t = o["tensor"]
    assert p["tensor"] == p["stored_tensor"] == t["index"]
    assert p["via"] == []
    assert p["name"] == case
    assert p["shape"] == t["shape"]
    assert p["dtype"] == {FLOAT16: "float16", BFLOAT16: "bfloat16", INT4: "int4", UINT4: "uint4", INT2: "int2",
                          INT8: "int8", UINT8: "uint8", INT16: "int16", INT32: "int32", INT64: "int64",
                          FLOAT32: "float32"}[t["type"]]
    q = t["quant"]
    if q and q["scale"]:
        assert p["quantization"]["scale"] == pytest.approx(q["scale"], rel=0, abs=0)
        assert p["quantization"]["zero_point"] == q["zero_point"]
        assert p["quantization"]["quantized_dimension"] == q["axis"]
    with np.errstate(invalid="ignore"):  # signalling NaNs (bfloat16 case) raise the flag
        want = o["dequantized"].astype(np.float64).reshape(-1)
    # JSON has no NaN or infinity: those values are written as null.
    first = [None if not np.isfinite(v) else v for v in want[:100]]
    assert p["first_values"] == first
    not_nan = want[~np.isnan(want)]
    s = p["stats"]
    assert s["nan_count"] == int(np.isnan(want).sum())
    assert s["zero_fraction"] == pytest.approx(float((want == 0).mean()))
    as_json = lambda v: float(v) if np.isfinite(v) else None  # noqa: E731
    assert (s["min"], s["max"]) == (as_json(not_nan.min()), as_json(not_nan.max()))
    if np.isfinite(not_nan).all():
        assert s["mean"] == pytest.approx(not_nan.mean(), rel=1e-9, abs=1e-12)
        assert s["std"] == pytest.approx(not_nan.std(), rel=1e-6, abs=1e-12)


def test_widened_export_of_fp16_in_json(zoo, tmp_path):
    """JSON has no float16: stored fp16 values come out widened (exactly) to float32."""
    import json
    path, ops = zoo
    out = tmp_path / "f16.json"
    lo.cli("extract", path, "--index", ops["f16"], "-o", out)
    doc = json.loads(out.read_text())
    (entry,) = doc["arrays"].values()
    o = _oracle(path, "f16", ops)
    got = np.array([np.nan if v is None else v for v in np.array(entry["values"], dtype=object).reshape(-1)],
                   np.float64)
    want = o["widened"].astype(np.float64).reshape(-1)
    finite = np.isfinite(want)
    np.testing.assert_array_equal(got[finite], want[finite])
    assert entry["dtype"] == "float32" and entry["stored_dtype"] == "float16"


# ---------------------------------------------------------------------------------------------
# The NumPy oracle and litelens against LiteRT's DEQUANTIZE and DENSIFY kernels, on a model
# whose constants each feed one of them.

LITERT_DEQUANTIZE = ["f16", "int8_axis3", "int8_axis1_zp", "uint8_tensor", "int16_tensor", "int4_tensor",
                     "int4_channel", "int2_channel"]
# LiteRT's UINT4 DEQUANTIZE rounds differently (as if it computed scale*q - scale*zero_point in
# float32): equal within a few ulps, not bit for bit. litelens follows the exact formula.
LITERT_DEQUANTIZE_ROUNDED = ["uint4_tensor"]
LITERT_DENSIFY = ["sparse_csr_f32", "sparse_block_int8", "sparse_3d_f16", "sparse_digest"]


@pytest.fixture(scope="module")
def conversion_model(tmp_path_factory):
    mb = ModelBuilder()
    outs = {}
    for name in LITERT_DEQUANTIZE + LITERT_DEQUANTIZE_ROUNDED + LITERT_DENSIFY:
        case = CASES[name]
        t = mb.tensor(name, case["type"], case["shape"], case["raw"], quant=case.get("quant"),
                      sparsity=case.get("sparsity"))
        op = "DENSIFY" if name in LITERT_DENSIFY else "DEQUANTIZE"
        out_type = case["type"] if op == "DENSIFY" else FLOAT32
        o = mb.tensor(f"{name}/out", out_type, case["shape"])
        outs[name] = (mb.op(op, [t], [o]), t, o)
    mb.io([], [o for _, _, o in outs.values()])
    path = tmp_path_factory.mktemp("conv") / "conversions.tflite"
    path.write_bytes(mb.build())
    return str(path), outs


def test_litert_runs_conversion_model(conversion_model):
    lo.litert_invoke(model_path=conversion_model[0])


@pytest.mark.parametrize("case", LITERT_DEQUANTIZE + LITERT_DENSIFY)
def test_against_litert(conversion_model, tmp_path, case):
    path, outs = conversion_model
    op_index, t, o = outs[case]
    it = lo.litert_invoke(model_path=path)
    runtime = it.get_tensor(o)
    pkg = lo.PkgModel.load(path)
    tensor = pkg.tensor(0, t)
    kind = "DENSIFY" if case in LITERT_DENSIFY else "DEQUANTIZE"
    # The NumPy oracle agrees with the runtime ...
    if kind == "DENSIFY":
        oracle = lo.np_stored(tensor)
    else:
        q = tensor["quant"]
        oracle = lo.dequantize(lo.np_stored(tensor), q["scale"], q["zero_point"], q["axis"]) if q else \
            lo.np_widened(tensor)
    lo.assert_bits_equal(oracle, runtime, f"{case}: NumPy oracle vs LiteRT {kind}")
    # ... and so does litelens: the DEQUANTIZE/DENSIFY layer's input, exported with --all-ops.
    args = ["--all-ops", "--index", op_index] + (["--dequantize"] if kind == "DEQUANTIZE" else [])
    arrays, _ = lo.extract_npz(path, tmp_path, *args)
    lo.assert_bits_equal(arrays[f"sg0.op{op_index}.{kind}/input"], runtime, f"{case}: litelens vs LiteRT {kind}")


@pytest.mark.parametrize("case", LITERT_DEQUANTIZE_ROUNDED)
def test_against_litert_within_rounding(conversion_model, tmp_path, case):
    path, outs = conversion_model
    op_index, t, o = outs[case]
    runtime = lo.litert_invoke(model_path=path).get_tensor(o)
    tensor = lo.PkgModel.load(path).tensor(0, t)
    q = tensor["quant"]
    oracle = lo.dequantize(lo.np_stored(tensor), q["scale"], q["zero_point"], q["axis"])
    arrays, _ = lo.extract_npz(path, tmp_path, "--all-ops", "--index", op_index, "--dequantize")
    ours = arrays[f"sg0.op{op_index}.DEQUANTIZE/input"]
    lo.assert_bits_equal(ours, oracle, f"{case}: litelens vs the exact formula")
    np.testing.assert_allclose(ours, runtime, rtol=4 * 2.0 ** -23, atol=0, err_msg=f"{case}: litelens vs LiteRT")


# ---------------------------------------------------------------------------------------------
# Resolution through DEQUANTIZE and DENSIFY on a built model: CONV_2D whose filter comes out of
# DENSIFY -> DEQUANTIZE (sparse fp16), bias from DEQUANTIZE (fp16), and a FULLY_CONNECTED whose
# weights are a graph input (fed at run time).


@pytest.fixture(scope="module")
def chain_model(tmp_path_factory):
    mb = ModelBuilder()
    x = mb.tensor("image", FLOAT32, [1, 4, 4, 4])
    sp = {"traversal_order": [0, 1, 2, 3], "block_map": [],
          "levels": [{"format": 0, "dense_size": 3}, {"format": 0, "dense_size": 1}, {"format": 0, "dense_size": 1},
                     {"format": 1, "segments": [0, 2, 2, 4], "indices": [0, 3, 1, 2], "index_type": "u8"}]}
    w16 = mb.tensor("w_sparse_f16", FLOAT16, [3, 1, 1, 4], np.array([1, -2, 3.5, 0.25], np.float16).tobytes(),
                    sparsity=sp)
    w_dense16 = mb.tensor("w_dense_f16", FLOAT16, [3, 1, 1, 4])
    w = mb.tensor("w_f32", FLOAT32, [3, 1, 1, 4])
    b16 = mb.const("b_f16", np.array([0.5, -1, 2], np.float16))
    b = mb.tensor("b_f32", FLOAT32, [3])
    y = mb.tensor("conv/out", FLOAT32, [1, 4, 4, 3])
    fc_w = mb.tensor("fc/runtime_weights", FLOAT32, [2, 48])
    fc_in = mb.tensor("flat", FLOAT32, [1, 48])
    shape = mb.const("flat/shape", np.array([1, 48], np.int32))
    fc_out = mb.tensor("fc/out", FLOAT32, [1, 2])
    mb.op("DENSIFY", [w16], [w_dense16])
    mb.op("DEQUANTIZE", [w_dense16], [w])
    mb.op("DEQUANTIZE", [b16], [b])
    mb.op("CONV_2D", [x, w, b], [y], options=conv_options())
    mb.op("RESHAPE", [y, shape], [fc_in])
    mb.op("FULLY_CONNECTED", [fc_in, fc_w, -1], [fc_out], options=("FullyConnectedOptions", {}))
    mb.io([x, fc_w], [fc_out])
    path = tmp_path_factory.mktemp("chain") / "chain.tflite"
    path.write_bytes(mb.build())
    return str(path)


def test_chain_resolution(chain_model, tmp_path):
    (conv,) = lo.layers_json(chain_model, "--op", "CONV_2D")
    f, bias = conv["params"]["filter"], conv["params"]["bias"]
    assert f["via"] == ["DEQUANTIZE", "DENSIFY"] and f["tensor"] == 3 and f["stored_tensor"] == 1
    assert f["dtype"] == "float16" and f["name"] == "w_sparse_f16" and f["layout"] == "OHWI"
    assert bias["via"] == ["DEQUANTIZE"] and bias["stored_tensor"] == 4
    assert conv["params"]["input"]["runtime"] is True and conv["params"]["input"]["stored_tensor"] is None
    (fc,) = lo.layers_json(chain_model, "--op", "FULLY_CONNECTED")
    assert set(fc["params"]) == {"input", "weights"}, "absent optional bias (-1) must be an absent role"
    assert fc["params"]["weights"]["runtime"] is True and "first_values" not in fc["params"]["weights"]
    # Values: the densified float16 filter, widened with --dequantize; the runtime weights are not
    # exported.
    arrays, manifest = lo.extract_npz(chain_model, tmp_path, "--dequantize")
    want = np.zeros((3, 1, 1, 4), np.float32)
    want[0, 0, 0, [0, 3]] = [1, -2]
    want[2, 0, 0, [1, 2]] = [3.5, 0.25]
    lo.assert_bits_equal(arrays["sg0.op3.CONV_2D/filter"], want, "densified fp16 filter")
    lo.assert_bits_equal(arrays["sg0.op3.CONV_2D/bias"], np.array([0.5, -1, 2], np.float32), "fp16 bias")
    assert not any(k.startswith("sg0.op5.") for k in arrays), "a runtime-fed parameter has no values to export"
    assert not any("DEQUANTIZE" in k or "DENSIFY" in k for k in arrays)
    m = manifest["arrays"]["sg0.op3.CONV_2D/filter"]
    assert (m["tensor"], m["stored_tensor"], m["stored_dtype"], m["dtype"]) == (3, 1, "float16", "float32")
    stored, _ = lo.extract_npz(chain_model, tmp_path, name="stored.npz")
    lo.assert_bits_equal(stored["sg0.op3.CONV_2D/filter"], want.astype(np.float16), "densified fp16, stored")
    # LiteRT computes the same filter.
    it = lo.litert_invoke(model_path=chain_model)
    lo.assert_bits_equal(it.get_tensor(3), want, "LiteRT DENSIFY -> DEQUANTIZE output")
