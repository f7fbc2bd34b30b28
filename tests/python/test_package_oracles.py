"""Every real model, read through the litelens Python package, against independent oracles.

For each model in ${LITELENS_CACHE:-~/.cache/litelens}/models (scripts/fetch-models.sh; an
empty folder is a failure):

* the tensor and operator tables built from the Python API equal what the PyPI ``tflite``
  package and the ``ai-edge-litert`` interpreter report (oracles.compare_tensors/compare_ops:
  names, shapes, dtypes, quantization, sparsity, constant bytes);
* for every tensor with constant data, the interpreter's ``_get_tensor_details()`` fields and
  ``get_tensor()`` values (read before allocate_tensors(), when exactly the constants have
  data) equal litelens's. Sparse tensors: the interpreter hands out the compressed values,
  which must equal our stored bytes, and our dense values must equal a NumPy densify written
  here from the interpreter's own sparsity parameters;
* for fp16 and sparse models, after invoke() on zeros with experimental_preserve_all_tensors,
  every DEQUANTIZE and DENSIFY output equals litelens's decoded parameter, and
  conv2d_params() returns exactly what the first CONV_2D is fed. Models the interpreter cannot
  resolve at all (custom ops without a kernel) are checked against values decoded from the
  bytes the ``tflite`` package locates instead.

The tables and constants checks also run on the hand-made model of test_real_models.py and,
when `make fixtures` has made them, on the converter's quantized fixtures, whose conv weights are
also compared with the Keras weights they came from.

Interpreter quirks (see oracles.py): BUILTIN_WITHOUT_DEFAULT_DELEGATES keeps XNNPACK from
rewriting the graph. Models with MediaPipe custom ops (face_landmark_with_attention, and
selfie_segmentation, whose Convolution2DTransposeBias only the default resolver's XNNPACK
delegate runs) cannot be invoked that way; with the default resolver XNNPACK swallows the
DEQUANTIZE nodes and their outputs hold unrelated bytes, so those models use the fallback.
"""
from __future__ import annotations

import glob
import os
import sys

import numpy as np
import pytest

import litelens

from locations import HERE, CACHE, MODEL_DIR, FIXTURE_DIR, MODELS  # noqa: E402
sys.path.insert(0, HERE)

import oracles  # noqa: E402

IDS = [os.path.basename(p)[: -len(".tflite")] for p in MODELS]
# Plus the hand-made model of test_real_models.py, for what the MediaPipe models lack: int8
# per-axis and uint8 quantization, INT4, BFLOAT16, STRING and BOOL constants, CSR indices stored
# as uint8, a second subgraph and a custom op.
SYNTHETIC = "synthetic"
# And, when `make fixtures` has made them (make test does), the quantized models TensorFlow's
# converter makes from small Keras models (scripts/make-fixtures.py): int8, int16x8, dynamic
# range, fp16 and float32 versions of convolutions, a transposed convolution, LSTM and Conv3D.
FIXTURES = sorted(glob.glob(os.path.join(FIXTURE_DIR, "*.tflite")))
FIXTURE_IDS = ["fixture-" + os.path.basename(p)[: -len(".tflite")] for p in FIXTURES]
TABLE_MODELS, TABLE_IDS = MODELS + [SYNTHETIC] + FIXTURES, IDS + [SYNTHETIC] + FIXTURE_IDS


@pytest.fixture(scope="module")
def synthetic_path(tmp_path_factory) -> str:
    from test_real_models import build_synthetic_model

    path = tmp_path_factory.mktemp("synthetic") / "synthetic.tflite"
    path.write_bytes(build_synthetic_model())
    return str(path)


def _resolve(path: str, request) -> str:
    return request.getfixturevalue("synthetic_path") if path == SYNTHETIC else path


def _fail_diffs(errs: list[str], what: str):
    if errs:
        shown = "\n  ".join(errs[:40])
        more = f"\n  ... and {len(errs) - 40} more" if len(errs) > 40 else ""
        pytest.fail(f"{what}: {len(errs)} difference(s):\n  {shown}{more}")


def assert_same(ours: np.ndarray, want: np.ndarray, what: str):
    assert ours.dtype == want.dtype, f"{what}: dtype ours={ours.dtype} want={want.dtype}"
    assert ours.shape == want.shape, f"{what}: shape ours={ours.shape} want={want.shape}"
    if not np.array_equal(ours, want, equal_nan=ours.dtype.kind == "f"):
        bad = int(np.sum(ours != want))
        pytest.fail(f"{what}: {bad} of {ours.size} values differ")


# ------------------------------------------------------------------ documents from the API


def tensors_doc(model: litelens.Model) -> dict:
    """`litelens tensors --json`'s contract, built from the Python objects."""
    subgraphs = []
    for sg in model.subgraphs:
        tensors = []
        for t in sg.tensors():
            q = t.quantization
            tensors.append({
                "index": t.index, "name": t.name, "shape": list(t.shape),
                "shape_signature": list(t.shape_signature), "dtype": t.dtype, "buffer": t.buffer,
                "nbytes": t.nbytes, "data_offset": t.data_offset, "is_variable": t.is_variable,
                "is_constant": t.is_constant,
                "quantization": None if q is None else {
                    "scale": q.scales.tolist(), "zero_point": q.zero_points.tolist(),
                    "quantized_dimension": q.axis, "min": q.min.tolist(), "max": q.max.tolist()},
                "sparsity": t.sparsity,
            })
        subgraphs.append({"index": sg.index, "name": sg.name, "tensors": tensors})
    return {"subgraphs": subgraphs}


def ops_doc(model: litelens.Model) -> dict:
    return {"subgraphs": [{"index": sg.index, "operators": [
        {"index": o.index, "op": o.op, "custom_code": o.custom_code, "version": o.version,
         "inputs": o.inputs, "outputs": o.outputs, "options": o.options}
        for o in sg.operators()]} for sg in model.subgraphs]}


# ------------------------------------------------------------------ an independent densify


def densify(values: np.ndarray, shape, sp: dict) -> np.ndarray:
    """Dense array from compressed values and the interpreter's sparsity_parameters
    (TACO-style levels: level i walks dimension traversal_order[i]; block dimension n+j
    subdivides dimension block_map[j])."""
    order = [int(v) for v in sp["traversal_order"]]
    block_map = [int(v) for v in sp.get("block_map", [])]
    levels = sp["dim_metadata"]
    n, k = len(shape), len(block_map)
    block = {block_map[j]: int(levels[order.index(n + j)]["dense_size"]) for j in range(k)}

    def extent(level: int) -> int:
        d = order[level]
        if d >= n:
            return int(levels[level]["dense_size"])
        return int(shape[d]) // block.get(d, 1)

    out = np.zeros(shape, values.dtype)
    idx = [0] * (n + k)

    def walk(level: int, pos: int):
        if level == n + k:
            coord = [idx[d] * block.get(d, 1) for d in range(n)]
            for j, d in enumerate(block_map):
                coord[d] += idx[n + j]
            out[tuple(coord)] = values[pos]
            return
        meta = levels[level]
        if int(meta["format"]) == 0:  # DENSE
            e = extent(level)
            for i in range(e):
                idx[order[level]] = i
                walk(level + 1, pos * e + i)
        else:  # SPARSE_CSR
            seg, ind = meta["array_segments"], meta["array_indices"]
            for p in range(int(seg[pos]), int(seg[pos + 1])):
                idx[order[level]] = int(ind[p])
                walk(level + 1, p)

    walk(0, 0)
    return out


def test_densify_reference():
    """The worked example of the format notes, so the oracle itself is checked."""
    sp = {"traversal_order": [0, 1, 2, 3], "block_map": [0, 1],
          "dim_metadata": [{"format": 0, "dense_size": 2},
                           {"format": 1, "array_segments": [0, 2, 3], "array_indices": [0, 1, 1]},
                           {"format": 0, "dense_size": 2}, {"format": 0, "dense_size": 2}]}
    stored = np.array([1, 0, 0, 4, 2, 3, 0, 0, 5, 0, 0, 6], np.float32)
    want = np.array([[1, 0, 2, 3], [0, 4, 0, 0], [0, 0, 5, 0], [0, 0, 0, 6]], np.float32)
    np.testing.assert_array_equal(densify(stored, (4, 4), sp), want)


# ------------------------------------------------------------------ tests


def test_model_cache_not_empty():
    assert MODELS, f"no .tflite models in {MODEL_DIR}: run scripts/fetch-models.sh (or set LITELENS_CACHE)"


@pytest.mark.parametrize("path", TABLE_MODELS, ids=TABLE_IDS)
def test_tables_match_oracles(path, request):
    path = _resolve(path, request)
    lit = oracles.litert_cached(path)
    assert lit.get("subgraphs") is not None, f"LiteRT could not parse the model: {lit.get('error')}"
    if os.path.basename(path).startswith("lstm_"):
        # The interpreter adds the fused LSTM kernel's scratch tensors to the subgraph when it
        # builds the graph and gives int8 LSTM intermediates data, so its tensor table does not
        # describe the file: compare with the tflite package alone (values: next test).
        lit = None
    with litelens.open(path) as model:
        _fail_diffs(oracles.compare_tensors(tensors_doc(model), oracles.tflite_pkg_cached(path), lit, oracles.file_bytes(path)), "tensors")
        _fail_diffs(oracles.compare_ops(ops_doc(model), oracles.tflite_pkg_cached(path), lit), "operators")
        assert len(model.signatures) == len(oracles.tflite_pkg_cached(path)["signature_defs"])
        assert sorted(model.metadata) == sorted({m["name"] for m in oracles.tflite_pkg_cached(path)["metadata"]})


@pytest.mark.parametrize("path", TABLE_MODELS, ids=TABLE_IDS)
def test_signatures_and_metadata_match_oracles(path, request):
    """model.signatures against the tflite package's SignatureDefs and the interpreter's
    get_signature_list() and signature runners; model.metadata byte for byte against the
    buffers the tflite package finds for each Model.metadata entry."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    path = _resolve(path, request)
    pkg = oracles.tflite_pkg_cached(path)
    with litelens.open(path) as model:
        sigs = model.signatures
        assert [s.key for s in sigs] == [d["key"] for d in pkg["signature_defs"]]
        for s, d in zip(sigs, pkg["signature_defs"]):
            assert s.subgraph == d["subgraph_index"], s.key
            assert s.inputs == {i["name"]: i["tensor_index"] for i in d["inputs"]}, s.key
            assert s.outputs == {o["name"]: o["tensor_index"] for o in d["outputs"]}, s.key
            assert list(s.inputs) == [i["name"] for i in d["inputs"]]  # file order kept
        it = Interpreter(model_path=path,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        listed = it.get_signature_list()
        assert sorted(listed) == sorted(s.key for s in sigs)
        for s in sigs:
            assert sorted(listed[s.key]["inputs"]) == sorted(s.inputs), s.key
            assert sorted(listed[s.key]["outputs"]) == sorted(s.outputs), s.key
            runner = it.get_signature_runner(s.key)
            assert runner._subgraph_index == s.subgraph, s.key
            assert {n: int(d["index"]) for n, d in runner.get_input_details().items()} == s.inputs, s.key
            assert {n: int(d["index"]) for n, d in runner.get_output_details().items()} == s.outputs, s.key
            for name, index in s.inputs.items():  # the tensor the signature names is that tensor
                assert model.tensors(s.subgraph)[index].name == runner.get_input_details()[name]["name"]
        entries = oracles.metadata_entries(path)
        assert model.metadata == entries
        for name, raw in model.metadata.items():
            assert isinstance(raw, bytes) and raw == entries[name], name
        if path in FIXTURES:
            assert len(sigs) == 1 and sigs[0].key == "serving_default"
            assert model.metadata["min_runtime_version"].rstrip(b"\0") == model.min_runtime_version.encode()
            assert model.metadata["CONVERSION_METADATA"] and model.read_conversion_metadata() is not None


@pytest.mark.parametrize("path", TABLE_MODELS, ids=TABLE_IDS)
def test_constants_match_interpreter(path, request):
    """get_tensor_details() fields and get_tensor() values of every constant tensor."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    path = _resolve(path, request)
    pkg = oracles.tflite_pkg_cached(path)

    it = Interpreter(model_path=path,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    constants = sparse = strings = 0
    with litelens.open(path) as model:
        subgraph_count = len(model.subgraphs)
        for sg in model.subgraphs:
            # LSTM intermediates get interpreter-owned data although the file holds none
            intermediates = {i for o in sg.operators() for i in o.intermediates}
            for t in sg.tensors():
                where = f"sg{sg.index} t{t.index} {t.name!r}"
                if t.dtype == "bfloat16":
                    # The interpreter's wrapper cannot describe BFLOAT16 tensors at all (see
                    # oracles.py): check the raw bits against the tflite package.
                    with pytest.raises(ValueError):
                        it._get_tensor_details(t.index, sg.index)
                    pt = pkg["subgraphs"][sg.index]["tensors"][t.index]
                    raw = oracles.file_bytes(path)[pt["data_offset"]: pt["data_offset"] + pt["nbytes"]]
                    assert_same(t.numpy(), np.frombuffer(raw, np.uint16).reshape(t.shape), where)
                    constants += 1
                    continue
                d = it._get_tensor_details(t.index, sg.index)
                assert d["name"] == t.name, where
                assert tuple(int(x) for x in d["shape"]) == t.shape, where
                sig = t.shape_signature or t.shape
                assert tuple(int(x) for x in d["shape_signature"]) == sig, where
                qp = d["quantization_parameters"]
                q = t.quantization
                scales = q.scales if q is not None else np.zeros(0, np.float32)
                zps = q.zero_points if q is not None else np.zeros(0, np.int64)
                assert qp["scales"].astype(np.float32).tobytes() == scales.tobytes(), where
                assert [int(z) for z in qp["zero_points"]] == zps.tolist(), where
                if len(scales):
                    assert int(qp["quantized_dimension"]) == q.axis, where
                    if len(scales) == 1:  # the per-tensor (scale, zero_point) pair
                        assert np.float32(d["quantization"][0]).tobytes() == scales.tobytes(), where
                        assert d["quantization"][1] == int(zps[0]), where
                assert bool(d.get("sparsity_parameters")) == t.is_sparse, where
                if not t.is_constant:
                    if t.index not in intermediates:
                        with pytest.raises(ValueError):
                            it.get_tensor(t.index, sg.index)
                    continue
                constants += 1
                got = it.get_tensor(t.index, sg.index)
                if t.dtype == "string":
                    assert list(got.reshape(-1)) == t.strings(), where
                    strings += 1
                    continue
                ours = t.numpy()
                assert got.dtype == d["dtype"] == ours.dtype, where
                if t.is_sparse:
                    sparse += 1
                    # compressed values: the interpreter's equal our stored bytes ...
                    assert got.tobytes() == t.raw().tobytes(), where
                    # ... and our dense values equal an independent densify of them
                    assert_same(ours, densify(got, t.shape, d["sparsity_parameters"]), where)
                else:
                    assert_same(ours, got, where)
    assert constants > 0
    if "sparse" in os.path.basename(path) or path.endswith("synthetic.tflite"):
        assert sparse > 0
    if path.endswith("synthetic.tflite"):
        assert strings == 1 and subgraph_count == 2


def _runtime(path: str):
    """(an invoked interpreter with every tensor preserved, None) or (None, why it cannot run)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        it = Interpreter(model_path=path, experimental_preserve_all_tensors=True,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        it.allocate_tensors()
    except RuntimeError as e:
        return None, str(e)
    for d in it.get_input_details():
        it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    it.invoke()
    return it, None


RUN_MODELS = [p for p in MODELS if "hand_recrop" not in p]  # hand_recrop has no fp16 or sparse data
# The converter's fp16 fixtures: DEQUANTIZE in front of CONV_2D, DEPTHWISE_CONV_2D,
# TRANSPOSE_CONV, FULLY_CONNECTED (convnet), CONV_3D and CONV_3D_TRANSPOSE (conv3d) and the fused
# LSTM's weights and initial states (lstm).
FP16_FIXTURES = [os.path.join(FIXTURE_DIR, f"{name}_fp16.tflite") for name in ("convnet", "conv3d", "lstm")]
RUN_IDS = [os.path.basename(p)[: -len(".tflite")] for p in RUN_MODELS] + \
    ["fixture-" + os.path.basename(p)[: -len(".tflite")] for p in FP16_FIXTURES]


@pytest.mark.parametrize("path", RUN_MODELS + FP16_FIXTURES, ids=RUN_IDS)
def test_decoded_params_match_runtime(path):
    assert os.path.isfile(path), f"{path} missing: run make fixtures (make test does)"
    summary = oracles.summarize(oracles.tflite_pkg_cached(path))
    assert summary["is_fp16"] or summary["sparse_tensors"], "model has no fp16 or sparse constants"
    it, error = _runtime(path)
    with litelens.open(path) as model:
        conversions = [layer for layer in model.layers(op=["DEQUANTIZE", "DENSIFY"])
                       if not layer.params["input"].is_runtime]
        assert conversions
        convs = model.layers(op="CONV_2D")
        if path in FP16_FIXTURES:
            assert it is not None, f"the interpreter failed on a converter fixture: {error}"
        if it is not None:
            compared = skipped = 0
            for layer in conversions:
                p = layer.params["input"]
                out = model.operators(layer.subgraph)[layer.index].outputs[0]
                if model.tensors(layer.subgraph)[out].is_variable:
                    # A DEQUANTIZE that initialises a variable (the fp16 LSTM's hidden and cell
                    # states): the LSTM kernel writes the new state into that very tensor during
                    # invoke(), so afterwards it no longer holds the dequantized initial value.
                    skipped += 1
                    continue
                got = it.get_tensor(out, layer.subgraph)
                ours = p.dequantize() if layer.op == "DEQUANTIZE" else p.numpy()
                assert_same(ours, got, f"{layer.key} {layer.name!r}")
                compared += 1
            assert compared > 0
            if os.path.basename(path) == "lstm_fp16.tflite":
                assert (compared, skipped) == (12, 2)
            if convs:
                weights, biases = litelens.conv2d_params(model)
                first = convs[0]
                assert_same(weights, it.get_tensor(first.params["filter"].tensor), "conv2d_params weights")
                assert_same(biases, it.get_tensor(first.params["bias"].tensor), "conv2d_params biases")
            return
        first_conv = convs[0]
        weights, biases = litelens.conv2d_params(model)
        # The interpreter cannot resolve the model's custom ops (with the default resolver,
        # XNNPACK runs some of them, but then DEQUANTIZE outputs are never materialized):
        # decode the bytes the tflite package locates, with NumPy.
        assert "unresolved custom op" in error, f"the interpreter failed: {error}"
        pkg_tensors = oracles.tflite_pkg_cached(path)["subgraphs"]
        data = oracles.file_bytes(path)

        def from_pkg(sg: int, index: int) -> np.ndarray:
            t = pkg_tensors[sg]["tensors"][index]
            assert t["sparsity"] is None, "no NumPy densify from tflite-package data here"
            dtype = {"FLOAT16": np.float16, "FLOAT32": np.float32, "INT8": np.int8}[t["type_name"]]
            raw = data[t["data_offset"]: t["data_offset"] + t["nbytes"]]
            return np.frombuffer(raw, dtype).reshape(t["shape"])

        for layer in conversions:
            p = layer.params["input"]
            assert layer.op == "DEQUANTIZE"
            want = from_pkg(layer.subgraph, p.stored_tensor)
            assert_same(p.numpy(), want, f"{layer.key} stored")
            assert_same(p.dequantize(), want.astype(np.float32), f"{layer.key} dequantized")
        f = first_conv.params["filter"]
        assert_same(weights, from_pkg(0, f.stored_tensor).astype(np.float32), "conv2d_params weights")


CONVNETS = [p for p in FIXTURES if os.path.basename(p).startswith("convnet_")]


def test_converter_fixtures_present():
    assert CONVNETS, f"no converter fixtures in {FIXTURE_DIR}: run make fixtures (make test does)"


@pytest.mark.parametrize("path", CONVNETS, ids=[os.path.basename(p)[: -len(".tflite")] for p in CONVNETS])
def test_conv2d_params_against_keras_weights(path):
    """conv2d_params on converter output equals the Keras layer's own weights: exactly for
    float32, after rounding to fp16 for fp16, within half a quantization step for int8."""
    keras = np.load(os.path.join(FIXTURE_DIR, "convnet_keras.npz"))
    kernel = keras["conv_bias/kernel"].transpose(3, 0, 1, 2)  # Keras HWIO -> TFLite OHWI
    bias = keras["conv_bias/bias"]
    mode = os.path.basename(path)[len("convnet_"): -len(".tflite")]
    weights, biases = litelens.conv2d_params(path, "convnet/conv_bias/Conv2D")
    assert weights.shape == kernel.shape
    if mode == "float32":
        assert_same(weights, kernel.astype(np.float32), "float32 kernel")
        assert_same(biases, bias.astype(np.float32), "float32 bias")
    elif mode == "fp16":
        assert_same(weights, kernel.astype(np.float16).astype(np.float32), "fp16 kernel")
        assert_same(biases, bias.astype(np.float16).astype(np.float32), "fp16 bias")
    else:
        assert weights.dtype == np.int8, mode
        want_bias = {"dynamic": np.float32, "int8": np.int32, "int16x8": np.int64}[mode]
        assert biases.dtype == want_bias, mode
        with litelens.open(path) as model:
            (layer,) = [layer for layer in model.layers(op="CONV_2D")
                        if "convnet/conv_bias/Conv2D" in layer.name_parts]
            f = layer.params["filter"]
            q = f.quantization
            assert q.is_per_axis and q.axis == 0 and len(q.scales) == kernel.shape[0]
            np.testing.assert_array_equal(f.numpy(), weights)
            step = q.scales.reshape(-1, 1, 1, 1)
            assert np.all(np.abs(f.dequantize() - kernel) <= step / 2 + 1e-6), "int8 kernel off by > 1/2 step"
            if mode != "dynamic":
                b = layer.params["bias"]
                bstep = b.quantization.scales
                assert np.all(np.abs(b.dequantize() - bias) <= bstep / 2 + 1e-6), "bias off by > 1/2 step"
