#!/usr/bin/env python3
"""The property test of tolerated oddities: every oddity litelens opens with a warning
(docs/format.md, "Tolerated oddities") goes through every command, on built and real models.

The cases come from tests/unit/oddity_test.cpp (each oddity of tests/support/oddities.cpp applied
to the model zoo, to MediaPipe models and to a converter's int8 model; "<name>\\t ok:<code>" in
manifest.tsv) and from tests/corruption/regressions/ (named cases that random seeds once found).
On each case:

  * every command of the CLI matrix (cli_matrix.COMMANDS: info, ops, tensors, layers, extract,
    files, diff, the --from round trip) under the matrix's contract, plus extract in the other
    formats (a folder of .npy, JSON, a C header) and with --dequantize;
  * the probe (`info --json`) shows the case's warning code;
  * `diff --json MODEL MODEL` finds every parameter identical;
  * three patches, each checked against the input (`check_patched`):
      --from   an export of the same model: nothing changes;
      --set    one exported array with one element changed (the oddity's own tensor where it is
               a parameter): only that tensor's bytes change;
      --set-quant  new per-tensor or per-axis parameters on a quantized tensor (the oddity's own
               where it has one): only that tensor's quantization changes;
    and the patched model must open with the same warnings (less the layout oddities a rewrite
    repairs and the quantization oddities --set-quant replaces), the same readings (`info`,
    `ops`, `tensors` JSON, offsets and buffer numbers aside) and byte-identical untouched
    constants. A patch that cannot be done faithfully must fail before writing, exit 1, naming
    the tensor and the oddity: on the data_without_size cases, --set of the odd tensor itself.

Usage: oddity_matrix.py --cli PATH --generator PATH [--work DIR] [--jobs N] [--stride N] [--sanitized]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cli_matrix as cm  # noqa: E402

HERE = Path(__file__).resolve().parent
REGRESSIONS = HERE / "regressions"

EXTRA_COMMANDS = [
    cm.cmd("extract npy", ("extract", "{model}", "-o", "{out}/arrays", "--format", "npy"), heavy=True),
    cm.cmd("extract json", ("extract", "{model}", "-o", "{out}/params.json"), heavy=True),
    cm.cmd("extract c", ("extract", "{model}", "-o", "{out}/params.h"), heavy=True),
    cm.cmd("extract --dequantize", ("extract", "{model}", "-o", "{out}/deq.npz", "--dequantize"), heavy=True),
]

# Layout oddities a rewrite repairs; quantization oddities that --set-quant replaces.
REPAIRED = cm.REPAIRED_BY_PATCH
QUANT_ODDITIES = {"zero_point_count", "extra_scales", "scales_on_scalar"}


SANITIZED = False  # --sanitized: ASan/UBSan binaries, no address-space limit


def run(cli: str, args: list[str], size: int) -> cm.Run:
    return cm.run_process([cli] + args, size, sanitized=SANITIZED)


def json_of(cli: str, args: list[str], size: int, where: str, failures: list[str]):
    r = run(cli, args, size)
    if r.rc != 0:
        failures.append(f"{where}: {' '.join(args[:1])} exit {r.rc}: {r.lines[:1]}")
        return None
    return json.loads(r.stdout)


def warnings_of(info: dict, requant: set) -> list:
    return [(w["code"], w["message"]) for w in info["warnings"]
            if w["code"] not in REPAIRED
            and not (w["code"] in QUANT_ODDITIES and (w.get("subgraph"), w.get("tensor")) in requant)]


def readings(tensors: dict, requant: set) -> list:
    out = []
    for sg in tensors["subgraphs"]:
        for t in sg["tensors"]:
            t = {k: v for k, v in t.items() if k not in ("data_offset", "buffer")}
            if (sg["index"], t["index"]) in requant:
                t.pop("quantization")
            out.append((sg["index"], t))
    return out


def constant_bytes(path: Path, tensors: dict) -> dict:
    data = path.read_bytes()
    return {(sg["index"], t["index"]): data[t["data_offset"]:t["data_offset"] + t["nbytes"]]
            for sg in tensors["subgraphs"] for t in sg["tensors"] if t.get("data_offset") is not None}


def check_patched(cli: str, case: Path, patched: Path, where: str, changed: set, requant: set,
                  before: dict) -> list[str]:
    """What differs between the input and a patched model beyond what the patch asked for."""
    failures: list[str] = []
    size = case.stat().st_size
    info = json_of(cli, ["info", "--json", str(patched)], size, where, failures)
    tensors = json_of(cli, ["tensors", "--json", str(patched)], size, where, failures)
    ops = json_of(cli, ["ops", "--json", str(patched)], size, where, failures)
    if failures:
        return failures
    a, b = cm.kept(before["info"]), cm.kept(info)
    a.pop("warnings")  # compared below, less what --set-quant replaces
    b.pop("warnings")
    if a != b:
        diff = [k for k in b if b[k] != a[k]]
        failures.append(f"{where}: the patched model differs in {diff}")
    if (a := warnings_of(before["info"], requant)) != (b := warnings_of(info, requant)):
        failures.append(f"{where}: warnings differ: input {a}, patched {b}")
    if readings(before["tensors"], requant) != readings(tensors, requant):
        failures.append(f"{where}: tensor readings differ")
    if json.dumps(before["ops"]["subgraphs"]) != json.dumps(ops["subgraphs"]):
        failures.append(f"{where}: operators differ")
    old, new = constant_bytes(case, before["tensors"]), constant_bytes(patched, tensors)
    for key, data in old.items():
        if key in changed:
            if new.get(key) == data:
                failures.append(f"{where}: sg{key[0]} #{key[1]} was to change but holds the old bytes")
        elif new.get(key) != data:
            failures.append(f"{where}: untouched sg{key[0]} #{key[1]} changed its bytes")
    return failures


def odd_tensors(info: dict, code: str) -> list:
    return [(w["subgraph"], w["tensor"]) for w in info["warnings"] if w["code"] == code and "tensor" in w]


def set_patch(cli: str, case: Path, out: Path, code: str, before: dict) -> list[str]:
    """--set of one exported array with one element changed."""
    where = f"{case.name} [patch --set]"
    size = case.stat().st_size
    r = run(cli, ["extract", str(case), "-o", str(out / "all.npz")], size)
    if r.rc != 0:
        return [] if r.rc == 1 and "no layer matches" in (r.lines or [""])[0] else [f"{where}: extract exit {r.rc}"]
    with zipfile.ZipFile(out / "all.npz") as z:
        manifest = json.loads(z.read("manifest.json"))["arrays"]
    if not manifest:
        return []
    odd = set(odd_tensors(before["info"], code))
    keys = sorted(manifest, key=lambda k: ((manifest[k]["subgraph"], manifest[k]["stored_tensor"]) not in odd, k))
    key = keys[0]
    entry = manifest[key]
    values = np.load(out / "all.npz")[key]
    flat = values.reshape(-1).copy()
    if flat.size == 0:
        return []
    nonzero = np.flatnonzero(flat)
    i = int(nonzero[0]) if nonzero.size else 0
    flat[i] = 0 if flat[i] != 0 else 1
    np.save(out / "new.npy", flat.reshape(values.shape))
    patched = out / "set.tflite"
    args = ["patch", str(case), "-o", str(patched), "--set", f"{key}={out / 'new.npy'}"]
    if entry["values"] != "stored":
        args.append("--quantize")
    r = run(cli, args, size)
    if r.rc != 0:
        return [f"{where}: {key}: exit {r.rc}: {(r.lines or [''])[0]}"]
    changed = {(entry["subgraph"], entry["stored_tensor"])}
    return check_patched(cli, case, patched, where + f" {key}", changed, set(), before)


def set_quant_patch(cli: str, case: Path, out: Path, code: str, before: dict) -> list[str]:
    """--set-quant with new parameters on a quantized (affine) tensor."""
    where = f"{case.name} [patch --set-quant]"
    odd = set(odd_tensors(before["info"], code))
    candidates = []
    for sg in before["tensors"]["subgraphs"]:
        for t in sg["tensors"]:
            q = t.get("quantization")
            if q and q.get("scheme") == "affine" and q.get("scale"):
                candidates.append(((sg["index"], t["index"]) not in odd, sg["index"], t))
    if not candidates:
        return []
    _, s, t = min(candidates, key=lambda c: (c[0], c[1], c[2]["index"]))
    q, shape = t["quantization"], t["shape"]
    axis = q["quantized_dimension"]
    per_axis = len(q["scale"]) > 1 and 0 <= axis < len(shape) and shape[axis] > 0
    n = shape[axis] if per_axis else 1
    spec = "scale:" + ",".join(["0.5"] * n) + ";zero_point:0" + (f";axis:{axis}" if per_axis else "")
    patched = out / "quant.tflite"
    r = run(cli, ["patch", str(case), "-o", str(patched), "--subgraph", str(s), "--set-quant",
                  f"#{t['index']}={spec}"], case.stat().st_size)
    if r.rc != 0:
        return [f"{where}: sg{s} #{t['index']}: exit {r.rc}: {(r.lines or [''])[0]}"]
    failures = check_patched(cli, case, patched, where + f" sg{s} #{t['index']}", set(), {(s, t["index"])}, before)
    got = json_of(cli, ["tensors", "--json", str(patched)], case.stat().st_size, where, failures)
    if got:
        q2 = got["subgraphs"][s]["tensors"][t["index"]]["quantization"]
        if q2["scale"] != [0.5] * n or q2["zero_point"] != [0] * n:
            failures.append(f"{where}: sg{s} #{t['index']} has {q2}, not the parameters set")
    return failures


def from_patch(cli: str, case: Path, out: Path, before: dict) -> list[str]:
    where = f"{case.name} [patch --from]"
    size = case.stat().st_size
    r = run(cli, ["extract", str(case), "-o", str(out / "p.npz")], size)
    if r.rc != 0:
        return []  # no layers: the matrix's own round trip holds it to its contract
    patched = out / "from.tflite"
    r = run(cli, ["patch", str(case), "-o", str(patched), "--from", str(out / "p.npz")], size)
    if r.rc == 2 and "nothing to do" in (r.lines or [""])[0]:
        return []
    if r.rc != 0:
        return [f"{where}: exit {r.rc}: {(r.lines or [''])[0]}"]
    return check_patched(cli, case, patched, where, set(), set(), before)


def refused_patch(cli: str, case: Path, out: Path, code: str, before: dict) -> list[str]:
    """A tensor whose oddity makes patching it unfaithful (data_without_size: no element size to
    encode into) is refused before anything is written, exit 1, naming the tensor and the oddity."""
    failures: list[str] = []
    for s, t in odd_tensors(before["info"], code):
        np.save(out / "any.npy", np.zeros([2], np.float32))
        patched = out / "refused.tflite"
        r = run(cli, ["patch", str(case), "-o", str(patched), "--subgraph", str(s), "--set", f"#{t}={out / 'any.npy'}"],
                case.stat().st_size)
        line = (r.lines or [""])[0]
        where = f"{case.name} [patch --set sg{s} #{t}]"
        if r.rc != 1 or f"sg{s} #{t}" not in line or code not in line or not line.endswith("[unsupported]"):
            failures.append(f"{where}: expected exit 1 naming the tensor and {code}, got exit {r.rc}: {line}")
        if patched.exists() or [p for p in out.iterdir() if ".tmp" in p.name]:
            failures.append(f"{where}: a refused patch left files")
    return failures


def properties(cli: str, case: Path, code: str) -> list[str]:
    size = case.stat().st_size
    failures: list[str] = []
    before = {"info": json_of(cli, ["info", "--json", str(case)], size, case.name, failures),
              "tensors": json_of(cli, ["tensors", "--json", str(case)], size, case.name, failures),
              "ops": json_of(cli, ["ops", "--json", str(case)], size, case.name, failures)}
    if failures:
        return failures
    codes = {w["code"] for w in before["info"]["warnings"]}
    if code != "*" and code not in codes:
        failures.append(f"{case.name}: opened without warning {code} (got {sorted(codes)})")
    d = json_of(cli, ["diff", "--json", str(case), str(case)], size, case.name + " [diff]", failures)
    if d and d["summary"]["identical_params"] != d["summary"]["params"]:
        failures.append(f"{case.name} [diff]: the model differs from itself: {d['summary']}")
    out = Path(tempfile.mkdtemp(prefix="litelens-odd-"))
    try:
        failures += from_patch(cli, case, out, before)
        failures += set_patch(cli, case, out, code, before)
        failures += set_quant_patch(cli, case, out, code, before)
        if code == "data_without_size":
            failures += refused_patch(cli, case, out, code, before)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return failures


def load_cases(manifest: Path, folder: Path) -> list[tuple[Path, str]]:
    cases = []
    for line in manifest.read_text().splitlines():
        name, _, expected = line.partition("\t")
        if expected.startswith("ok:"):
            cases.append((folder / f"{name}.tflite", expected[3:]))
    return cases


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--generator", required=True, help="the unit-test binary (oddity_test writes the cases)")
    ap.add_argument("--work", default=None)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--stride", type=int, default=1, help="run every Nth case only")
    ap.add_argument("--sanitized", action="store_true", help="the binaries use ASan/UBSan")
    args = ap.parse_args()
    global SANITIZED
    SANITIZED = args.sanitized

    if args.work:
        Path(args.work).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=args.work))
    cases_dir = work / "cases"
    cases_dir.mkdir()
    gen = subprocess.run([args.generator, "--gtest_filter=oddity_test.*", "--gtest_brief=1"],
                         env=dict(os.environ, LITELENS_CASE_DIR=str(cases_dir)),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if gen.returncode != 0:
        print("oddity_matrix: the case generator failed:\n" + "\n".join(gen.stdout.splitlines()[-20:]))
        return 1
    cases = load_cases(cases_dir / "manifest.tsv", cases_dir)
    if len(cases) < 200:
        print(f"oddity_matrix: only {len(cases)} cases; the generator wrote too few")
        return 1
    cases = cases[::max(1, args.stride)] + load_cases(REGRESSIONS / "manifest.tsv", REGRESSIONS)

    started = time.monotonic()
    failures: list[str] = []
    jobs: list[cm.Job] = []
    for case, code in cases:
        probe = cm.Job(case, "ok", cm.PROBE)
        failures += cm.run_job(args.cli, probe, SANITIZED)
        kind, facts = cm.probe_expectation(probe, "ok:" + code)
        if kind != "ok":
            failures.append(f"{case.name}: does not open")
            continue
        for c in cm.COMMANDS[1:] + EXTRA_COMMANDS:
            jobs.append(cm.Job(case, "ok", c, facts))
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for result in pool.map(lambda j: cm.run_job(args.cli, j, SANITIZED), jobs):
            failures += result
        for result in pool.map(lambda c: properties(args.cli, c[0], c[1]), cases):
            failures += result
    print(f"oddity_matrix: {len(cases)} cases ({len({c for _, c in cases})} warning codes), {len(jobs)} command "
          f"jobs and 3 patches each, in {time.monotonic() - started:.1f} s, {len(failures)} failures")
    return cm.report("oddity_matrix", failures, cases_dir, work)


if __name__ == "__main__":
    sys.exit(main())
