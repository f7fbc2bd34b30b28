"""Layer parameters of models made by TensorFlow's converter (scripts/make-fixtures.py, run by
`make fixtures`) against the Keras weights they were made from.

* float32: the values are the Keras weights, bit for bit, once in TFLite's layout.
* fp16: the stored values are the Keras weights rounded to float16 (NumPy's rounding), bit for
  bit; every weight comes through DEQUANTIZE.
* dynamic range, full-integer int8 and 16x8: each dequantized weight lies within half a
  quantization step of its Keras value (per channel, along quantized_dimension); each bias within
  its own scale (int32 biases for int8, int64 for 16x8).
* Layouts: `--layout keras` gives the Keras kernel layout (HWIO; depthwise H,W,C,M; transposed
  conv H,W,O,I; Dense (I,O); Conv3D D,H,W,I,O; Conv3DTranspose D,H,W,O,I) and `--layout torch`
  the PyTorch one (OIHW; C*M,1,H,W; I,O,H,W; (O,I); O,I,D,H,W; I,O,D,H,W), both computed here
  from the Keras kernels.
* The fused LSTM's 12 weight roles are the Keras kernel's gate slices (i, f, c, o).
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import layer_oracles as lo  # noqa: E402

# Keras layer -> (selection, TFLite op, Keras kernel key, weight role)
CONVNET = {
    "conv_bias": (["--op", "CONV_2D", "--name", "conv_bias"], "CONV_2D", "kernel", "filter"),
    "dw": (["--op", "DEPTHWISE_CONV_2D", "--name", "*/dw/*"], "DEPTHWISE_CONV_2D", "depthwise_kernel", "filter"),
    "conv_nobias": (["--op", "CONV_2D", "--name", "conv_nobias"], "CONV_2D", "kernel", "filter"),
    "deconv": (["--op", "TRANSPOSE_CONV"], "TRANSPOSE_CONV", "kernel", "filter"),
    # The Dense layer's output is the model output, named after the signature: it is found by
    # its weight tensor's name.
    "dense": (["--op", "FULLY_CONNECTED", "--name", "dense"], "FULLY_CONNECTED", "kernel", "weights"),
}
CONV3D = {"conv3d": (["--op", "CONV_3D"], "CONV_3D", "kernel", "filter"),
          "deconv3d": (["--op", "CONV_3D_TRANSPOSE"], "CONV_3D_TRANSPOSE", "kernel", "filter")}
# The converter leaves 3-D biases to a separate ADD, found by its bias tensor's name (a glob).
BIAS_ADD = {"conv3d": ["--op", "ADD", "--name", "conv3d/conv3d/BiasAdd*"],
            "deconv3d": ["--op", "ADD", "--name", "conv3d/deconv3d/BiasAdd*"]}
QUANT_AXIS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "TRANSPOSE_CONV": 0, "FULLY_CONNECTED": 0}
LABELS = {  # op -> (tflite, keras, torch) layout labels
    "CONV_2D": ("OHWI", "HWIO", "OIHW"),
    "DEPTHWISE_CONV_2D": ("1HWC", "HWCM", "O1HW"),
    "TRANSPOSE_CONV": ("OHWI", "HWOI", "IOHW"),
    "FULLY_CONNECTED": ("OI", "IO", "OI"),
    "CONV_3D": ("DHWIO", "DHWIO", "OIDHW"),
    "CONV_3D_TRANSPOSE": ("DHWOI", "DHWOI", "IODHW"),
}


def _fixtures(arch: str) -> list[str]:
    return [m["file"] for m in lo.fixture_manifest()["models"] if m["arch"] == arch]


def _mode(fixture: str) -> str:
    return fixture.rsplit("_", 1)[1][:-len(".tflite")]


def test_fixture_set_complete():
    """The converter made every model this suite expects."""
    have = {m["file"] for m in lo.fixture_manifest()["models"]}
    want = {f"convnet_{m}.tflite" for m in ("float32", "fp16", "dynamic", "int8", "int16x8")}
    want |= {f"lstm_{m}.tflite" for m in ("float32", "fp16", "dynamic", "int8")}
    want |= {"conv3d_float32.tflite", "conv3d_fp16.tflite"}
    assert want <= have, f"missing fixtures: {sorted(want - have)}"
    for f in want:
        lo.fixture_path(f)


def _layer(model, selection):
    found = lo.layers_json(model, "--no-values", *selection)
    assert len(found) == 1, f"{selection} matched {[l['key'] for l in found]}"
    return found[0]


def _export(model, tmp_path, selection, *args, name="x.npz"):
    arrays, manifest = lo.extract_npz(model, tmp_path, *selection, *args, name=name)
    return arrays, manifest["arrays"]


def _within_half_step(got, want, scale, axis, what):
    """|got - want| <= scale[c] / 2 along `axis` (a float32 rounding of slack)."""
    scale = np.asarray(scale, np.float64)
    shape = [1] * got.ndim
    if scale.size > 1:
        shape[axis] = scale.size
    bound = (scale / 2).reshape(shape) * (1 + 1e-5) + 1e-12
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    bad = err > bound
    assert not bad.any(), f"{what}: {int(bad.sum())} values off by more than half a step; " \
                          f"worst error/step {float((err / (2 * bound)).max()):.3f}"


def _within_scale(got, want, scale, what):
    scale = np.asarray(scale, np.float64)
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    assert (err <= scale * (1 + 1e-6)).all(), f"{what}: worst error/scale {float((err / scale).max()):.3f}"


@pytest.mark.parametrize("fixture", _fixtures("convnet") + _fixtures("conv3d"))
def test_weights_against_keras(fixture, tmp_path):
    arch = fixture.split("_")[0]
    mode = _mode(fixture)
    model = lo.fixture_path(fixture)
    kw = lo.keras_weights(arch)
    table = CONVNET if arch == "convnet" else CONV3D
    for lname, (sel, op, kname, role) in table.items():
        layer = _layer(model, sel)
        assert layer["op"] == op
        p = layer["params"][role]
        kernel = kw[f"{lname}/{kname}"]
        want = lo.keras_to_tflite(op, kernel)
        stored, m_stored = _export(model, tmp_path, sel, name=f"{lname}_s.npz")
        deq, m_deq = _export(model, tmp_path, sel, "--dequantize", name=f"{lname}_d.npz")
        key = f"{layer['key']}/{role}"
        what = f"{fixture} {lname} {role}"
        assert p["shape"] == list(want.shape), what
        assert p["layout"] == LABELS[op][0] and m_stored[key]["layout"] == LABELS[op][0]
        q = p["quantization"]
        if mode == "float32":
            assert p["via"] == [] and p["dtype"] == "float32" and q is None
            lo.assert_bits_equal(stored[key], want, what)
        elif mode == "fp16":
            assert p["via"] == ["DEQUANTIZE"] and p["dtype"] == "float16", what
            lo.assert_bits_equal(stored[key], want.astype(np.float16), what)
            lo.assert_bits_equal(deq[key], want.astype(np.float16).astype(np.float32), what)
        else:
            assert p["via"] == [] and p["dtype"] == "int8", what
            assert stored[key].dtype == np.int8
            axis = q["quantized_dimension"]
            assert axis == QUANT_AXIS[op], f"{what}: quantized along {axis}"
            assert len(q["scale"]) == want.shape[axis], f"{what}: per-channel scales expected"
            assert set(q["zero_point"]) == {0}
            assert np.abs(stored[key]).max() <= 127, "symmetric int8 weights use [-127, 127]"
            _within_half_step(deq[key], want, q["scale"], axis, what)
        # Bias: Conv3D's is a separate ADD; conv_nobias gets zeros from the converter.
        bias_layer, bias_role = layer, "bias"
        if lname in BIAS_ADD:
            assert "bias" not in layer["params"]
            bias_layer = _layer(model, BIAS_ADD[lname])
            bias_role = "y"
        bp = bias_layer["params"].get(bias_role)
        assert bp is not None, f"{what}: no bias"
        bkey = f"{bias_layer['key']}/{bias_role}"
        if bias_layer is not layer:
            bstored, _ = _export(model, tmp_path, BIAS_ADD[lname], name="add_s.npz")
            bdeq, _ = _export(model, tmp_path, BIAS_ADD[lname], "--dequantize", name="add_d.npz")
        else:
            bstored, bdeq = stored, deq
        bwant = kw.get(f"{lname}/bias", np.zeros(bp["shape"], np.float32))
        bwhat = f"{fixture} {lname} bias"
        if mode in ("float32", "dynamic"):
            lo.assert_bits_equal(bstored[bkey].reshape(-1), bwant, bwhat)
        elif mode == "fp16":
            lo.assert_bits_equal(bdeq[bkey].reshape(-1), bwant.astype(np.float16).astype(np.float32), bwhat)
        else:
            want_dtype = {"int8": "int32", "int16x8": "int64"}[mode]
            assert bp["dtype"] == want_dtype and str(bstored[bkey].dtype) == want_dtype, bwhat
            bq = bp["quantization"]
            assert len(bq["scale"]) == bwant.size and set(bq["zero_point"]) == {0}
            _within_scale(bdeq[bkey], bwant, bq["scale"], bwhat)
            # The bias scale is the input scale times the weight scale, channel by channel.
            ratio = np.asarray(bq["scale"], np.float64) / np.asarray(q["scale"], np.float64)
            assert np.allclose(ratio, ratio[0], rtol=1e-5), f"{bwhat}: scale / weight scale not constant"


@pytest.mark.parametrize("fixture", _fixtures("convnet") + _fixtures("conv3d"))
def test_layouts_against_keras(fixture, tmp_path):
    """--layout keras gives the Keras kernel, --layout torch the PyTorch weight (both computed
    here from the Keras kernel); the manifest labels and quantized axes follow."""
    arch = fixture.split("_")[0]
    mode = _mode(fixture)
    model = lo.fixture_path(fixture)
    kw = lo.keras_weights(arch)
    table = CONVNET if arch == "convnet" else CONV3D
    for lname, (sel, op, kname, role) in table.items():
        layer = _layer(model, sel)
        key = f"{layer['key']}/{role}"
        kernel = kw[f"{lname}/{kname}"]
        tfl, m_tfl = _export(model, tmp_path, sel, "--dequantize", name="t.npz")
        ker, m_ker = _export(model, tmp_path, sel, "--dequantize", "--layout", "keras", name="k.npz")
        tor, m_tor = _export(model, tmp_path, sel, "--dequantize", "--layout", "torch", name="p.npz")
        what = f"{fixture} {lname}"
        assert ker[key].shape == kernel.shape, f"{what}: keras shape {ker[key].shape} != {kernel.shape}"
        # The same values, moved: keras = the inverse of keras_to_tflite applied to the tflite export.
        back = {"CONV_2D": lambda a: a.transpose(1, 2, 3, 0),
                "DEPTHWISE_CONV_2D": lambda a: a.reshape(kernel.shape),
                "TRANSPOSE_CONV": lambda a: a.transpose(1, 2, 0, 3),
                "FULLY_CONNECTED": lambda a: a.T,
                "CONV_3D": lambda a: a, "CONV_3D_TRANSPOSE": lambda a: a}[op](tfl[key])
        lo.assert_bits_equal(ker[key], np.ascontiguousarray(back), f"{what} keras layout")
        lo.assert_bits_equal(tor[key], np.ascontiguousarray(lo.keras_to_torch(op, ker[key])), f"{what} torch layout")
        if mode == "float32":
            lo.assert_bits_equal(ker[key], kernel, f"{what}: keras layout = the Keras kernel")
            lo.assert_bits_equal(tor[key], np.ascontiguousarray(lo.keras_to_torch(op, kernel)), f"{what}: torch")
        elif mode == "fp16":
            lo.assert_bits_equal(ker[key], kernel.astype(np.float16).astype(np.float32), f"{what}: keras fp16")
        labels = (m_tfl[key]["layout"], m_ker[key]["layout"], m_tor[key]["layout"])
        assert labels == LABELS[op], f"{what}: layout labels {labels}"
        assert m_ker[key]["shape"] == list(kernel.shape) and m_tor[key]["shape"] == list(tor[key].shape)
        q = m_tfl[key]["quantization"]
        if q is not None and len(q["scale"]) > 1:
            # The scales run along the output channels, wherever the layout puts them.
            k_axis = {"CONV_2D": 3, "TRANSPOSE_CONV": 2, "FULLY_CONNECTED": 1}.get(op)
            if k_axis is not None:
                assert m_ker[key]["quantization"]["quantized_dimension"] == k_axis
                assert ker[key].shape[k_axis] == len(q["scale"])
            else:  # depthwise H,W,C,M: channel c*M+m, the scales run along axes 2 and 3 together
                kq = m_ker[key]["quantization"]
                assert kq.get("quantized_dimensions") == [2, 3], \
                    f"{what}: keras depthwise scales run along axes 2 and 3, manifest says " \
                    f"{kq.get('quantized_dimension')} / {kq.get('quantized_dimensions')}"
                assert ker[key].shape[2] * ker[key].shape[3] == len(q["scale"])
            t_axis = m_tor[key]["quantization"]["quantized_dimension"]
            assert tor[key].shape[t_axis] == len(q["scale"]) and t_axis == (1 if op == "TRANSPOSE_CONV" else 0)


GATES = ("input", "forget", "cell", "output")


@pytest.mark.parametrize("fixture", _fixtures("lstm"))
def test_lstm_roles_against_keras(fixture, tmp_path):
    """UNIDIRECTIONAL_SEQUENCE_LSTM: input_to_<gate>_weights = kernel[:, g*u:(g+1)*u].T,
    recurrent_to_<gate>_weights likewise from recurrent_kernel, <gate>_gate_bias = bias slice."""
    mode = _mode(fixture)
    model = lo.fixture_path(fixture)
    kw = lo.keras_weights("lstm")
    sel = ["--op", "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    layer = _layer(model, sel)
    units = kw["lstm/recurrent_kernel"].shape[0]
    assert layer["options"]["time_major"] is False
    params = layer["params"]
    present = {r for r in params}
    assert {"input", "output_state", "cell_state"} <= present
    # The states are variables, or (fp16) zero constants behind DEQUANTIZE: never weights.
    state_arrays, _ = _export(model, tmp_path, sel, "--dequantize", name="state.npz")
    for state in ("output_state", "cell_state"):
        key = f"{layer['key']}/{state}"
        if params[state]["runtime"]:
            assert key not in state_arrays
        else:
            assert not state_arrays[key].any(), f"{fixture}: {state} is a non-zero constant"
    for absent in ("cell_to_input_weights", "projection_weights", "input_layer_norm_coefficients"):
        assert absent not in present, f"optional {absent} should be absent"
    stored, _ = _export(model, tmp_path, sel, name="s.npz")
    deq, _ = _export(model, tmp_path, sel, "--dequantize", name="d.npz")
    n = 0
    for g, gate in enumerate(GATES):
        cols = slice(g * units, (g + 1) * units)
        for role, want in ((f"input_to_{gate}_weights", kw["lstm/kernel"][:, cols].T),
                           (f"recurrent_to_{gate}_weights", kw["lstm/recurrent_kernel"][:, cols].T),
                           (f"{gate}_gate_bias", kw["lstm/bias"][cols])):
            want = np.ascontiguousarray(want)
            p = params[role]
            key = f"{layer['key']}/{role}"
            what = f"{fixture} {role}"
            assert p["shape"] == list(want.shape), what
            if mode == "float32":
                lo.assert_bits_equal(stored[key], want, what)
            elif mode == "fp16":
                assert p["via"] == ["DEQUANTIZE"]
                lo.assert_bits_equal(stored[key], want.astype(np.float16), what)
            elif role.endswith("bias"):
                if mode == "dynamic":
                    lo.assert_bits_equal(stored[key], want, what)
                else:
                    assert p["dtype"] == "int32", what
                    _within_scale(deq[key], want, p["quantization"]["scale"], what)
            else:
                assert p["dtype"] == "int8", what
                _within_half_step(deq[key], want, p["quantization"]["scale"], p["quantization"]["quantized_dimension"],
                                  what)
            n += 1
    assert n == 12
