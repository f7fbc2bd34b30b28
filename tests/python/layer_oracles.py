"""Helpers for the layer tests (test_layers_*.py): the litelens CLI, independent NumPy
decoders, an independent reader (the PyPI `tflite` package), the LiteRT interpreter and the
models built for the tests (with model_builder.py).

Nothing here shares code with litelens. The NumPy decoders restate the format
(docs/format.md and schema/tflite.fbs) directly:

* float16 widening is NumPy's own float16 -> float32 conversion; bfloat16 is the 16 bits
  placed in the upper half of a float32;
* INT4/UINT4 are two values per byte, element 2k in the low nibble; INT2 four values per byte,
  element 4k in bits 0-1; signed values are sign-extended;
* densify walks the traversal levels recursively (the format's pseudocode, written afresh);
* dequantization is scale * (q - zero_point) in float64, rounded once to float32, with the
  scale index taken along quantized_dimension (per-channel) or per block of a row (blockwise).

They are themselves checked against hand-worked examples and against LiteRT's
DEQUANTIZE and DENSIFY kernels (test_layers_decode.py).
"""
from __future__ import annotations

import functools
import glob
import json
import os
import subprocess
import zipfile

import numpy as np
import pytest

from locations import HERE, REPO, CACHE, MODEL_DIR, FIXTURE_DIR, MODELS, CLI  # noqa: E402
import cli_runner  # noqa: E402
from model_builder import (BFLOAT16, BOOL, FLOAT16, FLOAT32, INT2, INT4, NUMPY_OF_TYPE, UINT4,  # noqa: E402
                           ModelBuilder, conv_options, pack_int2, pack_int4)


# ---------------------------------------------------------------------------------------------
# The CLI


def cli(*args, ok: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs litelens (text output); with ok=True a non-zero exit fails the test."""
    return cli_runner.run_cli(*args, ok=ok, timeout=timeout, text=True)


def layers_json(model, *args) -> list[dict]:
    p = cli("layers", model, "--json", *args)
    try:
        return json.loads(p.stdout)["layers"]
    except (ValueError, KeyError) as e:
        pytest.fail(f"`litelens layers --json` printed no layer list ({e}): {p.stdout[:400]!r}")


def extract_npz(model, out_dir, *args, name: str = "out.npz") -> tuple[dict, dict]:
    """`litelens extract MODEL -o out.npz ARGS`, read back with numpy: (arrays, manifest)."""
    out = os.path.join(str(out_dir), name)
    cli("extract", model, "-o", out, *args)
    return read_npz(out)


def read_npz(path) -> tuple[dict, dict]:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "manifest.json"}
    with zipfile.ZipFile(path) as z:
        manifest = json.loads(z.read("manifest.json"))
    return arrays, manifest


def bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Same dtype, shape and bytes (NaN payloads included)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def assert_bits_equal(got, want, what: str):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    if got.tobytes() != want.tobytes():
        g, w = got.reshape(-1), want.reshape(-1)
        if got.dtype.kind == "f":
            diff = np.nonzero(g.view(f"u{g.itemsize}") != w.view(f"u{w.itemsize}"))[0]
        else:
            diff = np.nonzero(g != w)[0]
        i = int(diff[0])
        pytest.fail(f"{what}: {len(diff)} of {g.size} elements differ; first at flat {i}: {g[i]!r} != {w[i]!r}")


# ---------------------------------------------------------------------------------------------
# Independent NumPy decoders


def widen_f16(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype="<f2").astype(np.float32)


def widen_bf16(raw: bytes) -> np.ndarray:
    return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)


def unpack_int4(raw: bytes, n: int) -> np.ndarray:
    b = np.frombuffer(raw, dtype=np.uint8)
    nib = np.empty(b.size * 2, dtype=np.int16)
    nib[0::2], nib[1::2] = b & 0x0F, b >> 4
    return ((nib[:n] ^ 8) - 8).astype(np.int8)


def unpack_uint4(raw: bytes, n: int) -> np.ndarray:
    b = np.frombuffer(raw, dtype=np.uint8)
    nib = np.empty(b.size * 2, dtype=np.uint8)
    nib[0::2], nib[1::2] = b & 0x0F, b >> 4
    return nib[:n].copy()


def unpack_int2(raw: bytes, n: int) -> np.ndarray:
    b = np.frombuffer(raw, dtype=np.uint8).astype(np.int16)
    pairs = np.stack([(b >> s) & 3 for s in (0, 2, 4, 6)], axis=1).reshape(-1)
    return ((pairs[:n] ^ 2) - 2).astype(np.int8)


def densify(shape, traversal_order, block_map, levels, values) -> np.ndarray:
    """The format's densify walk (tflite-format.md 5.2). levels: dicts with "format" (0 dense,
    1 CSR), "dense_size", "segments", "indices". Returns a dense array of `shape`."""
    shape = list(shape)
    values = np.asarray(values)
    n = len(shape)
    total = len(traversal_order)
    block_map = list(block_map or [])
    # Extent of each block dimension j: the dense_size of the level that walks it.
    blk = {}
    for lv, d in enumerate(traversal_order):
        if d >= n:
            blk[d - n] = levels[lv]["dense_size"]
    out = np.zeros(int(np.prod(shape, dtype=np.int64)) if shape else 1, dtype=values.dtype)
    idx = [0] * total
    cursor = [0]
    strides = [int(np.prod(shape[i + 1:], dtype=np.int64)) for i in range(n)]

    def visit(level: int, parent: int):
        if level == total:
            orig = [0] * n
            for lv in range(n):
                orig[traversal_order[lv]] = idx[lv]
            for lv in range(n, total):
                j = traversal_order[lv] - n
                d = block_map[j]
                orig[d] = orig[d] * blk[j] + idx[lv]
            out[sum(o * s for o, s in zip(orig, strides))] = values[cursor[0]]
            cursor[0] += 1
            return
        m = levels[level]
        if m["format"] == 0:
            for i in range(m["dense_size"]):
                idx[level] = i
                visit(level + 1, parent * m["dense_size"] + i)
        else:
            seg, ind = m["segments"], m["indices"]
            for p in range(seg[parent], seg[parent + 1]):
                idx[level] = ind[p]
                visit(level + 1, p)

    visit(0, 0)
    assert cursor[0] == values.size, f"densify: walked {cursor[0]} leaves for {values.size} stored values"
    return out.reshape(shape)


def dequantize(q, scale, zero_point, axis: int = 0) -> np.ndarray:
    """scale * (q - zero_point) in float64, rounded once to float32; per-axis when len(scale) > 1."""
    q = np.asarray(q)
    scale = np.asarray(scale, dtype=np.float32).astype(np.float64)
    zp = np.asarray(zero_point if len(zero_point) else [0], dtype=np.int64)
    diff = q.astype(np.int64)
    if scale.size == 1:
        return (scale[0] * (diff - zp[0]).astype(np.float64)).astype(np.float32)
    bshape = [1] * q.ndim
    bshape[axis] = scale.size
    zpb = (zp if zp.size == scale.size else np.full(scale.size, zp[0])).reshape(bshape)
    return (scale.reshape(bshape) * (diff - zpb).astype(np.float64)).astype(np.float32)


def dequantize_blockwise(q, scales, zero_points, block_size: int) -> np.ndarray:
    """2-D [rows, cols]: element (r, c) uses scales[r, c // block_size]."""
    q = np.asarray(q).astype(np.int64)
    rows, cols = q.shape
    s = np.asarray(scales, dtype=np.float32).astype(np.float64).reshape(rows, cols // block_size)
    zp = (np.zeros_like(s, dtype=np.int64) if zero_points is None
          else np.asarray(zero_points, dtype=np.int64).reshape(s.shape))
    s_full = np.repeat(s, block_size, axis=1)
    zp_full = np.repeat(zp, block_size, axis=1)
    return (s_full * (q - zp_full).astype(np.float64)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Keras <-> TFLite layouts, computed from the Keras side (independently of litelens)


def keras_to_tflite(op: str, kernel: np.ndarray) -> np.ndarray:
    """The TFLite layout of a Keras kernel (what the converter writes)."""
    if op == "CONV_2D":  # HWIO -> OHWI
        return kernel.transpose(3, 0, 1, 2)
    if op == "DEPTHWISE_CONV_2D":  # H,W,C,M -> 1,H,W,C*M (channel c*M + m)
        h, w, c, m = kernel.shape
        return kernel.reshape(1, h, w, c * m)
    if op == "TRANSPOSE_CONV":  # H,W,O,I -> O,H,W,I
        return kernel.transpose(2, 0, 1, 3)
    if op == "FULLY_CONNECTED":  # I,O -> O,I
        return kernel.T
    if op in ("CONV_3D", "CONV_3D_TRANSPOSE"):  # D,H,W,I,O and D,H,W,O,I stay
        return kernel
    raise ValueError(op)


def keras_to_torch(op: str, kernel: np.ndarray) -> np.ndarray:
    """The PyTorch layout of a Keras kernel: Conv2d (O,I,H,W); depthwise Conv2d with groups=C
    (C*M,1,H,W), output channel c*M+m; ConvTranspose2d (I,O,H,W); Linear (O,I); Conv3d
    (O,I,D,H,W); ConvTranspose3d (I,O,D,H,W)."""
    if op == "CONV_2D":
        return kernel.transpose(3, 2, 0, 1)
    if op == "DEPTHWISE_CONV_2D":
        h, w, c, m = kernel.shape
        return kernel.reshape(h, w, c * m).transpose(2, 0, 1)[:, None, :, :]
    if op == "TRANSPOSE_CONV":  # Keras H,W,O,I -> torch I,O,H,W
        return kernel.transpose(3, 2, 0, 1)
    if op == "FULLY_CONNECTED":
        return kernel.T
    if op in ("CONV_3D", "CONV_3D_TRANSPOSE"):  # D,H,W,I,O -> O,I,D,H,W; D,H,W,O,I -> I,O,D,H,W
        return kernel.transpose(4, 3, 0, 1, 2)
    raise ValueError(op)


# ---------------------------------------------------------------------------------------------
# An independent reader: the PyPI `tflite` package


@functools.lru_cache(maxsize=None)
def file_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _vec(obj, name):
    if getattr(obj, f"{name}IsNone")():
        return []
    return [int(x) for x in getattr(obj, f"{name}AsNumpy")()]


def _index_vector(kind: int, table) -> list[int]:
    import tflite
    if kind == 0 or table is None:
        return []
    cls = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}[kind]
    v = cls()
    v.Init(table.Bytes, table.Pos)
    return [int(x) for x in v.ValuesAsNumpy()] if v.ValuesLength() else []


class PkgModel:
    """A .tflite read with the `tflite` package: tensors with raw bytes, quantization, sparsity;
    operators with op names, inputs and outputs."""

    def __init__(self, data: bytes):
        import tflite
        self.data = data
        self.m = tflite.Model.GetRootAsModel(data, 0)
        names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
        self.opcodes = []
        for i in range(self.m.OperatorCodesLength()):
            oc = self.m.OperatorCodes(i)
            code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
            self.opcodes.append(names.get(code, f"UNKNOWN_{code}"))

    @classmethod
    @functools.lru_cache(maxsize=64)
    def load(cls, path: str) -> "PkgModel":
        return cls(file_bytes(path))

    def subgraph_count(self) -> int:
        return self.m.SubgraphsLength()

    def is_constant(self, sg: int, t: int) -> bool:
        bidx = int(self.m.Subgraphs(sg).Tensors(t).Buffer())
        if bidx == 0:
            return False
        buf = self.m.Buffers(bidx)
        return bool(buf.DataLength()) or (hasattr(buf, "Offset") and buf.Offset() > 1)

    @functools.lru_cache(maxsize=None)
    def ops(self, sg: int = 0) -> list[dict]:
        g = self.m.Subgraphs(sg)
        out = []
        for i in range(g.OperatorsLength()):
            op = g.Operators(i)
            out.append({"index": i, "op": self.opcodes[op.OpcodeIndex()], "inputs": _vec(op, "Inputs"),
                        "outputs": _vec(op, "Outputs")})
        return out

    def tensor(self, sg: int, t: int) -> dict:
        g = self.m.Subgraphs(sg)
        x = g.Tensors(t)
        bidx = int(x.Buffer())
        raw = b""
        if bidx > 0:
            buf = self.m.Buffers(bidx)
            off = buf.Offset() if hasattr(buf, "Offset") else 0
            if off > 1:
                raw = self.data[off:off + buf.Size()]
            elif buf.DataLength():
                raw = buf.DataAsNumpy().tobytes()
        q = x.Quantization()
        quant = None
        if q is not None:
            quant = {"scale": [] if q.ScaleIsNone() else [float(s) for s in q.ScaleAsNumpy().astype(np.float32)],
                     "zero_point": _vec(q, "ZeroPoint"), "axis": int(q.QuantizedDimension()),
                     "details_type": int(q.DetailsType())}
            if quant["details_type"] == 2:  # BlockwiseQuantization: read the raw table
                import flatbuffers
                tab = q.Details()
                fields = []
                for slot in (4, 6, 8):
                    o = tab.Offset(slot)
                    fields.append(int(tab.Get(flatbuffers.number_types.Int32Flags, o + tab.Pos)) if o else 0)
                quant["blockwise"] = dict(zip(("scales", "zero_points", "block_size"), fields))
        sp = x.Sparsity()
        sparsity = None
        if sp is not None:
            levels = []
            for i in range(sp.DimMetadataLength()):
                d = sp.DimMetadata(i)
                levels.append({"format": int(d.Format()), "dense_size": int(d.DenseSize()),
                               "segments": _index_vector(int(d.ArraySegmentsType()), d.ArraySegments()),
                               "indices": _index_vector(int(d.ArrayIndicesType()), d.ArrayIndices())})
            sparsity = {"traversal_order": _vec(sp, "TraversalOrder"), "block_map": _vec(sp, "BlockMap"),
                        "levels": levels}
        return {"index": t, "name": (x.Name() or b"").decode("utf-8", "replace"), "type": int(x.Type()),
                "shape": _vec(x, "Shape"), "raw": raw, "quant": quant, "sparsity": sparsity,
                "is_variable": bool(x.IsVariable())}

    @functools.lru_cache(maxsize=None)
    def producers(self, sg: int = 0) -> dict[int, dict]:
        out = {}
        for op in self.ops(sg):
            for t in op["outputs"]:
                out.setdefault(t, op)
        return out


def np_stored(t: dict) -> np.ndarray:
    """A tensor's stored values, dense, one element per value (packed types unpacked to
    int8/uint8), as the NumPy oracle decodes them."""
    shape = t["shape"]
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    typ, raw = t["type"], t["raw"]
    count = n
    if t["sparsity"] is not None:
        count = _leaf_count(t["sparsity"])
    if typ == INT4:
        flat = unpack_int4(raw, count) if len(raw) != count or count <= 1 else (
            (np.frombuffer(raw, np.uint8).astype(np.int16) << 12 >> 12).astype(np.int8))
    elif typ == UINT4:
        flat = unpack_uint4(raw, count) if len(raw) != count or count <= 1 else np.frombuffer(raw, np.uint8).copy()
    elif typ == INT2:
        flat = unpack_int2(raw, count)
    else:
        dt = np.uint16 if typ == BFLOAT16 else NUMPY_OF_TYPE[typ]  # bfloat16: its bit patterns
        flat = np.frombuffer(raw, dtype=np.dtype(dt).newbyteorder("<"))[:count].copy()
    if t["sparsity"] is not None:
        sp = t["sparsity"]
        return densify(shape, sp["traversal_order"], sp["block_map"], sp["levels"], flat)
    return flat.reshape(shape)


def _leaf_count(sp) -> int:
    """Stored values of a sparse tensor: the leaves of the walk."""
    count = 1
    for m in sp["levels"]:
        if m["format"] == 0:
            count *= m["dense_size"]
        else:
            count = m["segments"][count]  # (entries reaching the level) + 1 segments; last = total
    return count


def np_widened(t: dict) -> np.ndarray:
    a = np_stored(t)
    if t["type"] == FLOAT16:
        return a.astype(np.float32)
    if t["type"] == BFLOAT16:
        return widen_bf16(a.tobytes()).reshape(a.shape)
    return a


# ---------------------------------------------------------------------------------------------
# The LiteRT interpreter


def litert_invoke(model_path: str | None = None, model_content: bytes | None = None):
    """Builds a LiteRT interpreter without default delegates, preserving all tensors, feeds
    zeros to every input and runs it once. Returns the interpreter."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    kw = {"model_path": model_path} if model_path else {"model_content": model_content}
    it = Interpreter(**kw, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                     experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    for d in it.get_input_details():
        it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    it.invoke()
    return it


def conversion_only_model(pkg: PkgModel) -> tuple[bytes, dict[int, int]]:
    """A model holding only the DEQUANTIZE and DENSIFY operators of subgraph 0 of `pkg` and the
    tensors they touch (constants copied with data, quantization and sparsity), for models
    whose other operators LiteRT cannot run (unresolved custom ops). Returns the model and the
    map old tensor index -> new tensor index."""
    mb = ModelBuilder()
    remap: dict[int, int] = {}

    def copy(t: int) -> int:
        if t not in remap:
            x = pkg.tensor(0, t)
            q = None
            if x["quant"] and x["quant"]["scale"]:
                q = {"scale": x["quant"]["scale"], "zero_point": x["quant"]["zero_point"],
                     "axis": x["quant"]["axis"]}
            sp = None
            if x["sparsity"]:
                sp = dict(x["sparsity"])
                sp["levels"] = [dict(lv, index_type="i32") for lv in sp["levels"]]
            remap[t] = mb.tensor(x["name"], x["type"], x["shape"], x["raw"] or None, quant=q, sparsity=sp)
        return remap[t]

    outputs = []
    for op in pkg.ops(0):
        if op["op"] in ("DEQUANTIZE", "DENSIFY"):
            ins = [copy(t) for t in op["inputs"]]
            outs = [copy(t) for t in op["outputs"]]
            mb.op(op["op"], ins, outs)
            outputs += outs
    consumed = {i for g in mb.subgraphs for o in g["ops"] for i in o["inputs"]}
    mb.io([], [t for t in outputs if t not in consumed])
    return mb.build(), remap


# ---------------------------------------------------------------------------------------------
# Fixtures made by scripts/make-fixtures.py


@functools.lru_cache(maxsize=None)
def fixture_manifest() -> dict:
    path = os.path.join(FIXTURE_DIR, "manifest.json")
    if not os.path.isfile(path):
        pytest.fail(f"no fixtures in {FIXTURE_DIR}: run `make fixtures` (scripts/make-fixtures.py)")
    with open(path) as f:
        return json.load(f)


def fixture_path(name: str) -> str:
    path = os.path.join(FIXTURE_DIR, name)
    if not os.path.isfile(path):
        pytest.fail(f"fixture {path} is missing: run `make fixtures`")
    return path


@functools.lru_cache(maxsize=None)
def keras_weights(arch: str) -> dict[str, np.ndarray]:
    with np.load(fixture_path(f"{arch}_keras.npz")) as z:
        return {k: z[k] for k in z.files}


# ---------------------------------------------------------------------------------------------
# A model with one parameter of each kind, for the export and selection tests


EXPORT_ROLES = {"CONV_2D": ["input", "filter", "bias"], "DEPTHWISE_CONV_2D": ["input", "filter", "bias"],
                "FULLY_CONNECTED": ["input", "weights", "bias"], "PRELU": ["input", "alpha"],
                "ADD": ["x", "y"], "TRANSPOSE_CONV": ["output_shape", "filter", "input", "bias"]}


def build_export_model() -> bytes:
    """Subgraph 0 ("main"):
      op0 CONV_2D           "model/block1/relu;model/block1/conv;model/block1/bias"
                            filter float32 [2,3,3,3] "model/block1/conv/kernel", bias float32 [2]
      op1 DEPTHWISE_CONV_2D "model/block2/depthwise"  filter int8 [1,3,3,4] per-channel on 3,
                            bias int32 [4] per-channel
      op2 FULLY_CONNECTED   "model/head/dense/BiasAdd" weights int4 [3,8] per-channel on 0,
                            bias int64 [3] per-channel
      op3 DEQUANTIZE        fp16 [2,5] constant -> "model/fp16/dequantized"
      op4 ADD               "model/fp16/add"   y = op3's output (via DEQUANTIZE)
      op5 PRELU             "model/prelu"      alpha bfloat16 [5]
      op6 ADD               "model/uint8/add"  y uint8 [6] asymmetric per-tensor
      op7 ADD               "model/int2/add"   y int2 [7] per-tensor
      op8 ADD               "model/int16/add"  y int16 [2,3] per-tensor
      op9 ADD               "model/scalar/add" y float32 scalar (rank 0)
      op10 DENSIFY          sparse float32 [3,4] -> "model/sparse/densified"
      op11 ADD              "model/sparse/add" y = op10's output (via DENSIFY)
      op12 ADD              "model/uint4/add"  y uint4 [5] per-tensor, zero point 8
      op13 ADD              "model/bool/add"   y bool [4]
      op14 TRANSPOSE_CONV   "model/up/conv2d_transpose" filter float32 [2,2,2,3], bias [2]
    Subgraph 1 ("second"):
      op0 FULLY_CONNECTED   "second/dense"     weights float32 [2,3], no bias (-1)
    """
    rng = np.random.default_rng(77)
    mb = ModelBuilder()
    x = mb.tensor("input", FLOAT32, [1, 4, 4, 3])

    def out(name, shape=(1,)):
        return mb.tensor(name, FLOAT32, list(shape))

    w = mb.const("model/block1/conv/kernel", rng.normal(0, 1, (2, 3, 3, 3)).astype(np.float32))
    b = mb.const("model/block1/conv/bias", np.array([0.5, -0.25], np.float32))
    y1 = out("model/block1/relu;model/block1/conv;model/block1/bias", (1, 4, 4, 2))
    mb.op("CONV_2D", [x, w, b], [y1], options=conv_options(FusedActivationFunction=1))
    wq = mb.const("model/block2/depthwise/kernel", rng.integers(-127, 128, (1, 3, 3, 4)).astype(np.int8),
                  quant={"scale": [0.01, 0.02, 0.03, 0.04], "zero_point": [0] * 4, "axis": 3})
    bq = mb.const("model/block2/depthwise/bias", np.array([100, -200, 300, -2 ** 31], np.int32),
                  quant={"scale": [1e-4, 2e-4, 3e-4, 4e-4], "zero_point": [0] * 4, "axis": 0})
    y2 = out("model/block2/depthwise", (1, 4, 4, 4))
    mb.op("DEPTHWISE_CONV_2D", [y1, wq, bq], [y2],
          options=("DepthwiseConv2DOptions", {"StrideW": 1, "StrideH": 1, "DepthMultiplier": 2}))
    w4 = rng.integers(-8, 8, 24).astype(np.int8)
    w4t = mb.tensor("model/head/dense/kernel", INT4, [3, 8], pack_int4(w4),
                    quant={"scale": [0.5, 0.25, 0.125], "zero_point": [0, 0, 0], "axis": 0})
    b64 = mb.const("model/head/dense/bias", np.array([2 ** 40, -7, 3], np.int64),
                   quant={"scale": [1e-10, 0.5, 0.25], "zero_point": [0, 0, 0], "axis": 0})
    flat = out("model/head/flat", (8, 8))
    mb.op("FULLY_CONNECTED", [flat, w4t, b64], [out("model/head/dense/BiasAdd", (8, 3))],
          options=("FullyConnectedOptions", {}))
    h = mb.const("model/fp16/const", rng.normal(0, 2, (2, 5)).astype(np.float16))
    hd = out("model/fp16/dequantized", (2, 5))
    mb.op("DEQUANTIZE", [h], [hd])
    mb.op("ADD", [x, hd], [out("model/fp16/add")])
    bf = np.array([0x3F80, 0xC049, 0x7F80, 0x0001, 0x4120], np.uint16)
    alpha = mb.tensor("model/prelu/alpha", BFLOAT16, [5], bf.tobytes())
    mb.op("PRELU", [x, alpha], [out("model/prelu")])
    u8 = mb.const("model/uint8/const", np.array([0, 1, 127, 128, 200, 255], np.uint8),
                  quant={"scale": [0.1], "zero_point": [128]})
    mb.op("ADD", [x, u8], [out("model/uint8/add")])
    i2 = mb.tensor("model/int2/const", INT2, [7], pack_int2([-2, -1, 0, 1, 1, 0, -2]),
                   quant={"scale": [0.75], "zero_point": [0]})
    mb.op("ADD", [x, i2], [out("model/int2/add")])
    i16 = mb.const("model/int16/const", np.array([[-32768, -1, 0], [1, 1000, 32767]], np.int16),
                   quant={"scale": [0.001], "zero_point": [0]})
    mb.op("ADD", [x, i16], [out("model/int16/add")])
    sc = mb.const("model/scalar/const", np.array(3.5, np.float32))
    mb.op("ADD", [x, sc], [out("model/scalar/add")])
    sp = mb.tensor("model/sparse/const", FLOAT32, [3, 4], np.array([1, 2, 3], np.float32).tobytes(),
                   sparsity={"traversal_order": [0, 1], "block_map": [],
                             "levels": [{"format": 0, "dense_size": 3},
                                        {"format": 1, "segments": [0, 1, 1, 3], "indices": [2, 0, 3],
                                         "index_type": "u8"}]})
    spd = out("model/sparse/densified", (3, 4))
    mb.op("DENSIFY", [sp], [spd])
    mb.op("ADD", [x, spd], [out("model/sparse/add")])
    u4 = mb.tensor("model/uint4/const", UINT4, [5], pack_int4([0, 15, 8, 7, 1]),
                   quant={"scale": [0.5], "zero_point": [8]})
    mb.op("ADD", [x, u4], [out("model/uint4/add")])
    bo = mb.tensor("model/bool/const", BOOL, [4], bytes([1, 0, 0, 1]))
    mb.op("ADD", [x, bo], [out("model/bool/add")])
    oshape = mb.const("model/up/output_shape", np.array([1, 8, 8, 2], np.int32))
    tw = mb.const("model/up/kernel", rng.normal(0, 1, (2, 2, 2, 3)).astype(np.float32))
    tb = mb.const("model/up/bias", np.array([1.0, -1.0], np.float32))
    mb.op("TRANSPOSE_CONV", [oshape, tw, x, tb], [out("model/up/conv2d_transpose", (1, 8, 8, 2))],
          options=("TransposeConvOptions", {"StrideW": 2, "StrideH": 2}))
    mb.io([x], [])
    # Subgraph 1
    x1 = mb.tensor("second/input", FLOAT32, [1, 3], sg=1)
    w1 = mb.const("second/dense/kernel", np.array([[1, 2, 3], [4, 5, 6]], np.float32), sg=1)
    y = mb.tensor("second/dense", FLOAT32, [1, 2], sg=1)
    mb.op("FULLY_CONNECTED", [x1, w1, -1], [y], options=("FullyConnectedOptions", {}), sg=1)
    mb.io([x1], [y], sg=1)
    mb.name_subgraph(0, "main")
    mb.name_subgraph(1, "second")
    return mb.build()


def expected_params(pkg: PkgModel) -> dict[str, dict]:
    """Independently of litelens: every exported key "sg<s>.op<i>.<OP>/<role>" of a model built
    from EXPORT_ROLES ops, with the op input tensor, the constant it resolves to (through
    DEQUANTIZE / DENSIFY), the ops followed, and the constant read with the tflite package."""
    out = {}
    for sg in range(pkg.subgraph_count()):
        prod = pkg.producers(sg)
        for op in pkg.ops(sg):
            if op["op"] in ("DEQUANTIZE", "DENSIFY"):
                continue
            for pos, t in enumerate(op["inputs"]):
                if t < 0:
                    continue
                via, cur = [], t
                while not pkg.is_constant(sg, cur) and cur in prod and prod[cur]["op"] in ("DEQUANTIZE", "DENSIFY"):
                    via.append(prod[cur]["op"])
                    cur = prod[cur]["inputs"][0]
                if not pkg.is_constant(sg, cur):
                    continue
                role = EXPORT_ROLES[op["op"]][pos]
                out[f"sg{sg}.op{op['index']}.{op['op']}/{role}"] = {
                    "subgraph": sg, "layer": op["index"], "op": op["op"], "role": role, "tensor": t,
                    "stored_tensor": cur, "via": via, "constant": pkg.tensor(sg, cur)}
    return out
