"""The litelens Python package on small hand-built models whose every value is known.

The real MediaPipe models are all float32/float16, so this file builds what they lack, with
model_builder.py (the PyPI ``tflite`` package's FlatBuffers builders, no litelens code involved):

* a runnable chain of convolutions covering every way conv2d_params() must answer
  (fp16 behind DEQUANTIZE, sparse behind DENSIFY, sparse fp16 behind DENSIFY+DEQUANTIZE,
  int8 per-channel, uint8 per-tensor, depthwise with a depth multiplier, no bias);
* the same model with a custom op the interpreter cannot resolve;
* unused INT4 and BFLOAT16 constants (unpacking and raw-bit views).

The ground truth is the arrays the models are built from. The LiteRT interpreter runs the
runnable model (zeros in, ``experimental_preserve_all_tensors=True``) and must agree: the
DEQUANTIZE and DENSIFY outputs equal what litelens decodes.

Setup: pip install . (the package), plus numpy, tflite, flatbuffers, ai-edge-litert, pytest.
"""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

import litelens
from model_builder import (BFLOAT16, FLOAT16, FLOAT32, INT4, INT8, INT32, UINT8, ModelBuilder, conv_options,
                           csr_last_axis, pack_int4)

# --------------------------------------------------------------------------- the test models

RNG = np.random.default_rng(20240611)

# Ground truth: what each convolution consumes (float32 for float convs; stored ints otherwise).
F16_FILTER = RNG.normal(0, 0.5, (3, 3, 3, 2)).astype(np.float16)            # conv_fp16 [O,H,W,I]
F16_BIAS = RNG.normal(0, 0.1, (3,)).astype(np.float16)
SPARSE_FILTER = (RNG.normal(0, 0.5, (4, 1, 1, 3)) * (RNG.random((4, 1, 1, 3)) < 0.5)).astype(np.float32)
SPARSE_FILTER[0, 0, 0, 0] = 0.75                                             # at least one value
SPARSE_BIAS = RNG.normal(0, 0.1, (4,)).astype(np.float32)
SPARSE_F16_FILTER = (RNG.normal(0, 0.5, (2, 1, 1, 4)) * (RNG.random((2, 1, 1, 4)) < 0.5)).astype(np.float16)
SPARSE_F16_FILTER[1, 0, 0, 3] = -1.5
SPARSE_F16_BIAS = np.array([0.25, -0.5], np.float32)
Q3 = dict(scale=[0.05], zero_point=[-3])                                     # int8 activations
I8_FILTER = RNG.integers(-127, 128, (3, 1, 1, 2), dtype=np.int8)
I8_SCALES = [0.011, 0.023, 0.0071]
I8_BIAS = np.array([120, -340, 57], np.int32)
U8_IN = dict(scale=[0.05], zero_point=[128])
U8_FILTER = RNG.integers(0, 256, (2, 1, 1, 3), dtype=np.uint8)
U8_W = dict(scale=[0.02], zero_point=[120])
U8_BIAS = np.array([-15, 230], np.int32)
DW_FILTER = RNG.normal(0, 0.5, (1, 3, 3, 4)).astype(np.float32)             # depthwise, C=2, M=2
DW_BIAS = RNG.normal(0, 0.1, (4,)).astype(np.float32)
INT4_VALUES = np.array([1, -2, 7, -8, 0, 3, -1], np.int8)
BF16_BITS = np.array([0x3F80, 0xC000, 0x3EAB], np.uint16)                   # 1.0, -2.0, 0.333984375

# conv layer name -> (weights, biases or None) as conv2d_params must return them
EXPECTED = {
    "conv_fp16": (F16_FILTER.astype(np.float32), F16_BIAS.astype(np.float32)),
    "conv_sparse": (SPARSE_FILTER, SPARSE_BIAS),
    "conv_sparse_fp16": (SPARSE_F16_FILTER.astype(np.float32), SPARSE_F16_BIAS),
    "conv_int8": (I8_FILTER, I8_BIAS),
    "conv_uint8": (U8_FILTER, U8_BIAS),
}
# The custom-op model's conv_sparse_fp16 has no bias.
EXPECTED_CUSTOM = dict(EXPECTED, conv_sparse_fp16=(EXPECTED["conv_sparse_fp16"][0], None))


def build_conv_model(custom_op: bool = False) -> bytes:
    mb = ModelBuilder(description="litelens package test model")
    mb.name_subgraph(0, "main")
    x = mb.tensor("input", FLOAT32, [1, 5, 5, 2])
    # 1. fp16 filter and bias behind DEQUANTIZE
    w16 = mb.tensor("conv_fp16/filter_f16", FLOAT16, F16_FILTER.shape, F16_FILTER.tobytes())
    w = mb.tensor("conv_fp16/filter", FLOAT32, F16_FILTER.shape)
    b16 = mb.tensor("conv_fp16/bias_f16", FLOAT16, F16_BIAS.shape, F16_BIAS.tobytes())
    bb = mb.tensor("conv_fp16/bias", FLOAT32, F16_BIAS.shape)
    y1 = mb.tensor("conv_fp16", FLOAT32, [1, 5, 5, 3])
    mb.op("DEQUANTIZE", [w16], [w])
    mb.op("DEQUANTIZE", [b16], [bb])
    mb.op("CONV_2D", [x, w, bb], [y1], conv_options())
    # 2. sparse float32 filter behind DENSIFY
    spec, stored = csr_last_axis(SPARSE_FILTER)
    ws = mb.tensor("conv_sparse/filter_sparse", FLOAT32, SPARSE_FILTER.shape, stored.tobytes(), sparsity=spec)
    wd = mb.tensor("conv_sparse/filter", FLOAT32, SPARSE_FILTER.shape)
    bs = mb.tensor("conv_sparse/bias", FLOAT32, SPARSE_BIAS.shape, SPARSE_BIAS.tobytes())
    y2 = mb.tensor("conv_sparse", FLOAT32, [1, 5, 5, 4])
    mb.op("DENSIFY", [ws], [wd])
    mb.op("CONV_2D", [y1, wd, bs], [y2], conv_options())
    # 3. sparse fp16 filter behind DENSIFY then DEQUANTIZE, and no bias
    spec16, stored16 = csr_last_axis(SPARSE_F16_FILTER)
    ws16 = mb.tensor("conv_sparse_fp16/filter_sparse", FLOAT16, SPARSE_F16_FILTER.shape, stored16.tobytes(),
                     sparsity=spec16)
    wd16 = mb.tensor("conv_sparse_fp16/filter_dense_f16", FLOAT16, SPARSE_F16_FILTER.shape)
    wf = mb.tensor("conv_sparse_fp16/filter", FLOAT32, SPARSE_F16_FILTER.shape)
    y3 = mb.tensor("conv_sparse_fp16", FLOAT32, [1, 5, 5, 2])
    mb.op("DENSIFY", [ws16], [wd16])
    mb.op("DEQUANTIZE", [wd16], [wf])
    if custom_op:  # LiteRT's CONV_2D insists on a bias; the model that never runs goes without
        mb.op("CONV_2D", [y2, wf, -1], [y3], conv_options())  # -1: the optional input is absent
    else:
        b3 = mb.tensor("conv_sparse_fp16/bias", FLOAT32, SPARSE_F16_BIAS.shape, SPARSE_F16_BIAS.tobytes())
        mb.op("CONV_2D", [y2, wf, b3], [y3], conv_options())
    # 4. int8 per-channel convolution
    q3 = mb.tensor("quantize", INT8, [1, 5, 5, 2], quant=Q3)
    mb.op("QUANTIZE", [y3], [q3])
    wq = mb.tensor("conv_int8/filter", INT8, I8_FILTER.shape, I8_FILTER.tobytes(),
                   quant=dict(scale=I8_SCALES, zero_point=[0, 0, 0], axis=0))
    bq = mb.tensor("conv_int8/bias", INT32, I8_BIAS.shape, I8_BIAS.tobytes(),
                   quant=dict(scale=[Q3["scale"][0] * s for s in I8_SCALES], zero_point=[0, 0, 0], axis=0))
    q4 = mb.tensor("conv_int8", INT8, [1, 5, 5, 3], quant=dict(scale=[0.1], zero_point=[2]))
    mb.op("CONV_2D", [q3, wq, bq], [q4], conv_options())
    out = mb.tensor("output", FLOAT32, [1, 5, 5, 3])
    mb.op("DEQUANTIZE", [q4], [out])
    # 5. uint8 per-tensor convolution
    u1 = mb.tensor("quantize_u8", UINT8, [1, 5, 5, 3], quant=U8_IN)
    mb.op("QUANTIZE", [y1], [u1])
    wu = mb.tensor("conv_uint8/filter", UINT8, U8_FILTER.shape, U8_FILTER.tobytes(), quant=U8_W)
    bu = mb.tensor("conv_uint8/bias", INT32, U8_BIAS.shape, U8_BIAS.tobytes(),
                   quant=dict(scale=[U8_IN["scale"][0] * U8_W["scale"][0]], zero_point=[0]))
    u2 = mb.tensor("conv_uint8", UINT8, [1, 5, 5, 2], quant=dict(scale=[0.1], zero_point=[100]))
    mb.op("CONV_2D", [u1, wu, bu], [u2], conv_options())
    # 6. depthwise, 2 input channels, depth multiplier 2
    wdw = mb.tensor("dw/filter", FLOAT32, DW_FILTER.shape, DW_FILTER.tobytes())
    bdw = mb.tensor("dw/bias", FLOAT32, DW_BIAS.shape, DW_BIAS.tobytes())
    y5 = mb.tensor("dw", FLOAT32, [1, 5, 5, 4])
    mb.op("DEPTHWISE_CONV_2D", [y3, wdw, bdw], [y5],
          ("DepthwiseConv2DOptions", dict(Padding=0, StrideW=1, StrideH=1, DepthMultiplier=2)))  # 0: SAME
    # unused constants: packed INT4 and BFLOAT16
    mb.tensor("int4_const", INT4, INT4_VALUES.shape, pack_int4(INT4_VALUES), quant=dict(scale=[0.5], zero_point=[0]))
    mb.tensor("bf16_const", BFLOAT16, BF16_BITS.shape, BF16_BITS.tobytes())
    if custom_op:
        c = mb.tensor("custom_out", FLOAT32, [1, 5, 5, 3])
        mb.op("CUSTOM", [out], [c], custom_code="LitelensTestOp", custom_options=b"\x01\x02")
        mb.io([x], [c, u2, y5])
    else:
        mb.io([x], [out, u2, y5])
    return mb.build()


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("models") / "convs.tflite")
    with open(path, "wb") as f:
        f.write(build_conv_model())
    return path


@pytest.fixture(scope="module")
def custom_model(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("models") / "convs_custom.tflite")
    with open(path, "wb") as f:
        f.write(build_conv_model(custom_op=True))
    return path


def interpreter(path: str, preserve: bool = True):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    return Interpreter(model_path=path, experimental_preserve_all_tensors=preserve,
                       experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)


def run_zeros(it):
    it.allocate_tensors()
    for d in it.get_input_details():
        it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    it.invoke()


def by_name(model, name):
    """The one layer whose own name is `name` (exact selection also matches input tensor names)."""
    (layer,) = [layer for layer in model.layers(name=name, exact=True) if layer.name == name]
    return layer


def assert_same(ours: np.ndarray, want: np.ndarray, what: str = ""):
    assert ours.dtype == want.dtype, f"{what}: dtype {ours.dtype} != {want.dtype}"
    assert ours.shape == want.shape, f"{what}: shape {ours.shape} != {want.shape}"
    assert np.array_equal(ours, want, equal_nan=ours.dtype.kind == "f"), f"{what}: values differ"


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_conv2d_params_ground_truth(conv_model, name):
    weights, biases = litelens.conv2d_params(conv_model, name)
    want_w, want_b = EXPECTED[name]
    assert_same(weights, want_w, f"{name} weights")
    if want_b is None:
        assert biases is None
    else:
        assert_same(biases, want_b, f"{name} biases")


def test_conv2d_params_first_conv_and_sources(conv_model):
    data = open(conv_model, "rb").read()
    for source in (conv_model, pathlib.Path(conv_model), data, bytearray(data), memoryview(data),
                   litelens.open(conv_model)):
        weights, biases = litelens.conv2d_params(source)
        assert_same(weights, EXPECTED["conv_fp16"][0], "first conv")
        assert_same(biases, EXPECTED["conv_fp16"][1], "first conv bias")


def test_conv2d_params_errors(conv_model):
    with pytest.raises(KeyError, match="closest names: conv_int8"):
        litelens.conv2d_params(conv_model, "conv_imt8")
    with pytest.raises(KeyError, match="matches 2 CONV_2D layers"):
        litelens.conv2d_params(conv_model, "conv_*8")  # conv_int8 and conv_uint8
    with pytest.raises(KeyError):
        litelens.conv2d_params(conv_model, "dw")  # a DEPTHWISE_CONV_2D is not a CONV_2D


def test_conv2d_params_custom_op_model(custom_model):
    """The interpreter cannot even allocate this model; litelens answers all the same."""
    it = interpreter(custom_model)
    with pytest.raises(RuntimeError, match="LitelensTestOp|failed to prepare"):
        it.allocate_tensors()
    for name, (want_w, want_b) in EXPECTED_CUSTOM.items():
        weights, biases = litelens.conv2d_params(custom_model, name)
        assert_same(weights, want_w, name)
        if want_b is None:
            assert biases is None
        else:
            assert_same(biases, want_b, name)
    with litelens.open(custom_model) as m:
        nobias = by_name(m, "conv_sparse_fp16")
        assert set(nobias.params) == {"input", "filter"}  # an absent optional input is an absent role
        (layer,) = m.layers(op="LitelensTestOp")
        assert (layer.op, layer.custom_code) == ("CUSTOM", "LitelensTestOp")
        assert m.operators()[layer.index].custom_options == b"\x01\x02"


def test_dequantize_and_densify_outputs_match_interpreter(conv_model):
    """Every DEQUANTIZE/DENSIFY output after invoke() equals litelens's decoded input."""
    it = interpreter(conv_model)
    run_zeros(it)
    checked = 0
    with litelens.open(conv_model) as m:
        for layer in m.layers(op=["DEQUANTIZE", "DENSIFY"]):
            p = layer.params["input"]
            if p.is_runtime:
                continue  # DEQUANTIZE of an activation
            out = m.operators()[layer.index].outputs[0]
            got = it.get_tensor(out)
            ours = p.dequantize() if layer.op == "DEQUANTIZE" else p.numpy()
            assert_same(ours, got, f"{layer.key} {layer.name}")
            checked += 1
        # and what each conv consumes is what the interpreter fed it
        for layer in m.layers(op=["CONV_2D", "DEPTHWISE_CONV_2D"]):
            for role in ("filter", "bias"):
                if role in layer.params:
                    p = layer.params[role]
                    assert_same(p.consumed(), it.get_tensor(p.tensor), f"{layer.key}/{role}")

    assert checked == 5


def test_quantization_and_dtypes(conv_model):
    with litelens.open(conv_model) as m:
        conv = by_name(m, "conv_int8")
        w = conv.params["filter"]
        assert (w.dtype, w.layout, w.shape, w.via) == ("int8", "OHWI", (3, 1, 1, 2), [])
        q = w.quantization
        assert q.scheme == "affine" and q.axis == 0 and q.is_per_axis
        assert q.scales.dtype == np.float32 and q.zero_points.dtype == np.int64
        np.testing.assert_array_equal(q.scales, np.float32(I8_SCALES))
        np.testing.assert_array_equal(q.zero_points, [0, 0, 0])
        want = I8_FILTER.astype(np.float32) * np.float32(I8_SCALES)[:, None, None, None]
        np.testing.assert_allclose(w.dequantize(), want, rtol=1e-6)
        b = conv.params["bias"]
        assert b.dequantize().dtype == np.float32
        u8 = by_name(m, "conv_uint8")
        uq = u8.params["filter"]
        np.testing.assert_allclose(uq.dequantize(), (U8_FILTER.astype(np.float32) - 120) * np.float32(0.02),
                                   rtol=1e-6)
        assert uq.quantization.axis == 0 and not uq.quantization.is_per_axis

        t4 = m.tensor("int4_const")
        assert t4.dtype == "int4" and t4.nbytes == 4
        v4 = t4.numpy()
        assert_same(v4, INT4_VALUES, "int4 unpacked")
        assert v4.flags.writeable and v4.flags.owndata is False  # a fresh array (not the file)
        np.testing.assert_array_equal(t4.dequantize(), INT4_VALUES * np.float32(0.5))
        assert t4.raw().tobytes() == pack_int4(INT4_VALUES)

        bf = m.tensor("bf16_const")
        assert bf.dtype == "bfloat16"
        assert_same(bf.numpy(), BF16_BITS, "bfloat16 raw bits")
        assert not bf.numpy().flags.writeable  # zero-copy bits
        assert_same(bf.dequantize(), np.array([1.0, -2.0, 0.333984375], np.float32), "bfloat16 widened")
        assert_same(bf.values("widened"), bf.dequantize(), "widened")


def test_layouts(conv_model):
    with litelens.open(conv_model) as m:
        (dw,) = m.layers(op="DEPTHWISE_CONV_2D")
        f = dw.params["filter"]
        assert f.layout and f.layout_for("keras") and f.layout_for("torch")
        keras = f.to_layout("keras")
        assert_same(keras, DW_FILTER.reshape(3, 3, 2, 2), "depthwise keras H,W,C,M")
        torch = f.to_layout("torch")
        assert_same(torch, DW_FILTER.transpose(3, 0, 1, 2).reshape(4, 1, 3, 3), "depthwise torch")
        assert_same(f.to_layout("tflite"), DW_FILTER, "tflite unchanged")
        conv = by_name(m, "conv_fp16")
        c = conv.params["filter"]
        assert (c.layout_for("keras"), c.layout_for("torch")) == ("HWIO", "OIHW")
        assert_same(c.to_layout("keras"), F16_FILTER.transpose(1, 2, 3, 0), "conv keras stored fp16")
        assert_same(c.to_layout("torch", dequantize=True), F16_FILTER.astype(np.float32).transpose(0, 3, 1, 2),
                     "conv torch float32")
        assert conv.params["bias"].to_layout("torch").shape == (3,)
        with pytest.raises(ValueError, match="unknown layout"):
            c.to_layout("onnx")
