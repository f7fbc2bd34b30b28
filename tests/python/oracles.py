"""Independent oracles describing a .tflite model, for cross-checking litelens.

Two oracles, neither sharing code with litelens:

* ``tflite_pkg_dump`` -- the PyPI ``tflite`` package (FlatBuffers-generated
  Python bindings of the TFLite schema).  A pure *parser* view: every tensor,
  buffer, operator, exactly as stored.  It also yields the absolute file
  offset of every constant buffer's data.

* ``litert_dump`` -- the PyPI ``ai-edge-litert`` runtime (the real TFLite C++
  InterpreterBuilder behind a pybind wrapper).  A *runtime* view.

LiteRT notes (ai-edge-litert 2.3.0, checked on the MediaPipe models):

* The interpreter is built with ``BUILTIN_WITHOUT_DEFAULT_DELEGATES`` so that
  no XNNPACK delegate rewrites the node list (with the default resolver every
  subgraph gets one extra "delegate" node after allocate_tensors()).
* Tensor details and constant data are read *before* ``allocate_tensors()``:
  at that point exactly the read-only (mmapped) constant tensors have a data
  pointer, every other tensor raises "Tensor data is null" -- which gives an
  independent notion of "is constant".  ``allocate_tensors()`` appends extra
  temporaries (im2col, dequantized weights, ...) to ``NumTensors()``, so the
  model's tensor count is ``NumTensors()`` taken before allocation.
* The Interpreter constructor succeeds even with unresolved custom ops; only
  ``allocate_tensors()`` fails ("Encountered unresolved custom op: X").  In
  that case the dump has ``"error"`` set and ``"loaded": false`` but still
  carries the pre-allocation tensor/op data, which is valid model data parsed
  by the real InterpreterBuilder.  We additionally try allocating with the
  default resolver (XNNPACK): it implements some MediaPipe custom ops
  (e.g. Convolution2DTransposeBias), so some models only load that way.
* ``get_tensor_details()`` silently drops tensors whose type can't be
  reported; we call ``_get_tensor_details`` per index instead so indices stay
  aligned with the model (missing ones are recorded as ``{"index", "error"}``).
* Node (operator) details are only exposed for the primary subgraph
  (``NumNodes()``/``NodeName(i)`` take no subgraph index); other subgraphs get
  ``"op_count": null``.  ``NodeName`` is the builtin op name (e.g. CONV_2D)
  or, for custom ops, the custom code.
* Sparse constant tensors: ``get_tensor`` returns the *stored* (compressed)
  values as a 1-D array whose bytes equal the stored buffer.
* String tensors: ``get_tensor`` returns numpy bytes objects, not the raw
  TFLite string buffer, so no hash is recorded for them (``"data": "string"``).
* INT4 / BFLOAT16 tensors: see the notes above ``compare_tensors``.
"""
from __future__ import annotations

import functools

import hashlib
import json
import os
import sys
from typing import Any

import numpy as np

# --------------------------------------------------------------------------
# Schema enums (taken from the tflite package, with fallbacks)
# --------------------------------------------------------------------------

_TENSOR_TYPES_FALLBACK = {
    0: "FLOAT32", 1: "FLOAT16", 2: "INT32", 3: "UINT8", 4: "INT64", 5: "STRING",
    6: "BOOL", 7: "INT16", 8: "COMPLEX64", 9: "INT8", 10: "FLOAT64",
    11: "COMPLEX128", 12: "UINT64", 13: "RESOURCE", 14: "VARIANT", 15: "UINT32",
    16: "UINT16", 17: "INT4", 18: "BFLOAT16",
}


def _enum_names(cls) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items()
            if not k.startswith("_") and isinstance(v, int)}


def tensor_type_names() -> dict[int, str]:
    import tflite
    names = dict(_TENSOR_TYPES_FALLBACK)
    names.update(_enum_names(tflite.TensorType))
    return names


def builtin_op_names() -> dict[int, str]:
    import tflite
    return _enum_names(tflite.BuiltinOperator)


# Our CLI's dtype (lowercased schema TensorType name) -> numpy dtype name the
# LiteRT Python wrapper reports.  None = "don't compare" (documented quirk).
DTYPE_TO_NUMPY = {
    "float32": "float32", "float16": "float16", "float64": "float64",
    "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64",
    "uint8": "uint8", "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
    "bool": "bool", "complex64": "complex64", "complex128": "complex128",
    "string": "bytes",       # numpy 'bytes_'/'bytesN' -> compared by prefix
    "resource": "object", "variant": "object",
    "int4": None,            # wrapper has no int4 numpy type; see probe
    "bfloat16": None,        # ditto
}


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _s(b) -> str | None:
    if b is None:
        return None
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b)


def _ints(a) -> list[int]:
    return [int(x) for x in np.asarray(a).reshape(-1)]


def _floats(a) -> list[float]:
    # float32 -> python float is exact; JSON repr round-trips it exactly.
    return [float(x) for x in np.asarray(a, dtype=np.float32).reshape(-1)]


# --------------------------------------------------------------------------
# Oracle 1: the `tflite` package (FlatBuffers bindings)
# --------------------------------------------------------------------------

def _vector_pos(obj, vtable_slot: int) -> int | None:
    """Absolute position (in the underlying byte buffer) of the first element
    of a FlatBuffers vector field, or None when the field is absent."""
    tab = obj._tab
    o = tab.Offset(vtable_slot)
    if o == 0:
        return None
    return tab.Vector(o)


def _raw_builtin_code(oc) -> int:
    """OperatorCode.builtin_code (field 3, vtable slot 10) as stored; 0 if absent."""
    import flatbuffers
    tab = oc._tab
    o = tab.Offset(10)
    return int(tab.Get(flatbuffers.number_types.Int32Flags, o + tab.Pos)) if o else 0


def _buffer_info(model, data: bytes, index: int) -> dict:
    """Location and hash of buffer `index`'s bytes.  Data either inline
    (Buffer.data vector) or, for >2GB style models, at Buffer.offset/size
    (offset > 1; offset == 1 is a placeholder meaning 'no data')."""
    buf = model.Buffers(index)
    info: dict[str, Any] = {"index": index, "data_offset": None, "nbytes": 0,
                            "sha256": None, "external": False}
    if buf is None:
        return info
    off = buf.Offset() if hasattr(buf, "Offset") else 0
    size = buf.Size() if hasattr(buf, "Size") else 0
    if off > 1:
        raw = data[off:off + size]
        info.update(data_offset=int(off), nbytes=len(raw), sha256=sha256(raw),
                    external=True)
        return info
    n = buf.DataLength()
    if n > 0:
        raw = buf.DataAsNumpy().tobytes()
        pos = _vector_pos(buf, 4)  # Buffer.data is field 0 -> vtable slot 4
        assert pos is not None and data[pos:pos + n] == raw, "buffer position"
        info.update(data_offset=int(pos), nbytes=len(raw), sha256=sha256(raw))
    return info


def _quant_pkg(q) -> dict | None:
    if q is None:
        return None
    out = {
        "scale": [] if q.ScaleIsNone() else _floats(q.ScaleAsNumpy()),
        "zero_point": [] if q.ZeroPointIsNone() else _ints(q.ZeroPointAsNumpy()),
        "quantized_dimension": int(q.QuantizedDimension()),
        "min": [] if q.MinIsNone() else _floats(q.MinAsNumpy()),
        "max": [] if q.MaxIsNone() else _floats(q.MaxAsNumpy()),
        "details_type": int(q.DetailsType()),
    }
    return out


def _sparsity_pkg(sp) -> dict | None:
    if sp is None:
        return None
    dims = []
    for i in range(sp.DimMetadataLength()):
        d = sp.DimMetadata(i)
        dims.append({"format": int(d.Format()), "dense_size": int(d.DenseSize()),
                     "array_segments_type": int(d.ArraySegmentsType()),
                     "array_indices_type": int(d.ArrayIndicesType())})
    return {
        "traversal_order": [] if sp.TraversalOrderIsNone() else _ints(sp.TraversalOrderAsNumpy()),
        "block_map": [] if sp.BlockMapIsNone() else _ints(sp.BlockMapAsNumpy()),
        "dim_metadata": dims,
    }


def tflite_pkg_dump(path: str, data: bytes | None = None) -> dict:
    import tflite
    if data is None:
        with open(path, "rb") as f:
            data = f.read()
    tnames = tensor_type_names()
    onames = builtin_op_names()
    model = tflite.Model.GetRootAsModel(data, 0)

    opcodes = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        # The tflite package's BuiltinCode() already falls back to
        # DeprecatedBuiltinCode() for values < 127; read the raw field instead
        # and resolve as the schema says: max(builtin_code, deprecated_builtin_code).
        raw = _raw_builtin_code(oc)
        code = max(raw, int(oc.DeprecatedBuiltinCode()))
        opcodes.append({
            "builtin_code": raw,
            "deprecated_builtin_code": int(oc.DeprecatedBuiltinCode()),
            "op": onames.get(code, f"UNKNOWN_{code}"),
            "custom_code": _s(oc.CustomCode()),
            "version": int(oc.Version()),
        })

    buffers_cache: dict[int, dict] = {}

    def binfo(i: int) -> dict:
        if i not in buffers_cache:
            buffers_cache[i] = _buffer_info(model, data, i)
        return buffers_cache[i]

    subgraphs = []
    for si in range(model.SubgraphsLength()):
        sg = model.Subgraphs(si)
        tensors = []
        for ti in range(sg.TensorsLength()):
            t = sg.Tensors(ti)
            tcode = int(t.Type())
            bidx = int(t.Buffer())
            b = binfo(bidx) if 0 < bidx < model.BuffersLength() else None
            const = bool(b and b["sha256"] is not None)
            tensors.append({
                "index": ti,
                "name": _s(t.Name()),
                "shape": [] if t.ShapeIsNone() else _ints(t.ShapeAsNumpy()),
                "shape_signature": None if t.ShapeSignatureIsNone() else _ints(t.ShapeSignatureAsNumpy()),
                "type": tcode,
                "type_name": tnames.get(tcode, f"TYPE_{tcode}"),
                "buffer": bidx,
                "is_variable": bool(t.IsVariable()),
                "quantization": _quant_pkg(t.Quantization()),
                "sparsity": _sparsity_pkg(t.Sparsity()),
                "is_constant": const,
                "data_offset": b["data_offset"] if const else None,
                "nbytes": b["nbytes"] if const else 0,
                "sha256": b["sha256"] if const else None,
            })
        operators = []
        for oi in range(sg.OperatorsLength()):
            op = sg.Operators(oi)
            oc = opcodes[int(op.OpcodeIndex())]
            operators.append({
                "index": oi,
                "opcode_index": int(op.OpcodeIndex()),
                "op": oc["op"],
                "custom_code": oc["custom_code"],
                "version": oc["version"],
                "inputs": [] if op.InputsIsNone() else _ints(op.InputsAsNumpy()),
                "outputs": [] if op.OutputsIsNone() else _ints(op.OutputsAsNumpy()),
                "intermediates": [] if op.IntermediatesIsNone() else _ints(op.IntermediatesAsNumpy()),
                "builtin_options_type": int(op.BuiltinOptionsType()),
                "custom_options_len": int(op.CustomOptionsLength()),
            })
        subgraphs.append({
            "index": si,
            "name": _s(sg.Name()),
            "inputs": [] if sg.InputsIsNone() else _ints(sg.InputsAsNumpy()),
            "outputs": [] if sg.OutputsIsNone() else _ints(sg.OutputsAsNumpy()),
            "tensor_count": sg.TensorsLength(),
            "op_count": sg.OperatorsLength(),
            "tensors": tensors,
            "operators": operators,
        })

    metadata = []
    for i in range(model.MetadataLength()):
        md = model.Metadata(i)
        bi = int(md.Buffer())
        metadata.append({"name": _s(md.Name()), "buffer": bi,
                         "nbytes": binfo(bi)["nbytes"] if 0 <= bi < model.BuffersLength() else None})
    sigs = []
    for i in range(model.SignatureDefsLength()):
        sd = model.SignatureDefs(i)
        sigs.append({
            "key": _s(sd.SignatureKey()),
            "subgraph_index": int(sd.SubgraphIndex()),
            "inputs": [{"name": _s(sd.Inputs(j).Name()), "tensor_index": int(sd.Inputs(j).TensorIndex())}
                       for j in range(sd.InputsLength())],
            "outputs": [{"name": _s(sd.Outputs(j).Name()), "tensor_index": int(sd.Outputs(j).TensorIndex())}
                        for j in range(sd.OutputsLength())],
        })
    return {
        "version": int(model.Version()),
        "description": _s(model.Description()),
        "buffer_count": model.BuffersLength(),
        "operator_codes": opcodes,
        "metadata": metadata,
        "signature_defs": sigs,
        "subgraphs": subgraphs,
    }


# --------------------------------------------------------------------------
# Oracle 2: LiteRT interpreter (ai-edge-litert)
# --------------------------------------------------------------------------

def _litert_quant(qp: dict) -> dict:
    return {
        "scales": _floats(qp["scales"]),
        "zero_points": _ints(qp["zero_points"]),
        "quantized_dimension": int(qp["quantized_dimension"]),
    }


def _litert_const(it, ti: int, si: int):
    """(kind, sha256, nbytes) for a constant tensor, or None if the tensor has
    no data (=> not a constant, when called before allocate_tensors)."""
    try:
        a = it.get_tensor(ti, si)
    except ValueError:
        return None
    if a.dtype.kind in ("S", "U", "O"):
        return ("string", None, None)
    raw = np.ascontiguousarray(a).tobytes()
    return ("bytes", sha256(raw), len(raw))


def litert_dump(path: str) -> dict:
    try:
        import ai_edge_litert
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except Exception as e:  # pragma: no cover - environment problem
        return {"error": f"import ai_edge_litert failed: {e!r}", "loaded": False}
    version = getattr(ai_edge_litert, "__version__", None)
    if version is None:
        try:
            from importlib.metadata import version as _v
            version = _v("ai-edge-litert")
        except Exception:
            version = None
    out: dict[str, Any] = {"package_version": version,
                           "op_resolver": "BUILTIN_WITHOUT_DEFAULT_DELEGATES"}
    try:
        it = Interpreter(model_path=path,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    except Exception as e:
        out.update(error=f"{type(e).__name__}: {e}", loaded=False)
        return out
    w = it._interpreter
    tnames_np = lambda d: np.dtype(d).name  # noqa: E731

    subgraphs = []
    for si in range(it.num_subgraphs()):
        n = int(w.NumTensors(si))
        tensors = []
        for ti in range(n):
            try:
                d = it._get_tensor_details(ti, si)
            except ValueError as e:
                tensors.append({"index": ti, "error": str(e)})
                continue
            sp = d.get("sparsity_parameters") or {}
            entry = {
                "index": ti,
                "name": d["name"],
                "shape": _ints(d["shape"]),
                "shape_signature": _ints(d["shape_signature"]),
                "dtype": tnames_np(d["dtype"]),
                "quantization_parameters": _litert_quant(d["quantization_parameters"]),
                "has_sparsity": bool(sp),
                "is_constant": False,
            }
            c = _litert_const(it, ti, si)
            if c is not None:
                entry["is_constant"] = True
                if c[0] == "string":
                    entry["data"] = "string"
                else:
                    entry["sha256"], entry["nbytes"] = c[1], c[2]
            tensors.append(entry)
        sgd: dict[str, Any] = {"index": si, "tensor_count": n, "tensors": tensors,
                               "op_count": None, "operators": None}
        if si == 0:
            ops = []
            for ni in range(int(w.NumNodes())):
                ops.append({"index": ni, "op_name": w.NodeName(ni),
                            "inputs": _ints(w.NodeInputs(ni)),
                            "outputs": _ints(w.NodeOutputs(ni))})
            sgd["op_count"] = len(ops)
            sgd["operators"] = ops
        subgraphs.append(sgd)
    out["subgraphs"] = subgraphs

    # allocate_tensors() refuses to run while anything else holds a reference
    # to the wrapper object (its _safe_to_run() checks the refcount).
    del w
    try:
        it.allocate_tensors()
        out["loaded"] = True
        # Constants must read back identically after allocation.
        changed = []
        for sg in subgraphs:
            for t in sg["tensors"]:
                if t.get("sha256"):
                    c = _litert_const(it, t["index"], sg["index"])
                    if c is None or c[1] != t["sha256"]:
                        changed.append([sg["index"], t["index"]])
        out["constants_changed_after_allocate"] = changed
    except Exception as e:
        out["loaded"] = False
        out["error"] = f"{type(e).__name__}: {e}"
    del it

    # Does the default resolver (with XNNPACK, which implements some MediaPipe
    # custom ops) manage to allocate?
    try:
        it2 = Interpreter(model_path=path)
        it2.allocate_tensors()
        out["allocate_with_default_delegates"] = "ok"
    except Exception as e:
        out["allocate_with_default_delegates"] = f"{type(e).__name__}: {e}"
    return out


# --------------------------------------------------------------------------
# Summary / whole dump
# --------------------------------------------------------------------------

def summarize(pkg: dict) -> dict:
    fp16_deq = 0
    sparse = []
    custom = set()
    dtypes: dict[str, int] = {}
    ops_hist: dict[str, int] = {}
    quantized = per_axis = 0
    for sg in pkg["subgraphs"]:
        consumers: dict[int, set] = {}
        for op in sg["operators"]:
            name = op["custom_code"] if op["op"] == "CUSTOM" else op["op"]
            ops_hist[name] = ops_hist.get(name, 0) + 1
            if op["op"] == "CUSTOM":
                custom.add(op["custom_code"])
            for i in op["inputs"]:
                consumers.setdefault(i, set()).add(op["op"])
        for t in sg["tensors"]:
            dtypes[t["type_name"]] = dtypes.get(t["type_name"], 0) + 1
            if t["type_name"] == "FLOAT16" and t["is_constant"] and "DEQUANTIZE" in consumers.get(t["index"], ()):
                fp16_deq += 1
            if t["sparsity"] is not None:
                sparse.append(f"{sg['index']}:{t['index']}")
            q = t["quantization"]
            if q and q["scale"]:
                quantized += 1
                if len(q["scale"]) > 1:
                    per_axis += 1
    return {
        "subgraphs": len(pkg["subgraphs"]),
        "tensor_counts": [sg["tensor_count"] for sg in pkg["subgraphs"]],
        "op_counts": [sg["op_count"] for sg in pkg["subgraphs"]],
        "constant_tensors": sum(t["is_constant"] for sg in pkg["subgraphs"] for t in sg["tensors"]),
        "buffers": pkg["buffer_count"],
        "dtypes": dict(sorted(dtypes.items())),
        "fp16_constants_into_dequantize": fp16_deq,
        "is_fp16": fp16_deq > 0,
        "sparse_tensors": len(sparse),
        "quantized_tensors": quantized,
        "per_axis_quantized_tensors": per_axis,
        "custom_ops": sorted(custom),
        "ops": dict(sorted(ops_hist.items())),
        "metadata_names": [m["name"] for m in pkg["metadata"]],
        "signature_keys": [s["key"] for s in pkg["signature_defs"]],
        "description": pkg["description"],
        "schema_version": pkg["version"],
    }


def dump(path: str, with_litert: bool = True) -> dict:
    with open(path, "rb") as f:
        data = f.read()
    pkg = tflite_pkg_dump(path, data)
    out = {
        "model": os.path.abspath(path),
        "file_size": len(data),
        "file_sha256": sha256(data),
        "summary": summarize(pkg),
        "tflite_pkg": pkg,
    }
    if with_litert:
        out["litert"] = litert_dump(path)
    return out


# --------------------------------------------------------------------------
# Cross-checking litelens JSON against the oracles
# --------------------------------------------------------------------------
#
# Contract of `litelens tensors MODEL --json`:
#   {"subgraphs":[{"index","name","tensors":[{"index","name","shape",
#     "shape_signature","dtype","buffer","nbytes","data_offset","is_variable",
#     "is_constant","quantization":null|{"scale","zero_point",
#     "quantized_dimension",...},"sparsity":null|{...}}]}]}
# Contract of `litelens ops MODEL --json`:
#   {"subgraphs":[{"index","operators":[{"index","op","custom_code",
#     "version","inputs","outputs","options"}]}]}
#
# Normalisations (documented, deliberate):
# * quantization: null == a table with empty scale and zero_point (converters
#   emit empty QuantizationParameters tables for float tensors).
# * shape_signature absent in the file: ours may be null, [] or == shape;
#   LiteRT reports shape there.
# * names: absent == "" (LiteRT reports "").
# * LiteRT dtype is a numpy name (DTYPE_TO_NUMPY).  INT4: LiteRT reports int8
#   and get_tensor returns the constant *unpacked* (one sign-extended int8 per
#   value, low nibble first), so we compare against unpack_int4(our bytes).
#   BFLOAT16: the wrapper cannot describe the tensor at all ("Invalid
#   data-type for array"); only the tflite package checks it.  STRING:
#   LiteRT gives numpy bytes objects, so constant bytes are checked against
#   the tflite package only.
# * Ops vs LiteRT only for subgraph 0 (the Python API exposes no other).

_MAX_REPORT = 40


def _f32_bits(vals) -> tuple:
    return tuple(int(x) for x in np.asarray([float(v) for v in vals], dtype=np.float32).view(np.uint32))


def norm_quant(q) -> tuple | None:
    """(scale float32 bit patterns, zero points, quantized_dimension) or None."""
    if not q:
        return None
    scale = q.get("scale", q.get("scales")) or []
    zp = q.get("zero_point", q.get("zero_points")) or []
    if not scale and not zp:
        return None
    return (_f32_bits(scale), tuple(int(z) for z in zp), int(q.get("quantized_dimension", 0)))


def unpack_int4(raw: bytes, count: int) -> bytes:
    vals = []
    for i in range(count):
        byte = raw[i // 2]
        v = (byte & 0x0F) if i % 2 == 0 else (byte >> 4)
        vals.append(v - 16 if v >= 8 else v)
    return np.asarray(vals, dtype=np.int8).tobytes()


def _n_elems(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


_DIM_FORMATS = {0: "DENSE", 1: "SPARSE_CSR"}


def _check_sparsity(where, ours, pkg_sp, errs):
    if (ours is None) != (pkg_sp is None):
        errs.append(f"{where}: sparsity present ours={ours is not None} tflite={pkg_sp is not None}")
        return
    if ours is None or not isinstance(ours, dict):
        return
    for key in ("traversal_order", "block_map"):
        if key in ours and list(ours[key] or []) != pkg_sp[key]:
            errs.append(f"{where}: sparsity.{key} ours={ours[key]} tflite={pkg_sp[key]}")
    dims = ours.get("dim_metadata")
    if isinstance(dims, list):
        if len(dims) != len(pkg_sp["dim_metadata"]):
            errs.append(f"{where}: sparsity.dim_metadata len ours={len(dims)} tflite={len(pkg_sp['dim_metadata'])}")
        else:
            for k, (a, b) in enumerate(zip(dims, pkg_sp["dim_metadata"])):
                if "format" in a:
                    fa = a["format"]
                    fa = _DIM_FORMATS.get(fa, fa) if isinstance(fa, int) else str(fa).upper()
                    if fa != _DIM_FORMATS.get(b["format"], b["format"]):
                        errs.append(f"{where}: sparsity.dim_metadata[{k}].format ours={a['format']} tflite={b['format']}")
                if "dense_size" in a and b["format"] == 0 and int(a["dense_size"]) != b["dense_size"]:
                    errs.append(f"{where}: sparsity.dim_metadata[{k}].dense_size ours={a['dense_size']} tflite={b['dense_size']}")


def compare_tensors(ours: dict, pkg: dict, litert: dict | None, file_bytes: bytes) -> list[str]:
    """All differences between our `tensors --json` and the oracles."""
    errs: list[str] = []
    osgs = ours.get("subgraphs")
    if not isinstance(osgs, list):
        return ["ours: no 'subgraphs' list"]
    psgs = pkg["subgraphs"]
    lsgs = (litert or {}).get("subgraphs")
    if len(osgs) != len(psgs):
        errs.append(f"subgraph count ours={len(osgs)} tflite={len(psgs)}")
    if lsgs is not None and len(lsgs) != len(psgs):
        errs.append(f"subgraph count litert={len(lsgs)} tflite={len(psgs)}")
    for si, (osg, psg) in enumerate(zip(osgs, psgs)):
        if osg.get("index", si) != si:
            errs.append(f"sg{si}: index ours={osg.get('index')}")
        if (osg.get("name") or "") != (psg["name"] or ""):
            errs.append(f"sg{si}: name ours={osg.get('name')!r} tflite={psg['name']!r}")
        ots = osg.get("tensors") or []
        pts = psg["tensors"]
        if len(ots) != len(pts):
            errs.append(f"sg{si}: tensor count ours={len(ots)} tflite={len(pts)}")
        lts = None
        if lsgs is not None and si < len(lsgs):
            lts = lsgs[si]["tensors"]
            if len(lts) != len(pts):
                errs.append(f"sg{si}: tensor count litert={len(lts)} tflite={len(pts)}")
        for ti, (ot, pt) in enumerate(zip(ots, pts)):
            w = f"sg{si} t{ti} {pt['name']!r}"
            if ot.get("index", ti) != ti:
                errs.append(f"{w}: index ours={ot.get('index')}")
            if (ot.get("name") or "") != (pt["name"] or ""):
                errs.append(f"{w}: name ours={ot.get('name')!r}")
            if list(ot.get("shape") or []) != pt["shape"]:
                errs.append(f"{w}: shape ours={ot.get('shape')} tflite={pt['shape']}")
            osig = ot.get("shape_signature")
            if pt["shape_signature"] is not None:
                if osig is None or list(osig) != pt["shape_signature"]:
                    errs.append(f"{w}: shape_signature ours={osig} tflite={pt['shape_signature']}")
            elif osig not in (None, []) and list(osig) != pt["shape"]:
                errs.append(f"{w}: shape_signature ours={osig} but file has none (shape {pt['shape']})")
            dtype = ot.get("dtype")
            if dtype != pt["type_name"].lower():
                errs.append(f"{w}: dtype ours={dtype} tflite={pt['type_name'].lower()}")
            if ot.get("buffer") != pt["buffer"]:
                errs.append(f"{w}: buffer ours={ot.get('buffer')} tflite={pt['buffer']}")
            if bool(ot.get("is_variable")) != pt["is_variable"]:
                errs.append(f"{w}: is_variable ours={ot.get('is_variable')} tflite={pt['is_variable']}")
            if norm_quant(ot.get("quantization")) != norm_quant(pt["quantization"]):
                errs.append(f"{w}: quantization ours={ot.get('quantization')} tflite={pt['quantization']}")
            oq = ot.get("quantization") or {}
            for key in ("min", "max"):
                if key in oq and pt["quantization"] is not None and \
                        _f32_bits(oq[key] or []) != _f32_bits(pt["quantization"][key]):
                    errs.append(f"{w}: quantization.{key} ours={oq[key]} tflite={pt['quantization'][key]}")
            _check_sparsity(w, ot.get("sparsity"), pt["sparsity"], errs)

            # constant data
            if bool(ot.get("is_constant")) != pt["is_constant"]:
                errs.append(f"{w}: is_constant ours={ot.get('is_constant')} tflite={pt['is_constant']}")
            off, nb = ot.get("data_offset"), ot.get("nbytes")
            our_raw = None
            if pt["is_constant"]:
                if off != pt["data_offset"] or nb != pt["nbytes"]:
                    errs.append(f"{w}: data_offset/nbytes ours={off}/{nb} tflite={pt['data_offset']}/{pt['nbytes']}")
                if isinstance(off, int) and isinstance(nb, int) and off >= 0 and nb >= 0 \
                        and off + nb <= len(file_bytes):
                    our_raw = file_bytes[off:off + nb]
                    if sha256(our_raw) != pt["sha256"]:
                        errs.append(f"{w}: constant bytes sha256 differs from tflite package")
                else:
                    errs.append(f"{w}: constant data range invalid: offset={off} nbytes={nb}")
            elif off is not None:
                errs.append(f"{w}: data_offset={off} but tensor has no constant data")

            # LiteRT
            if lts is None or ti >= len(lts):
                continue
            lt = lts[ti]
            if "error" in lt:
                # only BFLOAT16 is known to be undescribable by the wrapper
                if pt["type_name"] != "BFLOAT16":
                    errs.append(f"{w}: litert could not describe tensor ({lt['error']}) dtype={dtype}")
                continue
            if (lt["name"] or "") != (ot.get("name") or ""):
                errs.append(f"{w}: name ours={ot.get('name')!r} litert={lt['name']!r}")
            if lt["shape"] != list(ot.get("shape") or []):
                errs.append(f"{w}: shape ours={ot.get('shape')} litert={lt['shape']}")
            want_sig = pt["shape_signature"] if pt["shape_signature"] is not None else pt["shape"]
            if lt["shape_signature"] != want_sig:
                errs.append(f"{w}: shape_signature litert={lt['shape_signature']} tflite={want_sig}")
            if dtype == "int4":
                want_np = "int8"
            else:
                want_np = DTYPE_TO_NUMPY.get(dtype, dtype)
            if want_np is not None and not str(lt["dtype"]).startswith(want_np):
                errs.append(f"{w}: dtype ours={dtype} litert={lt['dtype']}")
            if norm_quant(ot.get("quantization")) != norm_quant(lt["quantization_parameters"]):
                errs.append(f"{w}: quantization ours={ot.get('quantization')} litert={lt['quantization_parameters']}")
            if (ot.get("sparsity") is not None) != lt["has_sparsity"]:
                errs.append(f"{w}: sparsity present ours={ot.get('sparsity') is not None} litert={lt['has_sparsity']}")
            if not pt["is_variable"] and bool(ot.get("is_constant")) != lt["is_constant"]:
                errs.append(f"{w}: is_constant ours={ot.get('is_constant')} litert={lt['is_constant']}")
            if our_raw is not None and lt.get("sha256"):
                if dtype == "int4" and ot.get("sparsity") is None:
                    cmp_raw = unpack_int4(our_raw, _n_elems(ot.get("shape") or []))
                else:
                    cmp_raw = our_raw
                if sha256(cmp_raw) != lt["sha256"]:
                    errs.append(f"{w}: constant bytes sha256 differs from litert get_tensor")
    return errs


def compare_ops(ours: dict, pkg: dict, litert: dict | None) -> list[str]:
    errs: list[str] = []
    osgs = ours.get("subgraphs")
    if not isinstance(osgs, list):
        return ["ours: no 'subgraphs' list"]
    psgs = pkg["subgraphs"]
    lsgs = (litert or {}).get("subgraphs")
    if len(osgs) != len(psgs):
        errs.append(f"subgraph count ours={len(osgs)} tflite={len(psgs)}")
    for si, (osg, psg) in enumerate(zip(osgs, psgs)):
        oops = osg.get("operators") or []
        pops = psg["operators"]
        if len(oops) != len(pops):
            errs.append(f"sg{si}: op count ours={len(oops)} tflite={len(pops)}")
        lops = None
        if lsgs is not None and si < len(lsgs) and lsgs[si].get("operators") is not None:
            lops = lsgs[si]["operators"]
            if len(lops) != len(pops):
                errs.append(f"sg{si}: op count litert={len(lops)} tflite={len(pops)}")
        for oi, (oo, po) in enumerate(zip(oops, pops)):
            w = f"sg{si} op{oi}"
            if oo.get("index", oi) != oi:
                errs.append(f"{w}: index ours={oo.get('index')}")
            lname = lops[oi]["op_name"] if lops is not None and oi < len(lops) else None
            if po["op"].startswith("UNKNOWN_"):
                # newer builtin than the tflite package knows: trust LiteRT if any
                if lname is not None and oo.get("op") != lname:
                    errs.append(f"{w}: op ours={oo.get('op')} litert={lname}")
            elif oo.get("op") != po["op"]:
                errs.append(f"{w}: op ours={oo.get('op')} tflite={po['op']}")
            if oo.get("custom_code") != po["custom_code"]:
                errs.append(f"{w}: custom_code ours={oo.get('custom_code')!r} tflite={po['custom_code']!r}")
            if oo.get("version") != po["version"]:
                errs.append(f"{w}: version ours={oo.get('version')} tflite={po['version']}")
            if list(oo.get("inputs") or []) != po["inputs"]:
                errs.append(f"{w}: inputs ours={oo.get('inputs')} tflite={po['inputs']}")
            if list(oo.get("outputs") or []) != po["outputs"]:
                errs.append(f"{w}: outputs ours={oo.get('outputs')} tflite={po['outputs']}")
            if "intermediates" in oo and list(oo["intermediates"] or []) != po["intermediates"]:
                errs.append(f"{w}: intermediates ours={oo.get('intermediates')} tflite={po['intermediates']}")
            if lops is not None and oi < len(lops):
                lo = lops[oi]
                want = oo.get("custom_code") if oo.get("op") == "CUSTOM" else oo.get("op")
                if lo["op_name"] != want:
                    errs.append(f"{w}: op ours={want} litert={lo['op_name']}")
                if lo["inputs"] != list(oo.get("inputs") or []):
                    errs.append(f"{w}: inputs ours={oo.get('inputs')} litert={lo['inputs']}")
                if lo["outputs"] != list(oo.get("outputs") or []):
                    errs.append(f"{w}: outputs ours={oo.get('outputs')} litert={lo['outputs']}")
    return errs


def contract_from_pkg(pkg: dict) -> tuple[dict, dict]:
    """The `tensors --json` and `ops --json` documents a correct litelens
    would print, built from the tflite-package oracle.  Used as a positive
    control (oracle vs oracle) and as the base for mutation self-tests."""
    tensors = {"subgraphs": []}
    ops = {"subgraphs": []}
    for sg in pkg["subgraphs"]:
        ts = []
        for t in sg["tensors"]:
            q = t["quantization"]
            ts.append({
                "index": t["index"], "name": t["name"] or "",
                "shape": list(t["shape"]),
                "shape_signature": list(t["shape_signature"] if t["shape_signature"] is not None else t["shape"]),
                "dtype": t["type_name"].lower(), "buffer": t["buffer"],
                "nbytes": t["nbytes"], "data_offset": t["data_offset"],
                "is_variable": t["is_variable"], "is_constant": t["is_constant"],
                "quantization": None if norm_quant(q) is None else
                {"scale": list(q["scale"]), "zero_point": list(q["zero_point"]),
                 "quantized_dimension": q["quantized_dimension"]},
                "sparsity": None if t["sparsity"] is None else json.loads(json.dumps(t["sparsity"])),
            })
        tensors["subgraphs"].append({"index": sg["index"], "name": sg["name"] or "", "tensors": ts})
        ops["subgraphs"].append({"index": sg["index"], "operators": [
            {"index": o["index"], "op": o["op"], "custom_code": o["custom_code"],
             "version": o["version"], "inputs": list(o["inputs"]), "outputs": list(o["outputs"]),
             "options": {}} for o in sg["operators"]]})
    return tensors, ops


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description="Dump a .tflite model as two oracles see it (JSON).")
    ap.add_argument("model")
    ap.add_argument("--no-litert", action="store_true", help="skip the LiteRT interpreter oracle")
    ap.add_argument("--summary", action="store_true", help="print only the summary + litert status")
    ap.add_argument("-o", "--output", help="write JSON here instead of stdout")
    a = ap.parse_args(argv)
    d = dump(a.model, with_litert=not a.no_litert)
    if a.summary:
        lit = d.get("litert", {})
        d = {"model": d["model"], "file_size": d["file_size"], "summary": d["summary"],
             "litert": {k: v for k, v in lit.items() if k != "subgraphs"}}
    text = json.dumps(d, indent=1)
    if a.output:
        with open(a.output, "w") as f:
            f.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def metadata_entries(path: str) -> dict[str, bytes]:
    """name -> bytes of each Model.metadata entry (the first of a repeated name), read with the
    ``tflite`` package: inline buffer data, or the offset/size of data outside the flatbuffer."""
    import tflite

    data = file_bytes(path)
    model = tflite.Model.GetRootAsModel(data, 0)
    out: dict[str, bytes] = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        buf = model.Buffers(entry.Buffer())
        if buf.DataLength():
            raw = buf.DataAsNumpy().tobytes()
        elif buf.Offset() > 1:
            raw = bytes(data[buf.Offset(): buf.Offset() + buf.Size()])
        else:
            raw = b""
        out.setdefault(entry.Name().decode(), raw)
    return out


# ---- cached per path: the suites ask for the same model's dumps from many tests ------------------

@functools.lru_cache(maxsize=None)
def file_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


@functools.lru_cache(maxsize=None)
def tflite_pkg_cached(path: str) -> dict:
    return tflite_pkg_dump(path, file_bytes(path))


@functools.lru_cache(maxsize=None)
def litert_cached(path: str) -> dict:
    return litert_dump(path)
