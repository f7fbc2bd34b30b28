#!/usr/bin/env python3
"""The Python side of the benchmarks: one scenario, done one tool's way, in a fresh process.

    bench/peers.py TOOL SCENARIO MODEL [--out PATH] [--check PATH]

TOOL
  litelens     the litelens Python package (import litelens)
  interpreter  the well-known recipe on the LiteRT interpreter (ai_edge_litert): Interpreter,
               allocate_tensors, walk the ops with _get_ops_details(), get_tensor
  tflite       the `tflite` PyPI package (FlatBuffers bindings) with numpy
SCENARIO
  conv     every CONV_2D filter and bias as NumPy arrays
  inspect  every operator with its options, every tensor with its quantization
  export   every weight to --out: .npz, .safetensors, or a folder of .npy files
  list     open the model and list every layer (op, name, parameters), touching no weights
  numpy    (litelens and interpreter only) the cost of getting a 1 KiB and a 1 GiB tensor as a
           NumPy array from the benchmark's big model

Prints one JSON line: {"import_s", "work_s", ...}: the time to import the tool (and numpy), and
the time of the work itself, measured inside the process. The harness (scripts/bench.py) times
the whole process from outside; these two show where that time goes.

--check PATH (conv only) writes the CONV_2D filters and biases it got to PATH (.npz, keyed by
operator index) and a summary of what came back (errors, all-zero arrays), for the harness to
compare against the values stored in the file. Not used in timed runs.

Interpreter notes (ai-edge-litert 2.3.0), see BENCHMARKS.md:
  * The interpreter is built with BUILTIN_WITHOUT_DEFAULT_DELEGATES. With the default resolver
    the XNNPACK delegate repacks every weight in allocate_tensors() (slower) and leaves the
    outputs of DEQUANTIZE ops it absorbed unallocated: get_tensor() on an fp16 model's filters
    raises "Tensor data is null". Without delegates they are allocated but not filled until
    invoke(): the recipe returns zeros, not the weights.
  * For inspect, list and export the recipe does not call allocate_tensors(): before it, exactly
    the constant tensors have data, so get_tensor() succeeds on the weights and fails on the
    rest, and the interpreter allocates no activations. That is the cheapest correct recipe.
"""
from __future__ import annotations

import json
import os
import sys
import time

T0 = time.perf_counter()


def emit(**kw) -> None:
    print(json.dumps(kw), flush=True)


# ---------------------------------------------------------------------------------------------
# litelens
# ---------------------------------------------------------------------------------------------

def litelens_run(scenario: str, model: str, out: str | None, check: str | None) -> dict:
    import numpy as np  # noqa: F401  (litelens imports it too; counted as import time)
    import litelens

    t_import = time.perf_counter()
    info: dict = {}
    m = litelens.open(model)
    if scenario == "conv":
        got = {}
        for layer in m.layers(op="CONV_2D"):
            arrays = []
            for role in ("filter", "bias"):
                p = layer.params.get(role)
                arrays.append(None if p is None or p.is_runtime else p.consumed())
            got[layer.index] = arrays
        info["layers"] = len(got)
        if check:
            write_check(check, got, {})
    elif scenario == "inspect":
        ops = tensors = 0
        for sg in m.subgraphs:
            for op in m.operators(sg.index):
                _ = (op.op, op.custom_code, op.inputs, op.outputs, op.options)
                ops += 1
            for t in m.tensors(sg.index):
                q = t.quantization
                _ = (t.name, t.shape, t.dtype, t.buffer,
                     None if q is None else (q.scheme, q.scales, q.zero_points, q.axis))
                tensors += 1
        info.update(ops=ops, tensors=tensors)
    elif scenario == "export":
        report = m.extract(out)
        info.update(arrays=report.arrays, bytes=report.bytes)
    elif scenario == "list":
        layers = m.layers()
        params = 0
        for layer in layers:
            _ = (layer.key, layer.op, layer.name, layer.options)
            for p in layer.params.values():
                _ = (p.role, p.name, p.shape, p.dtype, p.layout)
                params += 1
        info.update(layers=len(layers), params=params)
    elif scenario == "numpy":
        info.update(numpy_cost(m.tensor(SMALL_TENSOR).numpy, m.tensor(LARGE_TENSOR).numpy, 2000, 2000))
    else:
        raise SystemExit(f"litelens: unknown scenario {scenario}")
    m.close()
    return dict(import_s=t_import - T0, work_s=time.perf_counter() - t_import, **info)


# The big model's 1 KiB and 1 GiB tensors (bench/make_big_model.cpp).
SMALL_TENSOR = "model/head/bias"
LARGE_TENSOR = "model/embedding/embeddings"


def numpy_cost(small, large, small_n: int, large_n: int) -> dict:
    """Median seconds per call of small() and large(), the bytes each returns and whether the
    array owns its data (a copy) or views the model's."""
    import statistics

    out = {}
    for key, fn, n in (("small", small, small_n), ("large", large, large_n)):
        a = fn()
        times = []
        for _ in range(n):
            t = time.perf_counter()
            a = fn()
            times.append(time.perf_counter() - t)
        out[f"{key}_s"] = statistics.median(times)
        out[f"{key}_bytes"] = int(a.nbytes)
        out[f"{key}_copies"] = bool(a.flags.owndata)
        del a
    return out


# ---------------------------------------------------------------------------------------------
# LiteRT interpreter
# ---------------------------------------------------------------------------------------------

def interpreter_run(scenario: str, model: str, out: str | None, check: str | None) -> dict:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    t_import = time.perf_counter()
    info: dict = {}
    it = Interpreter(model_path=model,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    if scenario == "conv":
        it.allocate_tensors()
        got, errors = {}, {}
        for i, op in enumerate(it._get_ops_details()):
            if op["op_name"] != "CONV_2D":
                continue
            arrays = []
            for k in (1, 2):
                idx = int(op["inputs"][k]) if len(op["inputs"]) > k else -1
                if idx < 0:
                    arrays.append(None)
                    continue
                try:
                    arrays.append(it.get_tensor(idx))
                except ValueError as e:
                    arrays.append(None)
                    errors[f"{i}/{k}"] = str(e)
            got[i] = arrays
        info.update(layers=len(got), errors=len(errors))
        if check:
            write_check(check, got, errors)
    elif scenario in ("inspect", "list"):
        ops = it._get_ops_details()
        tensors = it.get_tensor_details()
        for op in ops:
            _ = (op["op_name"], op["inputs"], op["outputs"])  # no options: the API has none
        for t in tensors:
            _ = (t["name"], t["shape"], t["dtype"], t["quantization_parameters"])
        info.update(ops=len(ops), tensors=len(tensors))
    elif scenario == "export":
        arrays = {}
        for d in it.get_tensor_details():
            try:
                a = it.get_tensor(d["index"])
            except ValueError:  # no data before allocate_tensors(): not a constant
                continue
            arrays[f"t{d['index']}:{d['name']}"] = a
        save(arrays, out)
        info.update(arrays=len(arrays), bytes=sum(int(a.nbytes) for a in arrays.values()))
    elif scenario == "numpy":
        by_name = {d["name"]: d["index"] for d in it.get_tensor_details()}
        small, large = by_name[SMALL_TENSOR], by_name[LARGE_TENSOR]
        info.update(numpy_cost(lambda: it.get_tensor(small), lambda: it.get_tensor(large), 200, 5))
    else:
        raise SystemExit(f"interpreter: unknown scenario {scenario}")
    _ = np
    return dict(import_s=t_import - T0, work_s=time.perf_counter() - t_import, **info)


# ---------------------------------------------------------------------------------------------
# tflite package
# ---------------------------------------------------------------------------------------------

def tflite_run(scenario: str, model: str, out: str | None, check: str | None) -> dict:
    import numpy as np
    import tflite

    t_import = time.perf_counter()
    info: dict = {}
    with open(model, "rb") as f:
        buf = f.read()
    m = tflite.Model.GetRootAsModel(buf, 0)
    np_types = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 6: np.bool_,
                7: np.int16, 9: np.int8, 10: np.float64, 12: np.uint64, 15: np.uint32, 16: np.uint16}
    op_names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}

    def opname(sg_op) -> str:
        oc = m.OperatorCodes(sg_op.OpcodeIndex())
        return op_names.get(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()), "UNKNOWN")

    def values(t):
        """The tensor's stored values, or None without data (offset/size buffers included)."""
        b = m.Buffers(t.Buffer())
        if b.Offset() > 1:
            raw = np.frombuffer(buf, np.uint8, count=b.Size(), offset=b.Offset())
        else:
            raw = b.DataAsNumpy()
            if isinstance(raw, int):  # the package returns 0 for an empty vector
                return None
        dtype = np_types.get(t.Type(), np.uint8)
        shape = t.ShapeAsNumpy() if t.ShapeLength() else ()
        a = raw.view(dtype)
        return a.reshape(shape) if a.size == int(np.prod(shape)) else a

    if scenario == "conv":
        got = {}
        for s in range(m.SubgraphsLength()):
            sg = m.Subgraphs(s)
            producer = {}
            for i in range(sg.OperatorsLength()):
                op = sg.Operators(i)
                for o in op.OutputsAsNumpy():
                    producer[int(o)] = op
            for i in range(sg.OperatorsLength()):
                op = sg.Operators(i)
                if opname(op) != "CONV_2D":
                    continue
                ins = op.InputsAsNumpy()
                arrays = []
                for k in (1, 2):
                    idx = int(ins[k]) if len(ins) > k else -1
                    if idx < 0:
                        arrays.append(None)
                        continue
                    a = values(sg.Tensors(idx))
                    src = producer.get(idx)
                    if a is None and src is not None and opname(src) == "DEQUANTIZE":
                        # fp16 weights: follow the DEQUANTIZE back to the stored constant
                        a = values(sg.Tensors(int(src.InputsAsNumpy()[0])))
                        if a is not None and a.dtype == np.float16:
                            a = a.astype(np.float32)
                    arrays.append(a)
                got[i] = arrays
        info["layers"] = len(got)
        if check:
            write_check(check, got, {})
    elif scenario in ("inspect", "list"):
        ops = tensors = 0
        for s in range(m.SubgraphsLength()):
            sg = m.Subgraphs(s)
            for i in range(sg.OperatorsLength()):
                op = sg.Operators(i)
                _ = (opname(op), op.InputsAsNumpy(), op.OutputsAsNumpy(),
                     builtin_options(tflite, op) if scenario == "inspect" else None)
                ops += 1
            for i in range(sg.TensorsLength()):
                t = sg.Tensors(i)
                q = t.Quantization()
                _ = (t.Name(), t.ShapeAsNumpy(), t.Type(), t.Buffer(),
                     None if q is None else (q.ScaleAsNumpy(), q.ZeroPointAsNumpy(), q.QuantizedDimension()))
                tensors += 1
        info.update(ops=ops, tensors=tensors)
    elif scenario == "export":
        arrays = {}
        for s in range(m.SubgraphsLength()):
            sg = m.Subgraphs(s)
            for i in range(sg.TensorsLength()):
                t = sg.Tensors(i)
                a = values(t)
                if a is not None:
                    arrays[f"sg{s}.t{i}:{t.Name().decode()}"] = a
        save(arrays, out)
        info.update(arrays=len(arrays), bytes=sum(int(a.nbytes) for a in arrays.values()))
    else:
        raise SystemExit(f"tflite: unknown scenario {scenario}")
    return dict(import_s=t_import - T0, work_s=time.perf_counter() - t_import, **info)


_OPTION_GETTERS: dict = {}


def builtin_options(tflite, op) -> dict | None:
    """An operator's builtin options as a dict, through the package's generated classes: the
    options table's class is found by the union's type name and every getter is called."""
    kind = op.BuiltinOptionsType()
    if kind == 0:
        return None
    if not _OPTION_GETTERS:
        for k, v in vars(tflite.BuiltinOptions).items():
            if not k.startswith("_"):
                _OPTION_GETTERS[v] = k
    name = _OPTION_GETTERS.get(kind)
    cls = getattr(tflite, name, None) if name else None
    table = op.BuiltinOptions()
    if cls is None or table is None:
        return None
    o = cls()
    o.Init(table.Bytes, table.Pos)
    out = {}
    for attr in dir(cls):
        if not attr[:1].isupper() or attr.startswith(("GetRootAs", "Init")) or \
                attr.endswith(("BufferHasIdentifier", "AsNumpy", "IsNone", "Length")):
            continue
        if hasattr(cls, attr + "Length"):
            out[attr] = getattr(o, attr + "AsNumpy")() if hasattr(cls, attr + "AsNumpy") else \
                [getattr(o, attr)(j) for j in range(getattr(o, attr + "Length")())]
        else:
            out[attr] = getattr(o, attr)()
    return out


# ---------------------------------------------------------------------------------------------
# shared
# ---------------------------------------------------------------------------------------------

def save(arrays: dict, out: str) -> None:
    """The peers' export: np.savez, safetensors' save_file, or np.save per array."""
    import numpy as np

    if out.endswith(".npz"):
        np.savez(out, **arrays)
    elif out.endswith(".safetensors"):
        from safetensors.numpy import save_file
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, out)
    else:
        os.makedirs(out, exist_ok=True)
        for i, (k, v) in enumerate(arrays.items()):
            np.save(os.path.join(out, f"{i}.npy"), v)


def write_check(path: str, got: dict, errors: dict) -> None:
    import numpy as np

    flat = {}
    for i, (f, b) in got.items():
        if f is not None:
            flat[f"{i}/filter"] = np.asarray(f)
        if b is not None:
            flat[f"{i}/bias"] = np.asarray(b)
    np.savez(path, **flat)
    with open(path + ".json", "w") as fh:
        json.dump({"layers": len(got), "errors": errors}, fh)


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("tool", choices=("litelens", "interpreter", "tflite"))
    ap.add_argument("scenario")
    ap.add_argument("model")
    ap.add_argument("--out")
    ap.add_argument("--check")
    a = ap.parse_args()
    run = {"litelens": litelens_run, "interpreter": interpreter_run, "tflite": tflite_run}[a.tool]
    emit(**run(a.scenario, a.model, a.out, a.check))
    return 0


if __name__ == "__main__":
    sys.exit(main())
