"""The litelens Python API: opening, lifetimes, zero-copy views, errors, exports, the CLI.

Uses the real models in ${LITELENS_CACHE:-~/.cache/litelens}/models (scripts/fetch-models.sh);
their absence is a failure. Setup: pip install . (the package), numpy, safetensors, pytest.
"""
from __future__ import annotations

import gc
import glob
import io
import json
import os
import pathlib
import subprocess
import sysconfig
import threading
import weakref
import zipfile

import numpy as np
import pytest

import litelens

from locations import CACHE, MODEL_DIR, MODELS  # noqa: E402
SHORT = os.path.join(MODEL_DIR, "face_detection_short_range.tflite")   # fp16 weights
RECROP = os.path.join(MODEL_DIR, "hand_recrop.tflite")                  # float32 weights
SPARSE = os.path.join(MODEL_DIR, "face_detection_full_range_sparse.tflite")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module", autouse=True)
def _models_present():
    for path in (SHORT, RECROP, SPARSE):
        assert os.path.isfile(path), f"{path} missing: run scripts/fetch-models.sh (or set LITELENS_CACHE)"


def float32_param(model: litelens.Model) -> litelens.Param:
    """A float32 CONV_2D filter stored as is (no DEQUANTIZE): a zero-copy candidate."""
    for layer in model.layers(op="CONV_2D"):
        p = layer.params["filter"]
        if p.dtype == "float32" and not p.via:
            return p
    raise AssertionError("no float32 conv filter")


# ------------------------------------------------------------------ opening


def test_open_sources_agree():
    data = pathlib.Path(SHORT).read_bytes()
    models = [litelens.open(SHORT), litelens.open(pathlib.Path(SHORT)), litelens.open(data),
              litelens.open(bytearray(data)), litelens.open(memoryview(data), label="short"),
              litelens.Model.open(SHORT), litelens.Model.from_bytes(data)]
    ref = models[0]
    for m in models:
        assert m.file_size == len(data) and m.flatbuffer_size <= len(data)
        assert [len(sg.tensors()) for sg in m.subgraphs] == [len(sg.tensors()) for sg in ref.subgraphs]
        assert [(o.op, o.inputs, o.outputs) for o in m.operators()] == [(o.op, o.inputs, o.outputs)
                                                                        for o in ref.operators()]
        np.testing.assert_array_equal(litelens.conv2d_params(m)[0], litelens.conv2d_params(ref)[0])
    assert models[0].path == SHORT and models[2].path == "<memory>" and models[4].path == "short"
    with pytest.raises(TypeError):
        litelens.open(12)  # type: ignore[arg-type]


def test_context_manager_and_close():
    with litelens.open(SHORT) as m:
        assert not m.closed
        layer = m.layers(op="CONV_2D")[0]
        tensor = m.tensors()[0]
    assert m.closed and "closed" in repr(m)
    with pytest.raises(ValueError, match="closed"):
        m.tensors()
    with pytest.raises(ValueError, match="closed"):
        m.layers()
    m.close()  # twice is fine
    # what was made from the model stays usable
    assert layer.params["filter"].dequantize().shape == layer.params["filter"].shape
    assert tensor.name == "input"


def test_model_views():
    with litelens.open(SHORT) as m:
        (sg,) = m.subgraphs
        assert (sg.index, sg.tensor_count, sg.operator_count) == (0, 250, 164)
        assert len(m.tensors()) == 250 and len(m.operators()) == 164 and len(sg.operators()) == 164
        t = m.tensor(sg.inputs[0])
        assert m.tensor(t.name).index == t.index
        assert (t.shape, t.dtype, t.is_constant, t.data_offset, t.nbytes) == ((1, 128, 128, 3), "float32", False,
                                                                              None, 0)
        conv = m.operators()[m.layers(op="CONV_2D")[0].index]
        assert conv.op == "CONV_2D" and conv.custom_code is None and conv.options_type == "Conv2DOptions"
        assert conv.options["padding"] == "SAME" and conv.options["stride_w"] == 2
        layer = m.layer(conv.index)
        assert layer.key == f"sg0.op{conv.index}.CONV_2D" and layer.options == conv.options
        f = layer.params["filter"]
        assert (f.role, f.via, f.layout, f.dtype, f.is_runtime) == ("filter", ["DEQUANTIZE"], "OHWI", "float16",
                                                                    False)
        assert f.tensor == conv.inputs[1] and f.stored_tensor != f.tensor and f.quantization is None
        assert layer.params["input"].is_runtime and layer.params["input"].stored_tensor is None
        with pytest.raises(ValueError, match="run time"):
            layer.params["input"].numpy()
        assert isinstance(m.metadata, dict) and isinstance(m.warnings, list)
        assert m.min_runtime_version is None or isinstance(m.min_runtime_version, str)
        assert repr(f).startswith("<litelens.Param filter")


def test_layer_selection():
    with litelens.open(SHORT) as m:
        convs = m.layers(op="CONV_2D")
        assert len(convs) == 21 and all(layer.op == "CONV_2D" for layer in convs)
        assert len(m.layers(op=["conv_2d", "DEPTHWISE_CONV_2D"])) == len(convs) + len(m.layers(op="DEPTHWISE_CONV_2D"))
        name = convs[3].name
        assert convs[3].key in [layer.key for layer in m.layers(name=name, exact=True)]
        assert m.layers(name="*" + name[2:]) and m.layers(name=name[1:-1])
        assert [layer.index for layer in m.layers(index=5)] == [5]
        assert m.layers(name="no such layer anywhere") == []
        close = m.closest_layer_names(name + "x", op="CONV_2D", limit=3)
        assert close[0] == name and len(close) == 3
        with pytest.raises(IndexError):
            m.layers(index=10_000)
        with pytest.raises(IndexError):
            m.layers(subgraph=3)
        with pytest.raises(IndexError):
            m.layer(10_000)
        with pytest.raises(IndexError):
            m.tensors(subgraph=1)
        with pytest.raises(IndexError):
            m.tensor(10_000)
        with pytest.raises(KeyError, match="no tensor named"):
            m.tensor("no such tensor")
        with pytest.raises(TypeError):
            m.layers(op=[1, 2])  # type: ignore[list-item]


def test_dequantize_is_float32_for_unquantized_integers():
    """dequantize() is float32 for every numeric dtype: integer PAD paddings and RESHAPE shapes
    (not quantized) come back converted, with the same values."""
    cases = [(SHORT, "PAD", "paddings", [[0, 0], [0, 0], [0, 0], [0, 4]]),
             (SPARSE, "RESHAPE", "shape", [1, -1, 1])]
    for path, op, role, want in cases:
        with litelens.open(path) as m:
            p = m.layers(op=op)[0].params[role]
            assert (p.dtype, p.quantization, p.is_runtime) == ("int32", None, False)
            stored = p.numpy()
            assert stored.dtype == np.int32 and stored.tolist() == want
            for got in (p.dequantize(), p.values("dequantized"), p.to_layout("tflite", dequantize=True),
                        m.tensors()[p.stored_tensor].dequantize(),
                        m.tensors()[p.stored_tensor].values("dequantized")):
                assert got.dtype == np.float32, (op, got.dtype)
                assert got.shape == stored.shape and got.tolist() == want
            # "widened" only widens narrow floats: integers stay as stored
            assert p.values("widened").dtype == np.int32


# ------------------------------------------------------------------ zero-copy and lifetime


def test_zero_copy_is_real():
    m = litelens.open(RECROP)
    p = float32_param(m)
    a, b = p.numpy(), p.numpy()
    file = m.file_bytes()
    t = m.tensors()[p.stored_tensor]
    # the array is the mapping: same address as the file view at the tensor's offset
    assert a.__array_interface__["data"][0] == file.__array_interface__["data"][0] + t.data_offset
    assert np.shares_memory(a, b) and np.shares_memory(a, file)
    assert a.tobytes() == bytes(file[t.data_offset: t.data_offset + t.nbytes])
    t.will_need()  # only a hint to the OS: the view is unchanged
    m.tensors()[0].will_need()  # a tensor without data: nothing to ask for
    assert a.tobytes() == bytes(file[t.data_offset: t.data_offset + t.nbytes])
    assert not a.flags.writeable and not file.flags.writeable
    with pytest.raises(ValueError):
        a[(0,) * a.ndim] = 1.0
    with pytest.raises(ValueError):
        a.setflags(write=True)
    assert t.numpy().__array_interface__["data"][0] == a.__array_interface__["data"][0]
    raw = t.raw()
    assert raw.dtype == np.uint8 and np.shares_memory(raw, a)
    # decoding makes fresh, writable arrays
    short = litelens.open(SHORT)
    f = short.layers(op="CONV_2D")[0].params["filter"]
    stored, widened = f.numpy(), f.dequantize()
    assert stored.dtype == np.float16 and not stored.flags.writeable          # fp16 bits: zero-copy
    assert np.shares_memory(stored, short.file_bytes())
    assert widened.dtype == np.float32 and widened.flags.writeable            # widened: fresh
    assert not np.shares_memory(widened, short.file_bytes())
    widened[(0,) * widened.ndim] = 42.0  # fine: it is ours
    sparse = litelens.open(SPARSE)
    st = next(t for t in sparse.tensors() if t.is_sparse)
    dense = st.numpy()
    assert dense.flags.writeable and not np.shares_memory(dense, sparse.file_bytes())  # densified
    assert dense.size > st.nbytes // dense.itemsize


def test_arrays_outlive_the_model():
    m = litelens.open(RECROP)
    p = float32_param(m)
    view, fresh = p.numpy(), p.to_layout("torch")
    expected_view, expected_fresh = view.copy(), fresh.copy()
    layer_params = m.layers(op="CONV_2D")[0].params
    file = m.file_bytes()
    ref = weakref.ref(m)
    del m, p
    gc.collect()
    assert ref() is None  # the Python Model object is gone ...
    np.testing.assert_array_equal(view, expected_view)  # ... the mapping is not
    np.testing.assert_array_equal(fresh, expected_fresh)
    assert file[:8].tobytes()[4:8] == b"TFL3"
    np.testing.assert_array_equal(layer_params["filter"].numpy(), expected_view)
    del view, fresh, layer_params, file
    gc.collect()


def _maps_of(path: str) -> list[str]:
    """Lines of /proc/self/maps that map `path`."""
    real = os.path.realpath(path)
    with open("/proc/self/maps") as f:
        return [line for line in f if line.rstrip("\n").endswith(real)]


def test_array_alone_keeps_the_mapping(tmp_path):
    """An array from param.numpy() is all that is left of a model: it stays valid and readable,
    and the file's mapping goes away only when the array does."""
    # a private copy, so no other test's model maps the same file
    path = str(tmp_path / "alone.tflite")
    pathlib.Path(path).write_bytes(pathlib.Path(RECROP).read_bytes())
    assert not _maps_of(path)
    m = litelens.open(path)
    layers = m.layers(op="CONV_2D")
    params = layers[0].params
    p = float32_param(m)
    a = p.numpy()
    want = pathlib.Path(path).read_bytes()[m.tensors()[p.stored_tensor].data_offset:][: a.nbytes]
    assert not a.flags.owndata and a.base is not None  # a view, not a copy
    assert _maps_of(path)
    ref = weakref.ref(m)
    del m, layers, params, p
    gc.collect()
    assert ref() is None
    assert _maps_of(path), "the mapping went away while an array still views it"
    assert a.tobytes() == want           # still readable, same bytes
    assert float(np.abs(a).sum()) > 0
    del a
    gc.collect()
    assert not _maps_of(path), "the mapping outlived the last array"


def test_closed_model_arrays_stay_valid():
    with litelens.open(RECROP) as m:
        a = float32_param(m).numpy()
        want = a.copy()
    gc.collect()
    np.testing.assert_array_equal(a, want)


def test_many_views_and_threads():
    """Decoding releases the GIL; concurrent use from threads gives the same answers."""
    m = litelens.open(SHORT)
    params = [layer.params["filter"] for layer in m.layers(op=["CONV_2D", "DEPTHWISE_CONV_2D"])]
    want = [p.dequantize() for p in params]
    errors: list[BaseException] = []

    def work():
        try:
            for _ in range(5):
                for p, w in zip(params, want):
                    np.testing.assert_array_equal(p.dequantize(), w)
                litelens.open(SHORT).close()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


# ------------------------------------------------------------------ errors


def test_error_type_and_fields(tmp_path):
    assert issubclass(litelens.Error, Exception)
    with pytest.raises(litelens.Error) as e:
        litelens.open(b"1234")
    assert (e.value.kind, e.value.path, e.value.offset) == ("truncated", "<memory>", 0)
    assert e.value.message and e.value.message in str(e.value)
    data = bytearray(pathlib.Path(SHORT).read_bytes())
    data[4:8] = b"XXXX"
    with pytest.raises(litelens.Error) as e:
        litelens.open(bytes(data), label="bad.tflite")
    assert e.value.kind == "bad_identifier" and e.value.path == "bad.tflite"
    missing = tmp_path / "missing.tflite"
    with pytest.raises(litelens.Error) as e:
        litelens.open(missing)
    assert e.value.kind == "io" and e.value.path == str(missing)
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(pathlib.Path(SHORT).read_bytes()[:5000])
    with pytest.raises(litelens.Error) as e:
        litelens.open(cut)
    assert e.value.path == str(cut) and e.value.kind in {"invalid_flatbuffer", "truncated", "buffer_out_of_file"}
    # an Error can be raised and caught from Python too
    with pytest.raises(litelens.Error):
        raise litelens.Error("made in Python")


def test_conv2d_params_on_real_models():
    for path in MODELS:
        with litelens.open(path) as m:
            convs = m.layers(op="CONV_2D")
            if not convs:
                continue
            w, b = litelens.conv2d_params(path)
            f = convs[0].params["filter"]
            assert w.shape == f.shape and w.dtype == np.float32, path
            assert b is None or b.shape == (w.shape[0],)
            name = convs[-1].name
            w2, _ = litelens.conv2d_params(path, name)
            np.testing.assert_array_equal(w2, convs[-1].params["filter"].consumed())
    with pytest.raises(KeyError, match="closest names"):
        litelens.conv2d_params(SHORT, "conv2d_99x")


def test_conv2d_params_keyword_path():
    """The first argument is called ``path``; it takes str, os.PathLike, bytes and a Model."""
    import inspect

    assert list(inspect.signature(litelens.conv2d_params).parameters) == ["path", "layer_name"]
    w, b = litelens.conv2d_params(path=SHORT)
    assert w.shape == (24, 5, 5, 3) and w.dtype == np.float32 and b.shape == (24,)
    for source in (pathlib.Path(SHORT), pathlib.Path(SHORT).read_bytes()):
        w2, b2 = litelens.conv2d_params(path=source, layer_name=None)
        np.testing.assert_array_equal(w2, w)
        np.testing.assert_array_equal(b2, b)
    with litelens.open(SHORT) as m:
        name = m.layers(op="CONV_2D")[1].name
        w3, _ = litelens.conv2d_params(path=m, layer_name=name)
        np.testing.assert_array_equal(w3, m.layers(op="CONV_2D")[1].params["filter"].consumed())
        assert not m.closed  # a Model passed in is not closed
    with pytest.raises(TypeError):
        litelens.conv2d_params(model=SHORT)  # type: ignore[call-arg]  # the old name is gone


# ------------------------------------------------------------------ exports


def test_export_bytes_npz_matches_params():
    with litelens.open(SHORT) as m:
        blob = m.export_bytes("npz", op="CONV_2D")
        z = np.load(io.BytesIO(blob))
        manifest = json.loads(zipfile.ZipFile(io.BytesIO(blob)).read("manifest.json"))["arrays"]
        for layer in m.layers(op="CONV_2D"):
            for role in ("filter", "bias"):
                key = f"{layer.key}/{role}"
                np.testing.assert_array_equal(z[key], layer.params[role].numpy())
                assert manifest[key]["op"] == "CONV_2D" and manifest[key]["role"] == role
        deq = np.load(io.BytesIO(m.export_bytes("npz", op="CONV_2D", dequantize=True, layout="torch")))
        first = m.layers(op="CONV_2D")[0]
        np.testing.assert_array_equal(deq[f"{first.key}/filter"],
                                      first.params["filter"].to_layout("torch", dequantize=True))
        with pytest.raises(KeyError, match="no layer matches"):
            m.export_bytes(name="no_such_layer_name")
        with pytest.raises(ValueError):
            m.export_bytes("npy")
        with pytest.raises(ValueError):
            m.export_bytes("zip")


def test_export_safetensors_and_json():
    from safetensors.numpy import load

    with litelens.open(SHORT) as m:
        tensors = load(m.export_bytes("safetensors", op="CONV_2D", dequantize=True))
        first = m.layers(op="CONV_2D")[0]
        np.testing.assert_array_equal(tensors[f"{first.key}/filter"], first.params["filter"].dequantize())
        doc = json.loads(m.export_bytes("json", index=first.index))
        assert doc and first.key in json.dumps(doc)
        assert b"#" in m.export_bytes("c", index=first.index)


def _tree(path: pathlib.Path) -> dict[str, bytes]:
    """relative path -> bytes of every file under a folder (or of the file itself)."""
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()}


def _cli_args(selection: dict) -> list[str]:
    """`litelens extract` options for keyword arguments of extract()."""
    args: list[str] = []
    for key, value in selection.items():
        if key == "op":
            for op in [value] if isinstance(value, str) else value:
                args += ["--op", op]
        elif key in ("name", "index", "subgraph", "layout", "format"):
            args += [f"--{key}", str(value)]
        elif key in ("exact", "first", "dequantize", "all_ops"):
            if value:
                args.append("--" + key.replace("_", "-"))
        else:
            raise AssertionError(key)
    return args


EXPORT_FORMATS = {"npz": "out.npz", "npy": "out", "safetensors": "out.safetensors", "json": "out.json",
                  "c": "out.h"}


def _selections(m: litelens.Model) -> list[dict]:
    """Selections and options of `litelens extract` to mirror, for one model."""
    convs = m.layers(op="CONV_2D")
    assert len(convs) >= 2
    named = convs[1].name_parts[0]
    return [
        {"op": "CONV_2D"},
        {"op": "CONV_2D", "dequantize": True, "layout": "keras"},
        {"op": ["CONV_2D", "DEPTHWISE_CONV_2D"], "layout": "torch", "first": True},
        {"name": named, "exact": True, "dequantize": True, "layout": "torch"},
        {"index": convs[-1].index, "subgraph": 0, "layout": "keras"},
        {"op": "CONV_2D", "name": "*", "first": True, "dequantize": True},
        {"all_ops": True, "op": ["DEQUANTIZE", "DENSIFY", "CONV_2D"], "first": True},
    ]


def _extract_models() -> list[str]:
    int8 = os.path.join(CACHE, "fixtures", "convnet_int8.tflite")
    assert os.path.isfile(int8), f"{int8} missing: run make fixtures (make test does)"
    return [SHORT, SPARSE, int8]


def test_extract_equals_cli(tmp_path):
    """litelens.extract(), Model.extract() and Model.export_bytes() write what `litelens extract`
    writes, byte for byte, for every format and each selection and option of the CLI."""
    checked = 0
    for path in _extract_models():
        with litelens.open(path) as m:
            selections = _selections(m)
            for fmt, out_name in EXPORT_FORMATS.items():
                for i, sel in enumerate(selections):
                    where = f"{os.path.basename(path)} {fmt} {sel}"
                    case = tmp_path / f"{checked}"
                    ours, via_model, theirs = case / "py", case / "model", case / "cli"
                    for d in (ours, via_model, theirs):
                        d.mkdir(parents=True)
                    # the format from the extension, or given explicitly (npy: always)
                    fmt_kw = {"format": fmt} if fmt == "npy" or i % 2 else {}
                    r1 = litelens.extract(path, ours / out_name, **sel, **fmt_kw)
                    r2 = m.extract(via_model / out_name, **sel, **fmt_kw)
                    p = subprocess.run([cli(), "extract", path, "-o", str(theirs / out_name)]
                                       + _cli_args({**sel, **fmt_kw}), capture_output=True, text=True)
                    assert p.returncode == 0, f"{where}: {p.stderr}"
                    want = _tree(theirs / out_name)
                    assert want, where
                    assert _tree(ours / out_name) == want, where
                    assert _tree(via_model / out_name) == want, where
                    assert f"wrote {r1.arrays} arrays ({r1.bytes} bytes of values)" in p.stdout, where
                    assert (r2.arrays, r2.bytes) == (r1.arrays, r1.bytes), where
                    if sel.get("first"):
                        assert len(m.layers(**{k: v for k, v in sel.items() if k in
                                               ("op", "name", "exact", "index", "subgraph", "first")})) == 1
                    if fmt != "npy":
                        blob = m.export_bytes(fmt, **{k: v for k, v in sel.items()})
                        assert blob == want[out_name], where
                    checked += 1
    assert checked == 3 * len(EXPORT_FORMATS) * 7
    # --first really narrows: without it the same selection exports more arrays
    with litelens.open(SHORT) as m:
        everything = m.export_bytes("npz", op=["CONV_2D", "DEPTHWISE_CONV_2D"])
        one = m.export_bytes("npz", op=["CONV_2D", "DEPTHWISE_CONV_2D"], first=True)
        assert len(np.load(io.BytesIO(one)).files) == 3  # filter, bias, manifest.json
        assert len(np.load(io.BytesIO(everything)).files) > 3
    folder = tmp_path / "npy"
    with litelens.open(SHORT) as m:
        r = m.extract(folder, op="CONV_2D", format="npy")
    assert r.arrays == 42 and (folder / "manifest.json").is_file()
    with pytest.raises(KeyError):
        litelens.extract(SHORT, tmp_path / "none.npz", name="nothing matches this")
    assert not (tmp_path / "none.npz").exists()


# ------------------------------------------------------------------ the installed command


def cli() -> str:
    path = os.path.join(sysconfig.get_path("scripts"), "litelens")
    assert os.access(path, os.X_OK), f"pip install . did not install the litelens command at {path}"
    return path


def test_cli_installed():
    out = subprocess.run([cli(), "--version"], check=True, capture_output=True, text=True).stdout
    assert "litelens" in out
    info = subprocess.run([cli(), "tensors", SHORT, "--json"], check=True, capture_output=True, text=True).stdout
    doc = json.loads(info)
    with litelens.open(SHORT) as m:
        assert [t["name"] for t in doc["subgraphs"][0]["tensors"]] == [t.name for t in m.tensors()]


def test_warnings_name_their_tensor():
    """A warning about one tensor says which (the named regression case: 39 scales, one zero
    point); warnings about the model as a whole have None there."""
    path = os.path.join(REPO, "tests", "corruption", "regressions",
                        "seed_7132043315184277869_rand_flip_quantized_600.tflite")
    with litelens.open(path) as m:
        found = sorted((w.code, w.subgraph, w.tensor) for w in m.warnings)
    assert found == [("extra_scales", 0, 3), ("zero_point_count", 0, 3)]
