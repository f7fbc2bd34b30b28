"""Model.patch(), patch_bytes(), patch_from_export() and litelens.diff() of the Python package.

The model is the hand-built convolution chain of test_package_models.py (fp16 behind DEQUANTIZE,
sparse behind DENSIFY, int8 per-channel, uint8, depthwise, unused INT4 and BFLOAT16 constants),
whose every value is known. What is checked:

* new values read back exactly, and every other constant keeps its stored bytes;
* the patched model runs in the LiteRT interpreter, which sees the new values;
* float32 values for an fp16 filter behind DEQUANTIZE are narrowed to float16;
* quantize=True quantizes float32 values for the int8 per-channel filter the TFLite way
  (q = round(x / scale) + zero_point, clamped), with the tensor's own or new parameters;
* diff() of the model and its patched copy reports exactly the changed parameter;
* errors: PatchError (ValueError) with its kind, UnknownSelectorError (KeyError), Error.

Setup: pip install . (the package), plus numpy, tflite, flatbuffers, ai-edge-litert, pytest.
"""
from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest

import litelens
from locations import MODEL_DIR
from test_package_models import (
    BF16_BITS,
    F16_FILTER,
    I8_FILTER,
    I8_SCALES,
    SPARSE_BIAS,
    build_conv_model,
    by_name,
    interpreter,
    run_zeros,
)

RNG = np.random.default_rng(7)


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("patch") / "convs.tflite")
    with open(path, "wb") as f:
        f.write(build_conv_model())
    return path


def constants(model: litelens.Model) -> dict[tuple[int, int], bytes]:
    """(subgraph, tensor) -> stored bytes of every constant."""
    out = {}
    for sg in model.subgraphs:
        for t in sg.tensors():
            if t.is_constant:
                out[(sg.index, t.index)] = t.raw().tobytes()
    return out


def assert_only_changed(before: litelens.Model, after: litelens.Model, changed: set[tuple[int, int]]):
    """Constants outside `changed` keep their exact bytes; those in it differ."""
    a, b = constants(before), constants(after)
    assert a.keys() == b.keys()
    for key in a:
        if key in changed:
            assert a[key] != b[key], f"tensor {key} should have changed"
        else:
            assert a[key] == b[key], f"tensor {key} changed but was not patched"
    assert after.description == before.description


def changed_params(d: litelens.ModelDiff) -> list[tuple[str, litelens.ParamDiff]]:
    return [(layer.a.name, p) for layer in d for p in layer.params if not p.identical]


# --------------------------------------------------------------------------- values


def test_values_read_back_and_everything_else_is_kept(conv_model, tmp_path):
    src = litelens.open(conv_model)
    bias = src.tensor("conv_sparse/bias")
    dw = by_name(src, "dw").params["filter"]
    new_bias = (SPARSE_BIAS * -3 + 1).astype(np.float32)
    new_dw = RNG.normal(0, 1, dw.shape).astype(np.float32)
    dw_selector = f"{by_name(src, 'dw').key}/filter"
    out = tmp_path / "patched.tflite"
    report = src.patch(out, {"conv_sparse/bias": new_bias, dw_selector: new_dw})

    assert isinstance(report, litelens.PatchReport)
    assert [t.selector for t in report.tensors] == ["conv_sparse/bias", dw_selector]
    assert [t.tensor for t in report.tensors] == [bias.index, dw.stored_tensor]
    assert all(t.values and not t.unchanged and t.conversion == "copied" for t in report.tensors)
    assert report.tensors[0].bytes == new_bias.nbytes
    assert report.output_size == os.path.getsize(out) and report.warnings == []

    patched = litelens.open(out)
    got = patched.tensor("conv_sparse/bias").numpy()
    assert got.dtype == np.float32 and np.array_equal(got, new_bias)
    assert np.array_equal(by_name(patched, "dw").params["filter"].numpy(), new_dw)
    assert_only_changed(src, patched, {(0, bias.index), (0, dw.stored_tensor)})
    # the input was only read
    assert np.array_equal(litelens.open(conv_model).tensor("conv_sparse/bias").numpy(), SPARSE_BIAS)


def test_patch_bytes_and_module_function_agree_with_patch(conv_model, tmp_path):
    model = litelens.open(conv_model)
    selector = f"#{model.tensor('conv_sparse/bias').index}"          # "#N": tensor N of subgraph 0
    values = {selector: np.full(SPARSE_BIAS.shape, 0.5, np.float32)}
    model.patch(tmp_path / "a.tflite", values)
    data = model.patch_bytes(values)
    assert isinstance(data, bytes) and data == (tmp_path / "a.tflite").read_bytes()
    report = litelens.patch(conv_model, tmp_path / "b.tflite", values)  # a path, opened and closed
    assert report.tensors[0].selector == selector
    assert (tmp_path / "b.tflite").read_bytes() == data
    assert np.array_equal(litelens.open(data).tensor("conv_sparse/bias").numpy(), values[selector])


def test_non_contiguous_and_big_endian_values(conv_model, tmp_path):
    model = litelens.open(conv_model)
    dw = by_name(model, "dw").params["filter"]
    want = RNG.normal(0, 1, dw.shape).astype(np.float32)
    fortran = np.asfortranarray(want)                          # same values, other memory order
    strided = np.repeat(want, 2, axis=-1)[..., ::2]            # a non-contiguous view
    swapped = want.astype(">f4")                               # big-endian
    assert not fortran.flags.c_contiguous and not strided.flags.c_contiguous
    for values in (fortran, strided, swapped):
        data = model.patch_bytes({"dw/filter": values})
        assert np.array_equal(by_name(litelens.open(data), "dw").params["filter"].numpy(), want)


def test_values_in_torch_and_keras_layout(conv_model):
    model = litelens.open(conv_model)
    layer = by_name(model, "dw")
    p = layer.params["filter"]
    stored = RNG.normal(0, 1, p.shape).astype(np.float32)      # 1HWC, C*M = 4
    base = litelens.open(model.patch_bytes({f"{layer.key}/filter": stored}))
    torch = by_name(base, "dw").params["filter"].to_layout("torch")
    keras = by_name(base, "dw").params["filter"].to_layout("keras")
    assert torch.shape == (4, 1, 3, 3) and keras.shape == (3, 3, 2, 2)
    for layout, values in (("torch", torch), ("keras", keras)):
        data = model.patch_bytes({f"{layer.key}/filter": values}, layout=layout)
        assert np.array_equal(by_name(litelens.open(data), "dw").params["filter"].numpy(), stored), layout


def test_unchanged_values_are_reported_and_keep_the_bytes(conv_model, tmp_path):
    model = litelens.open(conv_model)
    report = model.patch(tmp_path / "same.tflite", {"conv_sparse/bias": SPARSE_BIAS})
    assert [t.unchanged for t in report.tensors] == [True]
    assert constants(litelens.open(tmp_path / "same.tflite")) == constants(model)
    with pytest.raises(litelens.PatchError):  # the same values are still checked
        model.patch_bytes({"conv_sparse/bias": SPARSE_BIAS[:2]})


# --------------------------------------------------------------------------- fp16, bf16, int4


def test_fp16_filter_behind_dequantize_is_narrowed_and_runs(conv_model, tmp_path):
    model = litelens.open(conv_model)
    conv = by_name(model, "conv_fp16")
    f = conv.params["filter"]
    assert (f.dtype, f.via) == ("float16", ["DEQUANTIZE"])
    new = RNG.normal(0, 0.5, F16_FILTER.shape).astype(np.float32)
    narrowed = new.astype(np.float16)                          # round to nearest even
    assert not np.array_equal(narrowed.astype(np.float32), new)  # so narrowing really happens
    out = tmp_path / "fp16.tflite"
    # the selector names the float32 DEQUANTIZE output; the fp16 constant behind it changes
    report = model.patch(out, {"conv_fp16/filter": new})
    (t,) = report.tensors
    assert t.tensor == f.stored_tensor and t.name == "conv_fp16/filter_f16"
    assert t.via == ["DEQUANTIZE"] and "float16" in t.conversion
    assert t.bytes == narrowed.nbytes

    patched = litelens.open(out)
    p = by_name(patched, "conv_fp16").params["filter"]
    assert p.dtype == "float16" and p.numpy().dtype == np.float16
    assert np.array_equal(p.numpy(), narrowed)
    assert_only_changed(model, patched, {(0, f.stored_tensor)})

    # LiteRT loads it, and its DEQUANTIZE hands the convolution the new values
    it = interpreter(str(out))
    run_zeros(it)
    assert np.array_equal(it.get_tensor(p.tensor), narrowed.astype(np.float32))
    assert np.array_equal(it.get_tensor(p.stored_tensor), narrowed)


def test_patched_model_output_follows_the_new_weights(conv_model, tmp_path):
    """A depthwise filter of zeros and a bias b make the depthwise output b everywhere."""
    model = litelens.open(conv_model)
    dw = by_name(model, "dw")
    bias = np.array([0.5, -1.25, 2.0, 3.5], np.float32)
    out = tmp_path / "dw.tflite"
    model.patch(out, {f"{dw.key}/filter": np.zeros(dw.params["filter"].shape, np.float32),
                      f"{dw.key}/bias": bias})
    it = interpreter(str(out), preserve=False)
    run_zeros(it)
    (y,) = [d for d in it.get_output_details() if d["name"] == "dw"]
    got = it.get_tensor(y["index"])
    assert got.shape == (1, 5, 5, 4) and np.array_equal(got, np.broadcast_to(bias, got.shape))


def test_bfloat16_and_int4_constants(conv_model):
    model = litelens.open(conv_model)
    bits = np.array([0x4040, 0xBF80, 0x0000], np.uint16)      # 3.0, -1.0, 0.0 as raw bits
    data = model.patch_bytes({"bf16_const": bits})
    assert np.array_equal(litelens.open(data).tensor("bf16_const").numpy(), bits)
    data = model.patch_bytes({"bf16_const": np.array([3.0, -1.0, 0.0], np.float32)})  # narrowed
    assert np.array_equal(litelens.open(data).tensor("bf16_const").numpy(), bits)
    assert not np.array_equal(bits, BF16_BITS)
    int4 = np.array([7, -8, 0, 1, -1, 2, -3], np.int8)
    t = litelens.open(model.patch_bytes({"int4_const": int4})).tensor("int4_const")
    assert t.dtype == "int4" and t.nbytes == 4 and np.array_equal(t.numpy(), int4)
    with pytest.raises(litelens.PatchError) as e:
        model.patch_bytes({"int4_const": np.array([8, 0, 0, 0, 0, 0, 0], np.int8)})
    assert e.value.kind == "value_out_of_range"


# --------------------------------------------------------------------------- quantized


def quantize_ref(x: np.ndarray, scales, zero_points, lo=-128, hi=127) -> np.ndarray:
    """TFLite's per-channel AffineQuantize along axis 0 (float32 division, ties away from 0)."""
    s = np.asarray(scales, np.float32).reshape((-1,) + (1,) * (x.ndim - 1))
    v = (x.astype(np.float32) / s).astype(np.float32)
    r = np.sign(v) * np.floor(np.abs(v).astype(np.float64) + 0.5)
    z = np.asarray(zero_points, np.int64).reshape(s.shape)
    return np.clip(r + z, lo, hi).astype(np.int8)


def test_quantize_int8_per_channel(conv_model, tmp_path):
    model = litelens.open(conv_model)
    f = by_name(model, "conv_int8").params["filter"]
    assert f.dtype == "int8" and f.quantization.is_per_axis
    scales = np.asarray(I8_SCALES, np.float32)
    # float values off the grid by up to 0.4 steps (no ties), and two that clamp
    q = RNG.integers(-120, 120, I8_FILTER.shape)
    x = ((q + RNG.uniform(-0.4, 0.4, q.shape)) * scales.reshape(-1, 1, 1, 1)).astype(np.float32)
    x[0, 0, 0, 0] = 300 * scales[0]
    x[2, 0, 0, 1] = -1000 * scales[2]
    want = quantize_ref(x, scales, [0, 0, 0])
    assert want[0, 0, 0, 0] == 127 and want[2, 0, 0, 1] == -128

    with pytest.raises(litelens.PatchError) as e:       # float32 for int8 needs quantize=True
        model.patch(tmp_path / "no.tflite", {"conv_int8/filter": x})
    assert e.value.kind == "dtype_mismatch" and isinstance(e.value, ValueError)
    assert not (tmp_path / "no.tflite").exists()

    out = tmp_path / "q.tflite"
    report = model.patch(out, {"conv_int8/filter": x}, quantize=True)
    (t,) = report.tensors
    assert t.conversion.startswith("quantized") and t.clamped == 2 and any("clamp" in w for w in report.warnings)
    patched = litelens.open(out)
    p = by_name(patched, "conv_int8").params["filter"]
    assert np.array_equal(p.numpy(), want)
    assert np.array_equal(p.quantization.scales, scales)              # parameters kept
    assert_only_changed(model, patched, {(0, f.stored_tensor)})
    it = interpreter(str(out))
    run_zeros(it)
    assert np.array_equal(it.get_tensor(p.stored_tensor), want)


def test_new_quantization_parameters(conv_model, tmp_path):
    model = litelens.open(conv_model)
    f = by_name(model, "conv_int8").params["filter"]
    new_scales = np.array([0.02, 0.01, 0.005], np.float32)
    spec = {"scale": new_scales, "zero_point": [0, 0, 0], "axis": 0}   # NumPy values are fine
    report = model.patch(tmp_path / "s.tflite", quantization={"conv_int8/filter": spec})
    assert report.tensors[0].quantization and not report.tensors[0].values
    p = by_name(litelens.open(tmp_path / "s.tflite"), "conv_int8").params["filter"]
    assert np.array_equal(p.quantization.scales, new_scales)
    assert np.array_equal(p.numpy(), I8_FILTER)                       # the integers are kept
    # new parameters and quantize=True: the values are quantized with the new scales
    x = (I8_FILTER.astype(np.float32) * 0.5 * new_scales.reshape(-1, 1, 1, 1)).astype(np.float32)
    data = model.patch_bytes({"conv_int8/filter": x}, {"conv_int8/filter": spec}, quantize=True)
    p = by_name(litelens.open(data), "conv_int8").params["filter"]
    assert np.array_equal(p.numpy(), quantize_ref(x, new_scales, [0, 0, 0]))
    # the other accepted forms: another tensor's Quantization, and the CLI's text
    other = model.tensor("conv_int8/bias").quantization
    data = model.patch_bytes(quantization={"conv_int8/filter": other})
    assert np.array_equal(litelens.open(data).tensor("conv_int8/filter").quantization.scales, other.scales)
    data = model.patch_bytes(quantization={"conv_int8/filter": "scale:0.02,0.01,0.005;zp:0;axis:0"})
    assert np.array_equal(litelens.open(data).tensor("conv_int8/filter").quantization.scales, new_scales)
    with pytest.raises(litelens.PatchError) as e:
        model.patch_bytes(quantization={"conv_int8/filter": {"scale": [0.1, 0.2]}})
    assert e.value.kind == "bad_quantization"


# --------------------------------------------------------------------------- exports


def test_patch_from_export_round_trip(conv_model, tmp_path):
    model = litelens.open(conv_model)
    export = tmp_path / "convs.npz"
    model.extract(export, op=["CONV_2D", "DEPTHWISE_CONV_2D"], dequantize=True, layout="torch")
    # unedited: every constant keeps its bytes
    model.patch_from_export(tmp_path / "same.tflite", export)
    assert constants(litelens.open(tmp_path / "same.tflite")) == constants(model)
    # edit one array (torch layout, float32) and write the export back with its manifest
    dw = by_name(model, "dw")
    key = f"{dw.key}/filter"
    arrays = dict(np.load(export))
    edited = arrays[key] * 2
    arrays[key] = edited
    np.savez(tmp_path / "edited.npz", **arrays)
    report = model.patch_from_export(tmp_path / "edited.tflite", tmp_path / "edited.npz")
    changed = [t for t in report.tensors if not t.unchanged]
    assert [t.tensor for t in changed] == [dw.params["filter"].stored_tensor]
    patched = litelens.open(tmp_path / "edited.tflite")
    assert np.array_equal(by_name(patched, "dw").params["filter"].to_layout("torch"), edited)
    assert_only_changed(model, patched, {(0, dw.params["filter"].stored_tensor)})


def test_patch_from_export_of_another_model_is_refused(conv_model, tmp_path):
    model = litelens.open(conv_model)
    blob = model.export_bytes("npz", op="CONV_2D")
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        manifest = z.read("manifest.json").decode()
    key = f"{by_name(model, 'conv_int8').key}/filter"
    manifest = manifest.replace('"conv_int8/filter"', '"another/filter"')
    with zipfile.ZipFile(tmp_path / "other.npz", "w") as z:
        with zipfile.ZipFile(io.BytesIO(blob)) as src:
            for name in src.namelist():
                z.writestr(name, manifest if name == "manifest.json" else src.read(name))
    assert key + ".npy" in zipfile.ZipFile(tmp_path / "other.npz").namelist()
    with pytest.raises(litelens.PatchError) as e:
        model.patch_from_export(tmp_path / "x.tflite", tmp_path / "other.npz")
    assert e.value.kind == "manifest_mismatch"


# --------------------------------------------------------------------------- diff


def test_diff_reports_exactly_the_changed_parameter(conv_model):
    model = litelens.open(conv_model)
    new = SPARSE_BIAS.copy()
    new[2] += np.float32(0.5)
    patched = model.patch_bytes({"conv_sparse/bias": new})

    d = litelens.diff(conv_model, patched)                   # a path and bytes
    assert isinstance(d, litelens.ModelDiff)
    assert len(d) == len(d.layers) >= 6 and d.only_in_a == [] and d.only_in_b == []
    assert all(layer.matched_by == "name" for layer in d)
    ((layer_name, p),) = changed_params(d)
    assert layer_name == "conv_sparse" and p.role == "bias"
    assert not (p.shape_changed or p.dtype_changed or p.quantization_changed)
    assert p.a.name == p.b.name == "conv_sparse/bias" and p.a.shape == (4,) and p.a.dtype == "float32"
    v = p.values
    delta = float(new[2]) - float(SPARSE_BIAS[2])
    assert v.count == 4 and v.differing == 1 and v.nan_mismatch == 0
    assert v.max_abs_diff == pytest.approx(abs(delta), rel=1e-12)
    a64, b64 = SPARSE_BIAS.astype(np.float64), new.astype(np.float64)
    assert v.rel_error == pytest.approx(abs(delta) / np.linalg.norm(a64), rel=1e-9)
    assert v.cosine == pytest.approx(a64 @ b64 / np.linalg.norm(a64) / np.linalg.norm(b64), rel=1e-12)
    assert v.cosine < 1
    assert not [layer for layer in d if not layer.identical and layer.a.name != "conv_sparse"]

    same = litelens.diff(model, litelens.open(model.patch_bytes({"conv_sparse/bias": SPARSE_BIAS})))
    assert changed_params(same) == [] and all(layer.identical for layer in same)


def test_diff_reports_quantization_and_dtype_changes(conv_model):
    model = litelens.open(conv_model)
    data = model.patch_bytes(quantization={"conv_int8/filter": {"scale": [0.02, 0.01, 0.005]}})
    ((name, p),) = changed_params(litelens.diff(model, data))
    assert name == "conv_int8" and p.role == "filter" and p.quantization_changed
    assert not p.shape_changed and not p.dtype_changed
    assert p.values.differing > 0                          # same integers, other real values
    assert np.array_equal(p.b.quantization.scales, np.float32([0.02, 0.01, 0.005]))
    # values=False reads no weights: the change is still seen, no values are compared
    ((name, p),) = [(n, q) for n, q in changed_params(litelens.diff(model, data, values=False))
                    if q.quantization_changed]
    assert name == "conv_int8" and p.values is None
    with pytest.raises(IndexError):
        litelens.diff(model, data, subgraph=3)


# --------------------------------------------------------------------------- errors


def test_errors(conv_model, tmp_path):
    model = litelens.open(conv_model)
    out = tmp_path / "out.tflite"
    with pytest.raises(KeyError) as e:
        model.patch(out, {"conv_sparse/bais": SPARSE_BIAS})
    assert isinstance(e.value, litelens.UnknownSelectorError) and isinstance(e.value, litelens.PatchError)
    assert e.value.kind == "unknown_selector" and "conv_sparse/bias" in str(e.value)  # a close name
    with pytest.raises(ValueError) as e:
        model.patch(out, {"conv_sparse/bias": SPARSE_BIAS[:3]})
    assert type(e.value) is litelens.PatchError and e.value.kind == "shape_mismatch"
    with pytest.raises(litelens.PatchError) as e:
        model.patch(out, {"conv_sparse/bias": SPARSE_BIAS.astype(np.float64)})
    assert e.value.kind == "dtype_mismatch"
    with pytest.raises(litelens.PatchError) as e:
        model.patch(out, {"input": np.zeros((1, 5, 5, 2), np.float32)})
    assert e.value.kind == "not_constant"
    with pytest.raises(litelens.PatchError) as e:
        model.patch(conv_model, {"conv_sparse/bias": SPARSE_BIAS * 2})
    assert e.value.kind == "in_place_required"
    assert not out.exists()
    with pytest.raises(litelens.Error) as e:
        model.patch(tmp_path / "missing" / "out.tflite", {"conv_sparse/bias": SPARSE_BIAS * 2})
    assert e.value.kind == "output"
    with pytest.raises(TypeError):
        model.patch(out, {"conv_sparse/bias": np.array(["a", "b", "c", "d"])})
    with pytest.raises(TypeError):
        model.patch(out, {4: SPARSE_BIAS})
    with pytest.raises(ValueError, match="nothing to do"):
        model.patch(out)
    with pytest.raises(ValueError, match="layout"):
        model.patch(out, {"conv_sparse/bias": SPARSE_BIAS}, layout="caffe")
    model.close()
    with pytest.raises(ValueError, match="closed"):
        model.patch_bytes({"conv_sparse/bias": SPARSE_BIAS})


def test_in_place(conv_model, tmp_path):
    path = tmp_path / "inplace.tflite"
    path.write_bytes(open(conv_model, "rb").read())
    model = litelens.open(path)
    new = SPARSE_BIAS + 1
    model.patch(path, {"conv_sparse/bias": new}, in_place=True)
    assert np.array_equal(model.tensor("conv_sparse/bias").numpy(), SPARSE_BIAS)  # the open mapping
    assert np.array_equal(litelens.open(path).tensor("conv_sparse/bias").numpy(), new)


# --------------------------------------------------------------------------- a real model


def test_real_mediapipe_model(tmp_path):
    path = os.path.join(MODEL_DIR, "face_detection_short_range.tflite")
    assert os.path.isfile(path), f"{path} missing: run scripts/fetch-models.sh (make test does)"
    model = litelens.open(path)
    conv = model.layers(op="CONV_2D")[0]
    f = conv.params["filter"]
    new = (f.dequantize() * -1).astype(np.float32)
    out = tmp_path / "face.tflite"
    report = litelens.patch(model, out, {f"{conv.key}/filter": new})
    assert report.tensors[0].tensor == f.stored_tensor
    patched = litelens.open(out)
    assert np.array_equal(patched.tensors()[f.stored_tensor].numpy(), new.astype(np.float16))
    assert_only_changed(model, patched, {(0, f.stored_tensor)})
    assert patched.metadata == model.metadata and patched.signatures.__len__() == len(model.signatures)
    ((name, p),) = changed_params(litelens.diff(model, patched))
    assert name == conv.name and p.role == "filter" and p.values.cosine == pytest.approx(-1.0)
    it = interpreter(str(out), preserve=False)
    run_zeros(it)
