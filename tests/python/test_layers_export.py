"""`litelens extract` exports read back by independent readers, bit for bit: .npz and a folder of
.npy files by NumPy, .safetensors by the `safetensors` package (with the manifest in
__metadata__["manifest"]), JSON by the json module, and the C header compiled by gcc into a
program that prints every value. Expected values come from the `tflite` package and the NumPy
decoders of layer_oracles.py, never from litelens.
"""
from __future__ import annotations

import json
import os
import re
import resource
import shutil
import struct
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import layer_oracles as lo  # noqa: E402
from locations import CLI  # noqa: E402
from model_builder import (BFLOAT16, BOOL, COMPLEX64, FLOAT16, FLOAT32, FLOAT64, INT8, INT16,  # noqa: E402
                           STRING, UINT8, ModelBuilder, conv_options)

MANIFEST_FIELDS = {"subgraph", "layer", "op", "role", "tensor", "stored_tensor", "name", "stored_dtype", "dtype",
                   "shape", "layout", "quantization", "options"}
DTYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16", 9: "int8",
               17: "int4", 18: "bfloat16", 19: "int2", 20: "uint4"}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "export_model.tflite"
    path.write_bytes(lo.build_export_model())
    return str(path)


@pytest.fixture(scope="module")
def expected(model):
    return lo.expected_params(lo.PkgModel(lo.file_bytes(model)))


def _quantized(t: dict) -> bool:
    return bool(t["quant"] and t["quant"]["scale"])


def want_values(entry: dict, fmt: str, dequantize: bool) -> np.ndarray:
    """What an export of `fmt` holds for a parameter, from the NumPy oracle: stored values
    (packed types unpacked to int8/uint8), float16 kept where the format has it, bfloat16 kept
    only by safetensors (as its bits here); or float32 with --dequantize."""
    t = entry["constant"]
    if dequantize and _quantized(t):
        q = t["quant"]
        return lo.dequantize(lo.np_stored(t), q["scale"], q["zero_point"], q["axis"])
    if dequantize and t["type"] in (FLOAT16, BFLOAT16):
        return lo.np_widened(t)
    stored = lo.np_stored(t)
    if t["type"] == BFLOAT16 and fmt != "safetensors":
        return lo.np_widened(t)
    if t["type"] == FLOAT16 and fmt in ("json", "c"):
        return stored.astype(np.float32)
    if t["type"] == BOOL:
        return stored.astype(np.bool_) if fmt in ("npz", "npy", "safetensors") else stored
    return stored


# ---------------------------------------------------------------------------------------------
# The manifest


def check_manifest(manifest: dict, expected: dict, arrays_dtypes: dict | None = None, layout: str = "tflite"):
    arrays = manifest["arrays"]
    assert set(arrays) == set(expected), f"keys {sorted(set(arrays) ^ set(expected))} differ"
    assert manifest.get("layout") == layout
    for key, e in expected.items():
        m = arrays[key]
        missing = MANIFEST_FIELDS - set(m)
        assert not missing, f"{key}: manifest lacks {missing}"
        t = e["constant"]
        got = {k: m[k] for k in ("subgraph", "layer", "op", "role", "tensor", "stored_tensor", "name", "stored_dtype",
                                 "via")}
        want = {"subgraph": e["subgraph"], "layer": e["layer"], "op": e["op"], "role": e["role"],
                "tensor": e["tensor"], "stored_tensor": e["stored_tensor"], "name": t["name"],
                "stored_dtype": DTYPE_NAMES[t["type"]], "via": e["via"]}
        assert got == want, f"{key}: manifest {got} != {want}"
        q = m["quantization"]
        if _quantized(t):
            assert q["scale"] == t["quant"]["scale"] and q["zero_point"] == t["quant"]["zero_point"], key
            if layout == "tflite":
                assert q["quantized_dimension"] == t["quant"]["axis"], key
        if arrays_dtypes is not None:
            assert m["dtype"] == arrays_dtypes[key], f"{key}: manifest dtype {m['dtype']} != {arrays_dtypes[key]}"
        assert isinstance(m["options"], dict)


def _npdtype_name(a: np.ndarray) -> str:
    return "bool" if a.dtype == np.bool_ else str(a.dtype)


# ---------------------------------------------------------------------------------------------
# npz, npy folder


@pytest.mark.parametrize("dequantize", [False, True], ids=["stored", "dequantized"])
def test_npz(model, expected, tmp_path, dequantize):
    args = ["--dequantize"] if dequantize else []
    arrays, manifest = lo.extract_npz(model, tmp_path, *args)
    assert set(arrays) == set(expected)
    for key, e in expected.items():
        lo.assert_bits_equal(arrays[key], want_values(e, "npz", dequantize), f"npz {key}")
        assert manifest["arrays"][key]["shape"] == list(arrays[key].shape)
    check_manifest(manifest, expected, {k: _npdtype_name(a) for k, a in arrays.items()})
    # Stable: the same export twice is the same file.
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    lo.cli("extract", model, "-o", a, *args)
    lo.cli("extract", model, "-o", b, *args)
    assert a.read_bytes() == b.read_bytes()


def test_npz_is_plain_zip_with_manifest(model, tmp_path):
    out = tmp_path / "m.npz"
    lo.cli("extract", model, "-o", out)
    with zipfile.ZipFile(out) as z:
        assert z.testzip() is None, "CRC mismatch"
        names = z.namelist()
        assert "manifest.json" in names
        assert all(n.endswith(".npy") for n in names if n != "manifest.json")
        json.loads(z.read("manifest.json"))


@pytest.mark.parametrize("how", ["folder", "format"])
def test_npy_folder(model, expected, tmp_path, how):
    out = tmp_path / "arrays"
    args = ["--format", "npy"] if how == "format" else []
    if how == "format":
        out = tmp_path / "arrays.d"
    lo.cli("extract", model, "-o", out, *args)
    manifest = json.loads((out / "manifest.json").read_text())
    _, npz_manifest = lo.extract_npz(model, tmp_path)
    assert manifest["arrays"] == npz_manifest["arrays"]
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*.npy"))
    assert files == sorted(f"{k}.npy" for k in expected)
    for key, e in expected.items():
        a = np.load(out / f"{key}.npy", allow_pickle=False)
        lo.assert_bits_equal(a, want_values(e, "npy", False), f"npy {key}")
    check_manifest(manifest, expected)


# ---------------------------------------------------------------------------------------------
# safetensors


def _safetensors_raw(path) -> tuple[dict, bytes]:
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


@pytest.mark.parametrize("dequantize", [False, True], ids=["stored", "dequantized"])
def test_safetensors(model, expected, tmp_path, dequantize):
    from safetensors import safe_open
    from safetensors.numpy import load_file
    out = tmp_path / "w.safetensors"
    lo.cli("extract", model, "-o", out, *(["--dequantize"] if dequantize else []))
    header, body = _safetensors_raw(out)
    with safe_open(str(out), framework="numpy") as f:
        meta = f.metadata()
        keys = set(f.keys())
    assert keys == set(expected)
    manifest = json.loads(meta["manifest"])
    dtypes = {}
    bf16 = {k for k in keys if header[k]["dtype"] == "BF16"}
    assert bf16 == ({"sg0.op5.PRELU/alpha"} if not dequantize else set())
    if bf16:
        # NumPy has no bfloat16, so the package cannot hand these out; read their bytes by the
        # header the package just validated.
        for k in bf16:
            lo_, hi = header[k]["data_offsets"]
            got = np.frombuffer(body[lo_:hi], "<u2").reshape(header[k]["shape"])
            lo.assert_bits_equal(got, lo.np_stored(expected[k]["constant"]), f"safetensors BF16 {k}")
            dtypes[k] = "bfloat16"
        # and the rest through the package
        with safe_open(str(out), framework="numpy") as f:
            arrays = {k: f.get_tensor(k) for k in keys - bf16}
    else:
        arrays = load_file(str(out))
    for key, a in arrays.items():
        lo.assert_bits_equal(a, want_values(expected[key], "safetensors", dequantize), f"safetensors {key}")
        dtypes[key] = _npdtype_name(a)
        assert header[key]["shape"] == manifest["arrays"][key]["shape"]
    check_manifest(manifest, expected, dtypes)
    # 8-byte aligned data, offsets contiguous in key order of the header
    assert (8 + struct.unpack("<Q", out.read_bytes()[:8])[0]) % 8 == 0
    spans = sorted(v["data_offsets"] for k, v in header.items() if k != "__metadata__")
    assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:])) and spans[-1][1] == len(body)


def test_safetensors_torch_layout(model, expected, tmp_path):
    from safetensors import safe_open
    out = tmp_path / "t.safetensors"
    lo.cli("extract", model, "--op", "CONV_2D", "--op", "DEPTHWISE_CONV_2D", "--op", "TRANSPOSE_CONV",
           "--op", "FULLY_CONNECTED", "--dequantize", "--layout", "torch", "-o", out)
    with safe_open(str(out), framework="numpy") as f:
        got = {k: f.get_tensor(k) for k in f.keys()}
        manifest = json.loads(f.metadata()["manifest"])
    tfl = {k: want_values(expected[k], "safetensors", True) for k in got}
    lo.assert_bits_equal(got["sg0.op0.CONV_2D/filter"], tfl["sg0.op0.CONV_2D/filter"].transpose(0, 3, 1, 2).copy(),
                         "conv OIHW")
    lo.assert_bits_equal(got["sg0.op1.DEPTHWISE_CONV_2D/filter"],
                         tfl["sg0.op1.DEPTHWISE_CONV_2D/filter"].transpose(3, 0, 1, 2).copy(), "depthwise C*M,1,H,W")
    lo.assert_bits_equal(got["sg0.op14.TRANSPOSE_CONV/filter"],
                         tfl["sg0.op14.TRANSPOSE_CONV/filter"].transpose(3, 0, 1, 2).copy(), "transpose conv IOHW")
    lo.assert_bits_equal(got["sg0.op2.FULLY_CONNECTED/weights"], tfl["sg0.op2.FULLY_CONNECTED/weights"], "linear OI")
    assert manifest["layout"] == "torch"
    assert manifest["arrays"]["sg0.op1.DEPTHWISE_CONV_2D/filter"]["layout"] == "O1HW"
    assert manifest["arrays"]["sg0.op1.DEPTHWISE_CONV_2D/filter"]["quantization"]["quantized_dimension"] == 0
    assert manifest["arrays"]["sg0.op14.TRANSPOSE_CONV/output_shape"]["layout"] is None


# ---------------------------------------------------------------------------------------------
# JSON


def _json_array(values, dtype) -> np.ndarray:
    flat = np.array(values, dtype=object).reshape(-1) if isinstance(values, list) else np.array([values], object)
    if np.dtype(dtype).kind == "f":
        return np.array([np.nan if v is None else v for v in flat], np.float64)
    return np.array([int(v) for v in flat], np.int64)


@pytest.mark.parametrize("dequantize", [False, True], ids=["stored", "dequantized"])
def test_json(model, expected, tmp_path, dequantize):
    out = tmp_path / "w.json"
    lo.cli("extract", model, "-o", out, *(["--dequantize"] if dequantize else []))
    doc = json.loads(out.read_text())
    check_manifest(doc, expected)
    for key, e in expected.items():
        entry = doc["arrays"][key]
        want = want_values(e, "json", dequantize)
        got = _json_array(entry["values"], want.dtype)
        assert entry["shape"] == list(want.shape), key
        if want.ndim >= 1 and want.size:
            # nested lists follow the shape
            v = entry["values"]
            for d in want.shape:
                assert isinstance(v, list) and len(v) == d, f"{key}: nesting does not follow the shape"
                v = v[0]
        if want.dtype.kind == "f":
            w = want.astype(np.float64).reshape(-1)
            fin = np.isfinite(w)
            np.testing.assert_array_equal(got[fin], w[fin], err_msg=key)
            assert np.isnan(got[~fin]).all(), f"{key}: non-finite values must be null"
            assert got.astype(np.float32).astype(np.float64)[fin].tolist() == got[fin].tolist()
        else:
            np.testing.assert_array_equal(got, want.astype(np.int64).reshape(-1), err_msg=key)


# ---------------------------------------------------------------------------------------------
# C header


def c_identifier(key: str) -> str:
    """The documented naming: lowercase, every character other than [a-z0-9] becomes '_', a
    leading digit gets 't_'."""
    ident = "".join(c.lower() if c.isascii() and c.isalnum() else "_" for c in key)
    return "t_" + ident if not ident or ident[0].isdigit() else ident


C_MAIN = r"""
#include <stdio.h>
#include <stdint.h>
#include "weights.h"

static void pf(double v) { printf("%.17g\n", v); }
static void pi(long long v) { printf("%lld\n", v); }
static void pu(unsigned long long v) { printf("%llu\n", v); }
#define P(x) _Generic((x), float: pf, double: pf, signed char: pi, short: pi, int: pi, long: pi, long long: pi, \
    unsigned char: pu, unsigned short: pu, unsigned int: pu, unsigned long: pu, unsigned long long: pu)(x)
#define DUMP(name, NAME) do { \
    printf("@ %s %d %lu %u\n", #name, NAME##_RANK, (unsigned long)NAME##_SIZE, \
           (unsigned)((uintptr_t)(const void*)name % 16)); \
    for (unsigned long i = 0; i < (unsigned long)NAME##_SIZE; ++i) P(name[i]); } while (0)

int main(void) {
@@BODY@@
  return 0;
}
"""


@pytest.mark.parametrize("dequantize", [False, True], ids=["stored", "dequantized"])
def test_c_header(model, expected, tmp_path, dequantize):
    gcc = shutil.which("gcc")
    assert gcc, "gcc is needed to compile the exported header"
    header = tmp_path / "weights.h"
    lo.cli("extract", model, "-o", header, *(["--dequantize"] if dequantize else []))
    text = header.read_text()
    body = []
    for key in expected:
        ident = c_identifier(key)
        body.append(f"  DUMP({ident}, {ident.upper()});")
        want = want_values(expected[key], "c", dequantize)
        macro = ident.upper()
        assert re.search(rf"#define {macro}_RANK {want.ndim}\b", text), f"{key}: rank macro"
        for d, n in enumerate(want.shape):
            assert re.search(rf"#define {macro}_DIM{d} {n}\b", text), f"{key}: dim {d} macro"
    (tmp_path / "main.c").write_text(C_MAIN.replace("@@BODY@@", "\n".join(body)))
    exe = tmp_path / "dump"
    cc = subprocess.run([gcc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-o", str(exe), str(tmp_path / "main.c"),
                         "-lm"], capture_output=True, text=True, cwd=tmp_path)
    assert cc.returncode == 0, f"the header does not compile:\n{cc.stderr[-3000:]}"
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split("\n")
    blocks, cur = {}, None
    for line in out:
        if line.startswith("@ "):
            _, name, rank, size, align = line.split()
            cur = blocks[name] = {"rank": int(rank), "size": int(size), "align": int(align), "values": []}
        elif line:
            cur["values"].append(line)
    for key, e in expected.items():
        b = blocks[c_identifier(key)]
        want = want_values(e, "c", dequantize)
        assert b["rank"] == want.ndim and b["size"] == want.size and b["align"] == 0, key
        if want.dtype.kind == "f":
            got = np.array([float(v) for v in b["values"]], np.float64).astype(want.dtype)
            w = want.reshape(-1)
            fin = np.isfinite(w)
            lo.assert_bits_equal(got[fin], w[fin], f"C {key}")
            np.testing.assert_array_equal(np.isnan(got), np.isnan(w), err_msg=key)
            np.testing.assert_array_equal(got[np.isinf(w)], w[np.isinf(w)], err_msg=key)
        else:
            np.testing.assert_array_equal(np.array([int(v) for v in b["values"]], np.int64),
                                          want.astype(np.int64).reshape(-1), err_msg=key)


# ---------------------------------------------------------------------------------------------
# Writing


def test_failed_export_leaves_nothing(model, tmp_path):
    """An export that cannot be written fails without leaving a file or a temporary behind."""
    missing = tmp_path / "no" / "such" / "dir" / "x.npz"
    p = lo.cli("extract", model, "-o", missing, ok=False)
    assert p.returncode == 1 and "[output]" in p.stderr
    assert os.listdir(tmp_path) == []


def test_string_parameters_are_skipped_and_reported(tmp_path):
    """A STRING constant has no array form: it is left out, named on stderr, and the other
    parameters are exported."""
    mb = ModelBuilder()
    x = mb.tensor("x", FLOAT32, [1])
    w = mb.const("w", np.array([1, 2], np.float32))
    s = mb.tensor("s", STRING, [1], np.array([1, 12, 13], np.int32).tobytes() + b"a")
    mb.op("ADD", [x, w], [mb.tensor("y", FLOAT32, [2])])
    mb.op("ADD", [x, s], [mb.tensor("z", FLOAT32, [1])])
    mb.io([x], [])
    path = tmp_path / "s.tflite"
    path.write_bytes(mb.build())
    out = tmp_path / "out.npz"
    p = lo.cli("extract", path, "-o", out)
    assert p.stderr.strip() == f"litelens: {path}: skipped sg0.op1.ADD/y: string values have no array form"
    arrays, manifest = lo.read_npz(out)
    assert sorted(arrays) == ["sg0.op0.ADD/y"]
    assert sorted(manifest["arrays"]) == ["sg0.op0.ADD/y"]
    lo.assert_bits_equal(arrays["sg0.op0.ADD/y"], np.array([1, 2], np.float32), "w")


def test_failed_export_keeps_previous_file(tmp_path):
    """A value the format cannot hold (complex64 in safetensors) fails the export; an existing
    output file is left as it was and no temporary file remains."""
    mb = ModelBuilder()
    x = mb.tensor("x", FLOAT32, [2])
    c = mb.tensor("c", COMPLEX64, [2], np.array([1 + 2j, 3 - 4j], np.complex64).tobytes())
    mb.op("ADD", [x, c], [mb.tensor("y", FLOAT32, [2])])
    mb.io([x], [])
    path = tmp_path / "c.tflite"
    path.write_bytes(mb.build())
    out = tmp_path / "out.safetensors"
    out.write_bytes(b"previous")
    p = lo.cli("extract", path, "-o", out, ok=False)
    assert p.returncode == 1, "complex64 values have no safetensors dtype"
    assert "complex64" in p.stderr and str(path) in p.stderr
    assert out.read_bytes() == b"previous"
    assert sorted(os.listdir(tmp_path)) == ["c.tflite", "out.safetensors"]
    # npz holds complex64: the same parameter exports there.
    lo.cli("extract", path, "-o", tmp_path / "out.npz")
    arrays, _ = lo.read_npz(tmp_path / "out.npz")
    np.testing.assert_array_equal(arrays["sg0.op0.ADD/y"], np.array([1 + 2j, 3 - 4j], np.complex64))


def test_unknown_format_and_layout_are_usage_errors(model, tmp_path):
    for args in (["--format", "xml"], ["--layout", "jax"]):
        p = lo.cli("extract", model, "-o", tmp_path / "x.npz", *args, ok=False)
        assert p.returncode != 0 and not (tmp_path / "x.npz").exists()
        assert ("xml" in p.stderr) or ("jax" in p.stderr)


def test_keys_unique_and_documented_form(model, expected):
    _, manifest = lo.extract_npz(model, os.path.dirname(model), name="keys.npz")
    keys = list(manifest["arrays"])
    assert len(keys) == len(set(keys))
    for k in keys:
        m = manifest["arrays"][k]
        assert k == f"sg{m['subgraph']}.op{m['layer']}.{m['op']}/{m['role']}"


# ---------------------------------------------------------------------------------------------
# Memory: proportional to the file, not to (inputs of a layer)^2


def _run_limited(argv, stderr_path, address_space: int) -> int:
    """Runs argv under an address-space limit and returns its exit code. The limit is the
    measure: the child's ru_maxrss would not do, because a child forked from pytest starts with
    pytest's own high-water mark."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    with open(stderr_path, "wb") as err:
        return subprocess.run([str(a) for a in argv], stdout=subprocess.DEVNULL, stderr=err,
                              preexec_fn=limit).returncode


def test_layer_with_thousands_of_constant_inputs_exports_in_little_memory(tmp_path):
    """A CONCATENATION of 2000 constants is 2000 export items; each used to carry a copy of the
    whole layer (2000 params), 2000^2 params in all (about 1 GB; 4000 inputs: 4 GB, 8 s). The
    export must now fit in 192 MiB of address space (the static command needs under 64)."""
    n, distinct = 2000, 50
    mb = ModelBuilder()
    consts = [mb.const(f"c{i}", np.array([i, -i], np.int16)) for i in range(distinct)]
    y = mb.tensor("y", INT16, [2 * n])
    mb.op("CONCATENATION", [consts[i % distinct] for i in range(n)], [y], options=("ConcatenationOptions", {"Axis": 0}))
    mb.io([], [y])
    path = tmp_path / "concat.tflite"
    path.write_bytes(mb.build())
    out = tmp_path / "c.npz"
    code = _run_limited([CLI, "extract", path, "-o", out], tmp_path / "err.txt", 192 << 20)
    assert code == 0, (tmp_path / "err.txt").read_text()[-2000:]
    arrays, manifest = lo.read_npz(out)
    assert len(arrays) == n and len(manifest["arrays"]) == n
    for i in (0, 1, 1234, n - 1):
        key = f"sg0.op0.CONCATENATION/values_{i}"
        np.testing.assert_array_equal(arrays[key], np.array([i % distinct, -(i % distinct)], np.int16), err_msg=key)
        assert manifest["arrays"][key]["stored_tensor"] == i % distinct
        assert manifest["arrays"][key]["options"] == {"axis": 0, "fused_activation_function": "NONE"}


# ---------------------------------------------------------------------------------------------
# npy folder: what an export may replace


def _tree(folder) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", ["other_file", "npy_only", "foreign_manifest", "nested_other_file", "plain_file",
                                  "symlink"])
def test_npy_folder_refuses_to_replace_what_it_did_not_write(model, tmp_path, case):
    """Replacing the folder deletes what it holds, so anything but an earlier export (or an
    empty folder) is refused: exit 1, [output], nothing changed, nothing left behind."""
    out = tmp_path / "out"
    if case == "plain_file":
        out.write_bytes(b"a file")
    elif case == "symlink":
        (tmp_path / "real").mkdir()
        (tmp_path / "real" / "manifest.json").write_text('{"format":"litelens-export-1"}')
        out.symlink_to(tmp_path / "real", target_is_directory=True)
    else:
        out.mkdir()
        np.save(out / "weights.npy", np.arange(3))
        if case == "other_file":
            (out / "notes.txt").write_text("keep me")
        elif case == "foreign_manifest":
            (out / "manifest.json").write_text('{"format": "someone-else"}')
        elif case == "nested_other_file":
            (out / "manifest.json").write_text('{"format":"litelens-export-1","model":"m"}')
            (out / "sg0.op0.CONV_2D").mkdir()
            (out / "sg0.op0.CONV_2D" / "filter.npy").write_bytes(b"x")
            (out / "sg0.op0.CONV_2D" / "README").write_text("mine")
    before = sorted(os.listdir(tmp_path))
    tree = _tree(out) if out.is_dir() and not out.is_symlink() else None
    p = lo.cli("extract", model, "--format", "npy", "-o", out, ok=False)
    assert p.returncode == 1, p.stderr
    assert "[output]" in p.stderr and str(out) in p.stderr
    if case == "other_file":
        assert "notes.txt" in p.stderr
    if case == "nested_other_file":
        assert os.path.join("sg0.op0.CONV_2D", "README") in p.stderr
    assert sorted(os.listdir(tmp_path)) == before, "a staging folder was left behind"
    if tree is not None:
        assert _tree(out) == tree
    elif case == "plain_file":
        assert out.read_bytes() == b"a file"
    else:
        assert out.is_symlink() and sorted(os.listdir(tmp_path / "real")) == ["manifest.json"]


def test_npy_folder_replaces_an_earlier_export(model, expected, tmp_path):
    out = tmp_path / "arrays"
    lo.cli("extract", model, "-o", out)
    assert len(_tree(out)) == len(expected) + 1
    lo.cli("extract", model, "--op", "CONV_2D", "-o", out)  # the whole folder is replaced
    conv = sorted(f"{k}.npy" for k in expected if ".CONV_2D/" in k)
    assert conv and sorted(_tree(out)) == sorted(conv + ["manifest.json"])
    assert sorted(json.loads((out / "manifest.json").read_text())["arrays"]) == sorted(k[:-4] for k in conv)
    assert sorted(os.listdir(tmp_path)) == ["arrays"], "the old folder or a staging folder remains"
    empty = tmp_path / "empty"  # an empty folder is taken as well
    empty.mkdir()
    lo.cli("extract", model, "--op", "CONV_2D", "-o", empty)
    assert sorted(_tree(empty)) == sorted(conv + ["manifest.json"])


# ---------------------------------------------------------------------------------------------
# C header: layout label after --layout, and the quantization of stored integers

QUANT_C_MAIN = r"""
#include <stdio.h>
#include "weights.h"
#define Q(name, NAME) do { \
    printf("@ %s %d %d %d\n", #name, NAME##_QUANT_AXIS, NAME##_QUANT_AXES, NAME##_QUANT_COUNT); \
    for (int i = 0; i < NAME##_QUANT_COUNT; ++i) printf("%.9g %lld\n", (double)name##_scale[i], \
                                                         (long long)name##_zero_point[i]); } while (0)
int main(void) {
@@BODY@@
  return 0;
}
"""

QUANT_LAYOUTS = {  # key: (label, quantization axis, axes) per --layout; docs/layers.md "Layouts"
    "sg0.op0.CONV_2D/filter": {"tflite": ("OHWI", 0, 1), "keras": ("HWIO", 3, 1), "torch": ("OIHW", 0, 1)},
    "sg0.op0.CONV_2D/bias": {"tflite": ("O", 0, 1), "keras": ("O", 0, 1), "torch": ("O", 0, 1)},
    "sg0.op1.DEPTHWISE_CONV_2D/filter": {"tflite": ("1HWC", 3, 1), "keras": ("HWCM", 2, 2),
                                         "torch": ("O1HW", 0, 1)},
    "sg0.op2.FULLY_CONNECTED/weights": {"tflite": ("OI", 0, 1), "keras": ("IO", 1, 1), "torch": ("OI", 0, 1)},
}
QUANT = {  # key: (scales, zero points as stored)
    "sg0.op0.CONV_2D/filter": ([0.5, 0.25, 0.125], [0, 1, -2]),
    "sg0.op0.CONV_2D/bias": ([0.05, 0.025, 0.0125], []),
    "sg0.op1.DEPTHWISE_CONV_2D/filter": ([0.1, 0.2, 0.3, 0.4], [5]),
    "sg0.op2.FULLY_CONNECTED/weights": ([0.02], [128]),
}


@pytest.fixture(scope="module")
def quantized_model(tmp_path_factory):
    mb = ModelBuilder()
    x = mb.tensor("x", INT8, [1, 3, 3, 2], quant={"scale": [0.1], "zero_point": [3], "axis": 0})
    q = {k: {"scale": s, "zero_point": z, "axis": {"sg0.op1.DEPTHWISE_CONV_2D/filter": 3}.get(k, 0)}
         for k, (s, z) in QUANT.items()}
    f = mb.const("conv/filter", np.arange(-12, 12, dtype=np.int8).reshape(3, 2, 2, 2),
                 quant=q["sg0.op0.CONV_2D/filter"])
    b = mb.const("conv/bias", np.array([100, -200, 300], np.int32), quant=q["sg0.op0.CONV_2D/bias"])
    y = mb.tensor("conv/out", INT8, [1, 3, 3, 3], quant={"scale": [0.2], "zero_point": [0], "axis": 0})
    mb.op("CONV_2D", [x, f, b], [y], options=conv_options())
    d = mb.const("dw/filter", np.arange(16, dtype=np.int8).reshape(1, 2, 2, 4),
                 quant=q["sg0.op1.DEPTHWISE_CONV_2D/filter"])
    z = mb.tensor("dw/out", INT8, [1, 3, 3, 4], quant={"scale": [0.2], "zero_point": [0], "axis": 0})
    mb.op("DEPTHWISE_CONV_2D", [x, d, -1], [z],
          options=("DepthwiseConv2DOptions", {"StrideW": 1, "StrideH": 1, "DepthMultiplier": 2}))
    x2 = mb.tensor("fc/in", UINT8, [1, 6])
    w = mb.const("fc/weights", np.arange(12, dtype=np.uint8).reshape(2, 6) * 20,
                 quant=q["sg0.op2.FULLY_CONNECTED/weights"])
    mb.op("FULLY_CONNECTED", [x2, w, -1], [mb.tensor("fc/out", UINT8, [1, 2])], options=("FullyConnectedOptions", {}))
    shape = mb.const("shape", np.array([1, 2], np.int32))  # no quantization: no macros
    mb.op("RESHAPE", [z, shape], [mb.tensor("r", INT8, [1, 2])])
    mb.io([x, x2], [y])
    path = tmp_path_factory.mktemp("quantized") / "quantized.tflite"
    path.write_bytes(mb.build())
    return path


@pytest.mark.parametrize("layout", ["tflite", "keras", "torch"])
def test_c_header_layout_label_and_quantization(quantized_model, tmp_path, layout):
    gcc = shutil.which("gcc")
    assert gcc, "gcc is needed to compile the exported header"
    header = tmp_path / "weights.h"
    lo.cli("extract", quantized_model, "--layout", layout, "-o", header)
    text = header.read_text()
    _, manifest = lo.extract_npz(quantized_model, tmp_path, "--layout", layout)
    body = []
    for key, per_layout in QUANT_LAYOUTS.items():
        label = per_layout[layout][0]
        m = re.search(rf"/\* {re.escape(key)} \([^)]*\), (\w+) layout (\w+) \*/", text)
        assert m, f"{key}: no comment line with a layout"
        assert m.group(2) == label == manifest["arrays"][key]["layout"], f"{key}: label {m.group(2)} for {layout}"
        body.append(f"  Q({c_identifier(key)}, {c_identifier(key).upper()});")
    assert re.search(r"/\* sg0\.op3\.RESHAPE/shape \(r\), int32 \*/", text)
    assert "SG0_OP3_RESHAPE_SHAPE_QUANT" not in text and "sg0_op3_reshape_shape_scale" not in text
    (tmp_path / "main.c").write_text(QUANT_C_MAIN.replace("@@BODY@@", "\n".join(body)))
    exe = tmp_path / "q"
    cc = subprocess.run([gcc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-o", str(exe), str(tmp_path / "main.c"),
                         "-lm"], capture_output=True, text=True, cwd=tmp_path)
    assert cc.returncode == 0, f"the header does not compile:\n{cc.stderr[-3000:]}"
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split("\n")
    got, cur = {}, None
    for line in filter(None, out):
        if line.startswith("@ "):
            _, name, axis, axes, count = line.split()
            cur = got[name] = {"axis": int(axis), "axes": int(axes), "count": int(count), "scale": [], "zp": []}
        else:
            s, z = line.split()
            cur["scale"].append(np.float32(float(s)))
            cur["zp"].append(int(z))
    for key, (scales, zero_points) in QUANT.items():
        g = got[c_identifier(key)]
        _, axis, axes = QUANT_LAYOUTS[key][layout]
        assert (g["axis"], g["axes"], g["count"]) == (axis, axes, len(scales)), f"{key} ({layout})"
        assert g["axis"] == manifest["arrays"][key]["quantization"]["quantized_dimension"], key
        assert g["scale"] == [np.float32(v) for v in scales], key
        want_zp = zero_points * len(scales) if len(zero_points) == 1 else zero_points or [0] * len(scales)
        assert g["zp"] == want_zp, key
    # One scale: plain macros as well.
    assert re.search(r"#define SG0_OP2_FULLY_CONNECTED_WEIGHTS_SCALE 0\.0199999996f\n", text)
    assert re.search(r"#define SG0_OP2_FULLY_CONNECTED_WEIGHTS_ZERO_POINT 128LL\n", text)


def test_c_header_dequantized_has_no_quantization(quantized_model, tmp_path):
    header = tmp_path / "weights.h"
    lo.cli("extract", quantized_model, "--dequantize", "--layout", "keras", "-o", header)
    text = header.read_text()
    assert not re.search(r"#define \w+_QUANT_|const float \w+_scale\[|const int64_t \w+_zero_point\[", text)
    assert "/* sg0.op0.CONV_2D/filter (conv/out), float32 layout HWIO */" in text


# ---------------------------------------------------------------------------------------------
# Progress on a terminal

PROGRESS_THRESHOLD = 64 << 20  # tools/litelens/cmd_layers.cpp: only exports of 64 MiB and more


@pytest.fixture(scope="module")
def large_model(tmp_path_factory):
    """One float64 array just over the threshold: progress must move within it."""
    mb = ModelBuilder()
    x = mb.tensor("x", FLOAT64, [1])
    mb.op("ADD", [x, mb.const("w", np.zeros(PROGRESS_THRESHOLD // 8 + 1024, np.float64))],
          [mb.tensor("y", FLOAT64, [1])])
    mb.io([x], [])
    path = tmp_path_factory.mktemp("large") / "large.tflite"
    path.write_bytes(mb.build())
    return path


def _extract_on_terminal(model, out) -> tuple[int, bytes]:
    """`litelens extract MODEL -o OUT` with stderr on a pseudo-terminal: (exit code, what it showed)."""
    master, slave = os.openpty()
    try:
        p = subprocess.Popen([CLI, "extract", str(model), "-o", str(out)], stdout=subprocess.DEVNULL, stderr=slave)
    finally:
        os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return p.wait(timeout=120), shown


@pytest.mark.parametrize("name", ["w.npz", "w.safetensors", "npy_folder", "w.json", "w.h"])
def test_progress_on_a_terminal(large_model, tmp_path, name):
    code, shown = _extract_on_terminal(large_model, tmp_path / name)
    assert code == 0, shown[-2000:]
    percents = [int(v) for v in re.findall(rb"\rlitelens: exporting +(\d+)% \(\d+ of 64 MiB\)", shown)]
    assert percents and percents[-1] == 100 and shown.endswith(b"\r\n"), shown[-300:]
    assert percents == sorted(set(percents)), "progress goes back or repeats"
    # Within the one array, not only at its end.
    assert len([p for p in percents if p < 100]) >= 6, percents


def test_no_progress_off_a_terminal_or_when_small(large_model, model, tmp_path):
    for name in ("w.npz", "w.json"):
        p = lo.cli("extract", large_model, "-o", tmp_path / name)
        assert p.stderr == "", p.stderr[-300:]
    code, shown = _extract_on_terminal(model, tmp_path / "small.npz")
    assert code == 0 and b"exporting" not in shown, shown[-300:]


# ---------------------------------------------------------------------------------------------
# ZIP64: more members than a ZIP's 16-bit count


def test_npz_with_more_than_65535_arrays_is_zip64(tmp_path):
    """70,000 arrays: one CONCATENATION whose 70,000 inputs name 100 constants (a model of
    70,000 tensors takes the Python builder a minute). The entry count needs the ZIP64 end
    records; zipfile and numpy read them."""
    n, distinct = 70_000, 100
    mb = ModelBuilder()
    consts = [mb.const(f"c{i}", np.array([i], np.int8)) for i in range(distinct)]
    y = mb.tensor("y", INT8, [n])
    mb.op("CONCATENATION", [consts[i % distinct] for i in range(n)], [y], options=("ConcatenationOptions", {"Axis": 0}))
    mb.io([], [y])
    path = tmp_path / "many.tflite"
    path.write_bytes(mb.build())
    out = tmp_path / "many.npz"
    lo.cli("extract", path, "-o", out)
    data = out.read_bytes()
    # End of central directory: 16-bit counts saturated; the ZIP64 locator just before it
    # points at the ZIP64 end record, which holds the real count.
    eocd = data.rindex(b"PK\x05\x06")
    disk_entries, total_entries = struct.unpack_from("<HH", data, eocd + 8)
    assert (disk_entries, total_entries) == (0xFFFF, 0xFFFF)
    locator = eocd - 20
    assert data[locator:locator + 4] == b"PK\x06\x07"
    (zip64_end,) = struct.unpack_from("<Q", data, locator + 8)
    assert data[zip64_end:zip64_end + 4] == b"PK\x06\x06"
    assert struct.unpack_from("<QQ", data, zip64_end + 24) == (n + 1, n + 1)
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        assert len(names) == n + 1 and names[-1] == "manifest.json"
        assert z.testzip() is None, "CRC mismatch"
        manifest = json.loads(z.read("manifest.json"))
    assert len(manifest["arrays"]) == n
    with np.load(out, allow_pickle=False) as npz:
        assert len(npz.files) == n + 1
        for i in (0, 1, 65_534, 65_535, 65_536, n - 1):
            np.testing.assert_array_equal(npz[f"sg0.op0.CONCATENATION/values_{i}"], np.array([i % distinct], np.int8))
