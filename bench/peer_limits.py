#!/usr/bin/env python3
"""What the peers return where a model is not plain: checked on real files, not assumed.

    bench/peer_limits.py [--json]   (models from ${LITELENS_CACHE:-~/.cache/litelens})

Each probe runs the peer's usual recipe and compares what comes back with the values stored in
the file (read with the litelens Python package when it is installed, else described only):
  fp16      CONV_2D filters stored as float16 behind DEQUANTIZE (pose_landmark_heavy)
  sparse    CONV_2D filters stored sparse behind DENSIFY (face_detection_full_range_sparse)
  custom    a model with custom ops (face_landmark_with_attention)
  offset    weights stored after the FlatBuffer by offset/size (the benchmarks' 3 GB model)
  options   operator options
Prints one line per finding (or JSON). Used by scripts/bench.py for BENCHMARKS.md.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

CACHE = os.environ.get("LITELENS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "litelens")
MODELS = os.path.join(CACHE, "models")


def interpreter(path: str, delegates: bool):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    if delegates:
        return Interpreter(model_path=path)
    return Interpreter(model_path=path, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)


def conv_filters_interpreter(path: str, delegates: bool) -> dict:
    """The interpreter recipe's CONV_2D filters: {op index: array or error text}."""
    it = interpreter(path, delegates)
    try:
        it.allocate_tensors()
    except Exception as e:  # noqa: BLE001 - reported as the finding
        return {"allocate_error": str(e).splitlines()[0][:120]}
    out = {}
    for i, op in enumerate(it._get_ops_details()):
        if op["op_name"] == "CONV_2D":
            try:
                out[i] = it.get_tensor(int(op["inputs"][1]))
            except ValueError as e:
                out[i] = str(e)
    return out


def stored_filters(path: str) -> dict | None:
    try:
        import litelens
    except ImportError:
        return None
    with litelens.open(path) as m:
        return {layer.index: layer.params["filter"].consumed() for layer in m.layers(op="CONV_2D")}


def compare(got: dict, ref: dict | None) -> str:
    import numpy as np

    if "allocate_error" in got:
        return f"allocate_tensors() fails: {got['allocate_error']}"
    errors = [v for v in got.values() if isinstance(v, str)]
    arrays = {k: v for k, v in got.items() if not isinstance(v, str)}
    parts = []
    if errors:
        parts.append(f"{len(errors)}/{len(got)} raise \"{errors[0]}\"")
    zeros = sum(1 for v in arrays.values() if not np.any(v))
    if zeros:
        parts.append(f"{zeros}/{len(got)} are all zeros")
    if ref is not None:
        right = sum(1 for k, v in arrays.items()
                    if k in ref and v.shape == ref[k].shape and np.array_equal(v.astype(np.float64), ref[k].astype(np.float64)))
        parts.append(f"{right}/{len(got)} equal the stored values")
    return "; ".join(parts) or "ok"


def probe_fp16(findings: list) -> None:
    path = os.path.join(MODELS, "pose_landmark_heavy.tflite")
    if not os.path.exists(path):
        return
    ref = stored_filters(path)
    for delegates, label in ((True, "default resolver (XNNPACK)"), (False, "BUILTIN_WITHOUT_DEFAULT_DELEGATES")):
        findings.append(("interpreter", "fp16 filters behind DEQUANTIZE",
                         f"{label}, before invoke(): {compare(conv_filters_interpreter(path, delegates), ref)}"))
    import numpy as np
    import tflite

    buf = open(path, "rb").read()
    m = tflite.Model.GetRootAsModel(buf, 0)
    sg = m.Subgraphs(0)
    empty = total = 0
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        oc = m.OperatorCodes(op.OpcodeIndex())
        if max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()) == tflite.BuiltinOperator.CONV_2D:
            total += 1
            t = sg.Tensors(int(op.InputsAsNumpy()[1]))
            empty += m.Buffers(t.Buffer()).DataLength() == 0
    findings.append(("tflite pkg", "fp16 filters behind DEQUANTIZE",
                     f"{empty}/{total} CONV_2D filter tensors have no data: the values are in the DEQUANTIZE op's "
                     f"float16 input, which the recipe must find and widen itself"))
    _ = np


def probe_sparse(findings: list) -> None:
    path = os.path.join(MODELS, "face_detection_full_range_sparse.tflite")
    if not os.path.exists(path):
        return
    ref = stored_filters(path)
    got = conv_filters_interpreter(path, False)
    findings.append(("interpreter", "sparse filters behind DENSIFY",
                     f"CONV_2D filters (each the output of DENSIFY or DEQUANTIZE) before invoke(): {compare(got, ref)}"))
    import numpy as np
    import tflite

    buf = open(path, "rb").read()
    m = tflite.Model.GetRootAsModel(buf, 0)
    sg = m.Subgraphs(0)
    sparse = [sg.Tensors(i) for i in range(sg.TensorsLength()) if sg.Tensors(i).Sparsity() is not None]
    if sparse:
        t = sparse[0]
        n = int(np.prod(t.ShapeAsNumpy()))
        stored = m.Buffers(t.Buffer()).DataLength()
        findings.append(("tflite pkg", "sparse filters behind DENSIFY",
                         f"{len(sparse)} sparse tensors come back as their compressed bytes (e.g. {stored} bytes for "
                         f"{n} values): densifying (block map, CSR segments) is left to the user"))


def probe_custom(findings: list) -> None:
    path = os.path.join(MODELS, "face_landmark_with_attention.tflite")
    if not os.path.exists(path):
        return
    for delegates, label in ((False, "BUILTIN_WITHOUT_DEFAULT_DELEGATES"), (True, "default resolver")):
        got = conv_filters_interpreter(path, delegates)
        text = f"fails: {got['allocate_error']}" if "allocate_error" in got else "works"
        findings.append(("interpreter", "custom ops", f"{label}: allocate_tensors() {text} (the (a) recipe stops there; constants can still be read before allocating)"))


def probe_offset(findings: list) -> None:
    path = os.path.join(CACHE, "bench", "big_fc_v1.tflite")
    if not os.path.exists(path):
        return
    import tflite

    with open(path, "rb") as f:
        buf = f.read()
    m = tflite.Model.GetRootAsModel(buf, 0)
    b = m.Buffers(1)
    findings.append(("tflite pkg", "weights after the FlatBuffer (offset/size)",
                     f"Buffer.DataAsNumpy() gives {b.DataAsNumpy()!r}; the bytes are at Buffer.Offset()="
                     f"{b.Offset()}, Size()={b.Size()} and the recipe must slice the file itself (it reads the whole "
                     f"{len(buf) / 1e9:.2f} GB file into memory to do so)"))
    del buf
    it = interpreter(path, False)
    d = {t["name"]: t["index"] for t in it.get_tensor_details()}
    a = it.get_tensor(d["model/embedding/embeddings"])
    findings.append(("interpreter", "weights after the FlatBuffer (offset/size)",
                     f"reads them (get_tensor returns a {a.nbytes / 2**30:.0f} GiB copy, owndata={a.flags.owndata})"))


def probe_options(findings: list) -> None:
    path = os.path.join(MODELS, "pose_landmark_heavy.tflite")
    if not os.path.exists(path):
        return
    it = interpreter(path, False)
    keys = sorted(it._get_ops_details()[0].keys())
    findings.append(("interpreter", "operator options",
                     f"_get_ops_details() gives {', '.join(keys)}: no options (stride, padding, activation...)"))


def main() -> int:
    findings: list = []
    for probe in (probe_fp16, probe_sparse, probe_custom, probe_offset, probe_options):
        try:
            probe(findings)
        except Exception as e:  # noqa: BLE001 - a probe that breaks is itself reported
            findings.append(("probe", probe.__name__, f"failed: {type(e).__name__}: {e}"))
    if "--json" in sys.argv:
        print(json.dumps([{"peer": p, "case": c, "finding": f} for p, c, f in findings]))
    else:
        for p, c, f in findings:
            print(f"{p} / {c}: {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
