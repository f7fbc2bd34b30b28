#!/usr/bin/env python3
"""`make bench`: litelens against what users would otherwise run, on the same machine, in one run.

Prints one table (rows: scenario x model; columns: litelens CLI, litelens Python, a C++ program on
the litelens library (bench/api_peer.cpp), the LiteRT interpreter recipe, the `tflite` package,
`flatc --json`, `cp`), then where the in-process tools spend their time, the cost of `.numpy()`,
the decode micro-benchmarks, and the targets of issue 6 with the measured figures. Results also go to BUILD/bench-results.{md,json}.

Every measurement is a fresh process, timed from outside (wall clock, median of the runs) with
its peak RSS from wait4(2) (the maximum over the runs). A slow tool gets fewer runs (never fewer
than one): each cell stops once its runs took --budget seconds; the run count is shown when it
is below the target.

Usage: scripts/bench.py [--build DIR] [--runs N] [--budget S] [--quick] [--only PREFIX ...]
The litelens Python column appears when `import litelens` works in a subprocess.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("LITELENS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "litelens")
PEERS = os.path.join(ROOT, "bench", "peers.py")
SCHEMA = os.path.join(ROOT, "schema", "tflite.fbs")
PY = sys.executable

TOOLS = ["litelens CLI", "litelens Python", "litelens C++", "interpreter", "tflite pkg", "flatc", "cp"]


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------------------------

@dataclass
class Cell:
    wall: list = field(default_factory=list)      # seconds per run
    rss: list = field(default_factory=list)       # peak RSS bytes per run
    cpu: list = field(default_factory=list)       # user + system CPU seconds per run
    work: list = field(default_factory=list)      # in-process work seconds (Python tools, C++ program)
    imports: list = field(default_factory=list)   # in-process import seconds (Python tools)
    info: dict = field(default_factory=dict)
    error: str | None = None
    target_runs: int = 0
    note: str = ""

    @property
    def time(self) -> float | None:
        return statistics.median(self.wall) if self.wall else None

    @property
    def peak(self) -> int | None:
        return max(self.rss) if self.rss else None

    @property
    def cpu_time(self) -> float | None:
        return statistics.median(self.cpu) if self.cpu else None

    def as_json(self) -> dict:
        return {"wall_s": self.wall, "median_s": self.time, "cpu_s": self.cpu, "peak_rss_bytes": self.peak,
                "work_s": self.work,
                "import_s": self.imports, "info": self.info, "error": self.error, "note": self.note}


MEASURE: str | None = None  # bench/measure.cpp, set by Bench


def run_process(cmd: list[str], capture: bool) -> tuple[float, int, float, int, str, str]:
    """Runs cmd; returns (wall seconds, peak RSS bytes, CPU seconds, exit code, stdout, stderr).
    Through the launcher when built (see bench/measure.cpp: a child of this Python process would
    inherit its RSS as a floor), else timed here."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".measure") as res:
        t0 = time.perf_counter()
        full = [MEASURE, res.name] + cmd if MEASURE else cmd
        p = subprocess.Popen(full, stdout=out if capture else subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        rss, cpu, code = usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime, p.returncode
        if MEASURE:
            fields = res.read().split()
            if len(fields) == 5:
                wall, rss, cpu, code = float(fields[0]), int(fields[1]), float(fields[2]) + float(fields[3]), int(fields[4])
        out.seek(0)
        err.seek(0)
        return wall, rss, cpu, code, out.read().decode(errors="replace"), err.read().decode(errors="replace")


def run_once(cell: Cell, cmds: list[list[str]], reports: bool) -> bool:
    """One run of the command sequence into `cell`: its time is the sum over the commands, its
    RSS the largest. With `reports`, each command prints a JSON line with its in-process work time
    (and import time, for the Python tools), which is collected too. False (and cell.error set)
    when a command fails."""
    wall = cpu = 0.0
    rss = 0
    for cmd in cmds:
        w, r, c, code, out, err = run_process(cmd, capture=reports)
        if code != 0:
            lines = [l for l in err.strip().splitlines() if l and not l.startswith(("INFO:", "WARNING:"))]
            cell.error = (lines[-1] if lines else f"exit status {code}")[:160]
            return False
        wall += w
        cpu += c
        rss = max(rss, r)
        if reports:
            for line in out.splitlines():
                if line.startswith("{"):
                    d = json.loads(line)
                    cell.work.append(d.pop("work_s"))
                    if "import_s" in d:
                        cell.imports.append(d.pop("import_s"))
                    cell.info = d
    cell.wall.append(wall)
    cell.cpu.append(cpu)
    cell.rss.append(rss)
    return True


def measure(cmds: list[list[str]], runs: int, budget: float, prepare=None, reports: bool = False) -> Cell:
    """Runs the command sequence `runs` times (fewer once `budget` seconds are spent).
    prepare() runs, untimed, before each run."""
    cell = Cell(target_runs=runs)
    for _ in range(runs):
        if prepare:
            prepare()
        if not run_once(cell, cmds, reports) or sum(cell.wall) >= budget:
            break
    return cell


# ---------------------------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------------------------

def fmt_time(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1e-5:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def fmt_bytes(b: float | None) -> str:
    if b is None:
        return "-"
    if b >= 1 << 30:
        return f"{b / (1 << 30):.2f} GiB"
    if b >= 1 << 20:
        return f"{b / (1 << 20):.0f} MiB"
    return f"{b / 1024:.0f} KiB"


def fmt_ratio(r: float) -> str:
    return f"×{r:.0f}" if r >= 10 else f"×{r:.2g}"


def cell_text(cell: Cell | None, base: float | None, is_base: bool) -> str:
    if cell is None:
        return "n/a"
    if cell.error:
        return f"fails: {cell.error}"
    text = f"{fmt_time(cell.time)} ({fmt_time(cell.cpu_time)} cpu) · {fmt_bytes(cell.peak)}"
    if not is_base and base and cell.time:
        text += f" · {fmt_ratio(cell.time / base)}"
    if cell.target_runs and len(cell.wall) < cell.target_runs:
        text += f" (n={len(cell.wall)})"
    if cell.note:
        text += f" {cell.note}"
    return text


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# environment
# ---------------------------------------------------------------------------------------------

def lscpu_summary() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor()
    keep = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        keep[k.strip()] = v.strip()
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / (1 << 20):.0f} GiB RAM"
    except OSError:
        pass
    flags = keep.get("Flags", "").split()
    simd = ",".join(f for f in ("avx2", "avx512f", "f16c") if f in flags)
    return (f"{keep.get('Model name', '?')}, {keep.get('CPU(s)', '?')} CPUs ({keep.get('Architecture', '')}, {simd}), "
            f"L2 {keep.get('L2 cache', '?')}, L3 {keep.get('L3 cache', '?')}, {mem}, "
            f"{keep.get('Hypervisor vendor', 'bare metal')} guest, Linux {platform.release()}")


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("numpy", "ai-edge-litert", "tflite", "safetensors", "litelens"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    try:
        out["flatc"] = subprocess.run(["flatc", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        out["flatc"] = None
    try:
        out["litelens git"] = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                                             capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    return out


def python_package_works() -> bool:
    r = subprocess.run([PY, "-c", "import litelens; litelens.open"], capture_output=True)
    return r.returncode == 0


def mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def warm(path: str) -> None:
    """Reads a file once so that every tool starts from the page cache."""
    with open(path, "rb", buffering=0) as f:
        while f.read(64 << 20):
            pass


def remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.exists(path):
        os.unlink(path)


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------

def int8_model() -> tuple[str, str] | None:
    """The MobileNetV2 int8 model (bench/make_int8_model.py), else the fixtures' small convnet."""
    path = os.path.join(CACHE, "bench", "mobilenet_v2_int8.tflite")
    if not os.path.exists(path) and importlib.util.find_spec("tensorflow") and importlib.util.find_spec("tf_keras"):
        subprocess.run([PY, os.path.join(ROOT, "bench", "make_int8_model.py"), "--out", path],
                       stdout=subprocess.DEVNULL, check=False)
    if os.path.exists(path):
        return "MobileNetV2 int8", path
    fixture = os.path.join(CACHE, "fixtures", "convnet_int8.tflite")
    if os.path.exists(fixture):
        log("no TensorFlow to make the MobileNetV2 int8 model: using the fixtures' convnet_int8")
        return "convnet int8 (fixture)", fixture
    log("no int8 model (install TensorFlow: scripts/install-deps.sh --fixtures)")
    return None


def big_model(build: str) -> str | None:
    path = os.path.join(CACHE, "bench", "big_fc_v1.tflite")
    if not os.path.exists(path):
        gen = os.path.join(build, "bench", "litelens_make_big_model")
        if not os.path.exists(gen):
            log(f"{gen} is missing (build with -DLITELENS_BUILD_BENCH=ON)")
            return None
        free = shutil.disk_usage(os.path.dirname(path) if os.path.isdir(os.path.dirname(path)) else CACHE).free
        if free < (12 << 30):
            log(f"only {fmt_bytes(free)} free in {CACHE}: the 3 GB scenarios need 12 GiB; skipped")
            return None
        os.makedirs(os.path.dirname(path), exist_ok=True)
        log(f"generating the 3.2 GB model {path} (once; cached)")
        subprocess.run([gen, path], check=True, stdout=subprocess.DEVNULL)
    return path


# ---------------------------------------------------------------------------------------------
# the benchmark
# ---------------------------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.cli = os.environ.get("LITELENS_CLI") or os.path.join(self.build, "tools", "litelens", "litelens")
        global MEASURE
        launcher = os.path.join(self.build, "bench", "litelens_bench_measure")
        MEASURE = launcher if os.path.exists(launcher) else None
        if not MEASURE:
            log(f"{launcher} is missing: peak RSS values include this script's own RSS")
        self.api = os.path.join(self.build, "bench", "litelens_bench_api")
        self.have_api = os.path.exists(self.api)
        if not self.have_api:
            log(f"{self.api} is missing (build with -DLITELENS_BUILD_BENCH=ON): no litelens C++ column")
        self.have_py = python_package_works()
        self.have_interp = importlib.util.find_spec("ai_edge_litert") is not None
        self.have_tflite = importlib.util.find_spec("tflite") is not None
        self.have_flatc = shutil.which("flatc") is not None
        self.rows: list[tuple[str, str, dict]] = []   # (scenario, model label, {tool: Cell})
        self.extra: dict = {}
        self.shm = tempfile.mkdtemp(prefix="litelens-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        self.disk = os.path.join(CACHE, "bench", "out")
        os.makedirs(self.disk, exist_ok=True)

    def wanted(self, scenario: str) -> bool:
        return not self.args.only or any(scenario.startswith(p) for p in self.args.only)

    def peer(self, tool: str, scenario: str, model: str, runs: int, budget: float, out: str | None = None,
             prepare=None) -> Cell:
        cmd = [PY, PEERS, tool, scenario, model] + (["--out", out] if out else [])
        return measure([cmd], runs, budget, prepare=prepare, reports=True)

    def cleaner(self, path: str, sync: bool = False):
        def prepare():
            remove(path)
            if sync:
                os.sync()
        return prepare

    # ---- (a) every CONV_2D filter and bias ----------------------------------------------------
    def conv(self, label: str, model: str) -> None:
        a = self.args
        out = os.path.join(self.shm, "conv.npz")
        cells = {"litelens CLI": measure([[self.cli, "extract", model, "--op", "CONV_2D", "-o", out]], a.runs, a.budget,
                                         prepare=self.cleaner(out))}
        if self.have_py:
            cells["litelens Python"] = self.peer("litelens", "conv", model, a.runs, a.budget)
        if self.have_api:
            cells["litelens C++"] = measure([[self.api, "conv", model]], a.runs, a.budget, reports=True)
        if self.have_interp:
            cells["interpreter"] = self.peer("interpreter", "conv", model, a.runs, a.budget)
        self.conv_check(model, cells)
        if self.have_tflite:
            cells["tflite pkg"] = self.peer("tflite", "conv", model, a.runs, a.budget)
        self.rows.append(("(a) CONV_2D filters+biases", label, cells))

    def conv_check(self, model: str, cells: dict) -> None:
        """Checks the (a) results against the litelens Python package's arrays (skipped when it
        is not installed): the C++ program's CRC-32 of its arrays, and what the interpreter
        recipe returned. Each finding becomes its cell's note."""
        if not self.have_py:
            return
        import zlib

        import numpy as np

        mine = os.path.join(self.shm, "mine.npz")
        r = subprocess.run([PY, PEERS, "litelens", "conv", model, "--check", mine], capture_output=True, text=True)
        if r.returncode != 0:
            return
        ref = np.load(mine)
        if "litelens C++" in cells:
            crc = 0
            for key in sorted(ref.files, key=lambda k: (int(k.split("/")[0]), k.split("/")[1] != "filter")):
                crc = zlib.crc32(np.ascontiguousarray(ref[key]).tobytes(), crc)
            # The bytes of every array in order (shapes and dtypes are the same API's, see api_peer.cpp).
            r = subprocess.run([self.api, "conv", model, "--crc"], capture_output=True, text=True)
            got = json.loads(r.stdout).get("crc32") if r.returncode == 0 else None
            if got is None:
                cells["litelens C++"].note = f"[check run failed: exit {r.returncode}]"
            else:
                cells["litelens C++"].note = "[same arrays as Python]" if got == crc else "[ARRAYS DIFFER from Python]"
            self.extra.setdefault("api_conv_check", {})[os.path.basename(model)] = {"crc32": got, "expected": crc}
        if "interpreter" in cells:
            cells["interpreter"].note = self.interpreter_conv_check(model, ref)

    def interpreter_conv_check(self, model: str, ref) -> str:
        """What the interpreter recipe returned, against the values stored in the file."""
        import numpy as np

        theirs = os.path.join(self.shm, "theirs.npz")
        r = subprocess.run([PY, PEERS, "interpreter", "conv", model, "--check", theirs], capture_output=True, text=True)
        if r.returncode != 0:
            return ""
        with open(theirs + ".json") as f:
            errors = json.load(f)["errors"]
        got = np.load(theirs)
        filters = [k for k in ref.files if k.endswith("/filter")]
        wrong = zeros = 0
        for k in filters:
            if k not in got.files:
                continue
            g = got[k]
            if g.shape != ref[k].shape or not np.array_equal(g.astype(np.float64), ref[k].astype(np.float64)):
                wrong += 1
                zeros += not np.any(g)
        failed = sum(1 for k in errors if k.endswith("/1"))
        if not (wrong or failed):
            return ""
        text = f"[{wrong + failed}/{len(filters)} filters wrong"
        if zeros:
            text += f": {zeros} all zeros"
        if failed:
            text += f": {failed} errors"
        self.extra.setdefault("interpreter_conv_check", {})[os.path.basename(model)] = {
            "filters": len(filters), "wrong": wrong, "all_zero": zeros, "errors": failed}
        return text + "]"

    # ---- (b) inspect ----------------------------------------------------------------------------
    def inspect(self, label: str, model: str, flatc_runs: int) -> None:
        a = self.args
        cells = {"litelens CLI": measure([[self.cli, "ops", model, "--json"], [self.cli, "tensors", model, "--json"]],
                                         a.runs, a.budget)}
        if self.have_py:
            cells["litelens Python"] = self.peer("litelens", "inspect", model, a.runs, a.budget)
        if self.have_api:
            cells["litelens C++"] = measure([[self.api, "inspect", model]], a.runs, a.budget, reports=True)
        if self.have_interp:
            cells["interpreter"] = self.peer("interpreter", "inspect", model, a.runs, a.budget)
            cells["interpreter"].note = "[no op options]"
        if self.have_tflite:
            cells["tflite pkg"] = self.peer("tflite", "inspect", model, a.runs, a.budget)
        if self.have_flatc and flatc_runs:
            out = os.path.join(self.shm, "flatc")
            cells["flatc"] = measure([["flatc", "-t", "--strict-json", "--defaults-json", "--raw-binary", "-o", out,
                                       SCHEMA, "--", model]], flatc_runs, a.budget, prepare=self.cleaner(out))
            json_size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out)) if os.path.isdir(out) else 0
            cells["flatc"].note = f"[{fmt_bytes(json_size)} JSON]"
            remove(out)
        self.rows.append(("(b) inspect: ops+options, tensors+quant", label, cells))

    # ---- (c) export every weight ----------------------------------------------------------------
    def export(self, label: str, model: str, fmt: str) -> None:
        a = self.args
        out = os.path.join(self.shm, f"weights.{fmt}")
        prep = self.cleaner(out)
        cells = {"litelens CLI": measure([[self.cli, "extract", model, "-o", out]], a.runs, a.budget, prepare=prep)}
        if self.have_py:
            cells["litelens Python"] = self.peer("litelens", "export", model, a.runs, a.budget, out, prep)
        if self.have_interp:
            cells["interpreter"] = self.peer("interpreter", "export", model, a.runs, a.budget, out, prep)
        if self.have_tflite:
            cells["tflite pkg"] = self.peer("tflite", "export", model, a.runs, a.budget, out, prep)
        remove(out)
        self.rows.append((f"(c) export all weights .{fmt}", label, cells))

    # ---- (d) the 3 GB model ---------------------------------------------------------------------
    def big_list(self, model: str) -> None:
        a = self.args
        warm(model)
        cells = {"litelens CLI": measure([[self.cli, "layers", model, "--no-values"]], a.runs, a.budget)}
        if self.have_py:
            cells["litelens Python"] = self.peer("litelens", "list", model, a.runs, a.budget)
        if self.have_api:
            cells["litelens C++"] = measure([[self.api, "list", model]], a.runs, a.budget, reports=True)
        if self.have_interp and not a.quick:
            cells["interpreter"] = self.peer("interpreter", "list", model, a.runs, a.budget)
        if self.have_tflite and not a.quick:
            cells["tflite pkg"] = self.peer("tflite", "list", model, a.runs, a.budget)
        if self.have_flatc and not a.quick and mem_available() > (10 << 30):
            out = os.path.join(self.shm, "flatc")
            cells["flatc"] = measure([["flatc", "-t", "--strict-json", "--defaults-json", "--raw-binary", "-o", out,
                                       SCHEMA, "--", model]], 1, a.budget, prepare=self.cleaner(out))
            remove(out)
        self.rows.append(("(d) 3 GB: open + list every layer", "big FC (3.24 GB, offset buffers)", cells))

    def big_exports(self, model: str) -> None:
        """Every 3 GB export, litelens's and cp's, run in turns (cp, cp+sync, then each format
        with the CLI and Python; the order rotates every round) so that the disk's moods fall on
        all of them alike; the output is removed and the disk synced, untimed, before every run.
        The peers, which take 5-15 s and 6-10 GB each, run once afterwards."""
        a = self.args
        runs = max(1, min(a.runs, a.big_runs))
        warm(model)
        copy = os.path.join(self.disk, "copy.tflite")
        tasks = [("cp", None, [["cp", model, copy]], False, copy),
                 ("cp+sync", None, [["sh", "-c", 'cp "$0" "$1" && sync "$1"', model, copy]], False, copy)]
        for fmt in ("safetensors", "npy", "npz"):
            out = os.path.join(self.disk, "weights" + ("" if fmt == "npy" else f".{fmt}"))
            tasks.append(("litelens CLI", fmt, [[self.cli, "extract", model, "-o", out]], False, out))
            if self.have_py:
                tasks.append(("litelens Python", fmt, [[PY, PEERS, "litelens", "export", model, "--out", out]], True, out))
        cells = {(tool, fmt): Cell(target_runs=runs) for tool, fmt, _, _, _ in tasks}
        for r in range(runs):
            # The order rotates every round: a run's speed depends on what ran just before it
            # (memory to reclaim, writeback in flight), and no task should always follow the same one.
            k = r % len(tasks)
            for tool, fmt, cmds, reports, out in tasks[k:] + tasks[:k]:
                cell = cells[(tool, fmt)]
                if cell.error:
                    continue
                self.cleaner(out, sync=True)()
                run_once(cell, cmds, reports)
                self.cleaner(out, sync=True)()
        cp, cp_sync = cells[("cp", None)], cells[("cp+sync", None)]
        if cp.time and cp_sync.time:
            cp.note = f"[+sync: {fmt_time(cp_sync.time)}]"
        self.extra["cp_sync"] = cp_sync.as_json()
        for fmt in ("safetensors", "npy", "npz"):
            row = {"litelens CLI": cells[("litelens CLI", fmt)], "cp": cp}
            if self.have_py:
                row["litelens Python"] = cells[("litelens Python", fmt)]
            if fmt != "npy" and not a.quick:
                # The peers hold every array in memory (the interpreter copies each one): 6-10 GB.
                out = os.path.join(self.disk, f"weights.{fmt}")
                for tool, key, have in (("interpreter", "interpreter", self.have_interp),
                                        ("tflite", "tflite pkg", self.have_tflite)):
                    if not have:
                        continue
                    if mem_available() < (14 << 30):
                        row[key] = Cell(error="skipped: less than 14 GiB of memory available")
                        continue
                    warm(model)
                    row[key] = self.peer(tool, "export", model, 1, a.big_budget, out, self.cleaner(out, sync=True))
                    self.cleaner(out, sync=True)()
            self.rows.append((f"(d) 3 GB: export every weight .{fmt}", "big FC (3.24 GB, offset buffers)", row))

    def numpy_cost(self, model: str) -> None:
        out = {}
        for tool in (["litelens"] if self.have_py else []) + (["interpreter"] if self.have_interp else []):
            r = subprocess.run([PY, PEERS, tool, "numpy", model], capture_output=True, text=True)
            lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
            out[tool] = json.loads(lines[-1]) if r.returncode == 0 and lines else {"error": r.stderr.strip()[-200:]}
        self.extra["numpy_cost"] = out

    # ---- micro-benchmarks -----------------------------------------------------------------------
    def micro(self, big: str | None) -> None:
        exe = os.path.join(self.build, "bench", "litelens_decode_bench")
        if not os.path.exists(exe):
            log(f"{exe} is missing: no micro-benchmarks")
            return
        env = dict(os.environ)
        if big:
            env["LITELENS_BENCH_BIG_MODEL"] = big
        r = subprocess.run([exe, "--benchmark_format=json", f"--benchmark_min_time={self.args.micro_time}"],
                           capture_output=True, text=True, env=env)
        if r.returncode != 0:
            log(f"micro-benchmarks failed: {r.stderr[-300:]}")
            return
        self.extra["micro"] = json.loads(r.stdout)["benchmarks"]

    def limits(self) -> None:
        """bench/peer_limits.py: what the peers return on fp16, sparse, custom-op and offset models."""
        r = subprocess.run([PY, os.path.join(ROOT, "bench", "peer_limits.py"), "--json"], capture_output=True, text=True)
        lines = [l for l in r.stdout.splitlines() if l.startswith("[")]
        if r.returncode == 0 and lines:
            self.extra["peer_limits"] = json.loads(lines[-1])
        else:
            log(f"peer_limits.py failed: {r.stderr.strip()[-300:]}")

    def cleanup(self) -> None:
        shutil.rmtree(self.shm, ignore_errors=True)
        shutil.rmtree(self.disk, ignore_errors=True)


# Output bytes per element of each micro-benchmark family (the memcpy it is compared with).
MICRO_OUT = {"BM_widen_float16": 4, "BM_widen_bfloat16": 4, "BM_widen_float8_e4m3fn": 4, "BM_narrow_to_float16": 2,
             "BM_unpack_int4": 1, "BM_dequantize_int8_axis0": 4, "BM_dequantize_int8_axis_last": 4,
             "BM_densify_block1x4_f32": 4, "BM_densify_csr10_f32": 4, "BM_transpose_f32_2d": 4}


def micro_table(benchmarks: list[dict]) -> str:
    rate = {b["name"]: b.get("bytes_per_second") for b in benchmarks}
    rows = []
    for b in benchmarks:
        name = b["name"]
        family, _, arg = name.partition("/")
        if family in ("BM_memcpy", "BM_memcpy_model"):
            continue
        if family in MICRO_OUT:
            out_bytes = int(arg) * MICRO_OUT[family]
            ref = rate.get(f"BM_memcpy/{out_bytes}")
        elif family == "BM_from_bytes":
            out_bytes = None
            ref = rate.get(f"BM_memcpy_model/{arg}")
        else:
            out_bytes, ref = None, None
        r = b.get("bytes_per_second")
        cpu_ms = b["cpu_time"] * {"ns": 1e-6, "us": 1e-3, "ms": 1, "s": 1e3}[b["time_unit"]]
        rows.append([name, fmt_bytes(out_bytes) if out_bytes else "-", f"{cpu_ms:.3g} ms",
                     f"{r / 1e9:.1f} GB/s" if r and family != "BM_open_file" else "-",
                     f"{ref / 1e9:.1f} GB/s" if ref else "-",
                     f"{100 * r / ref:.0f}%" if r and ref else "-"])
    return markdown_table(["benchmark", "output", "CPU time", "rate", "memcpy (same size)", "of memcpy"], rows)


def report(bench: Bench, env: dict) -> tuple[str, dict]:
    parts = []
    parts.append(f"Machine: {env['machine']}\n")
    parts.append(f"Load average: {env['load_start']} at start, {env['load_end']} at the end. "
                 f"Versions: {', '.join(f'{k} {v}' for k, v in env['versions'].items() if v)}.\n")
    if not bench.have_py:
        parts.append("The litelens Python package was not importable: its column is empty "
                     "(pip install . adds it).\n")
    headers = ["scenario", "model"] + TOOLS
    rows = []
    for scenario, label, cells in bench.rows:
        base = cells.get("litelens CLI")
        base_t = base.time if base and not base.error else None
        rows.append([scenario, label] + [cell_text(cells.get(t), base_t, t == "litelens CLI") for t in TOOLS])
    parts.append("Each cell: median wall time of a fresh process (its median user+system CPU time) · peak RSS "
                 "(largest over the runs) · wall time relative to the litelens CLI. n = runs when fewer than "
                 "the target.\n")
    parts.append(markdown_table(headers, rows))

    # Where the in-process tools' time goes.
    prow = []
    in_process = ("litelens Python", "litelens C++", "interpreter", "tflite pkg")
    for scenario, label, cells in bench.rows:
        line = [scenario, label]
        any_work = False
        for t in in_process:
            c = cells.get(t)
            if c and c.work and not c.error:
                any_work = True
                work = fmt_time(statistics.median(c.work))
                line.append(f"{fmt_time(statistics.median(c.imports))} + {work}" if c.imports else work)
            else:
                line.append("-")
        if any_work:
            prow.append(line)
    if prow:
        parts.append("\nInside the processes: import time + work time (medians; the C++ program has no imports), "
                     "process start-up excluded:\n")
        parts.append(markdown_table(["scenario", "model", *in_process], prow))

    nc = bench.extra.get("numpy_cost")
    if nc:
        parts.append("\nGetting one tensor as a NumPy array (median per call, big model, in process):\n")
        nrows = []
        for tool, d in nc.items():
            if "error" in d:
                nrows.append([tool, "fails", "fails", d["error"][:80]])
                continue
            nrows.append([f"litelens `.numpy()`" if tool == "litelens" else "interpreter `get_tensor()`",
                          f"{fmt_time(d['small_s'])} ({fmt_bytes(d['small_bytes'])})",
                          f"{fmt_time(d['large_s'])} ({fmt_bytes(d['large_bytes'])})",
                          "copies" if d["large_copies"] else "zero-copy view"])
        parts.append(markdown_table(["call", "1 KiB tensor", "1 GiB tensor", "array"], nrows))

    if bench.extra.get("peer_limits"):
        parts.append("\nWhat the peers return where the model is not plain (bench/peer_limits.py):\n")
        parts.append(markdown_table(["peer", "case", "finding"],
                                    [[d["peer"], d["case"], d["finding"]] for d in bench.extra["peer_limits"]]))

    if bench.extra.get("micro"):
        parts.append("\nDecode micro-benchmarks (bench/decode_bench.cpp; rates over CPU time, output bytes):\n")
        parts.append(micro_table(bench.extra["micro"]))

    targets = targets_text(bench)
    if targets:
        parts.append("\nTargets (issue 6):\n")
        parts.append(targets)
    return "\n".join(parts) + "\n", {
        "env": env,
        "rows": [{"scenario": s, "model": m, "cells": {t: c.as_json() for t, c in cells.items()}}
                 for s, m, cells in bench.rows],
        "extra": bench.extra,
    }


def find(bench: Bench, prefix: str, model_part: str = "") -> dict | None:
    for s, m, cells in bench.rows:
        if s.startswith(prefix) and model_part in m:
            return cells
    return None


def targets_text(bench: Bench) -> str:
    lines = []

    def ok(flag: bool) -> str:
        return "met" if flag else "NOT met"

    d = find(bench, "(d) 3 GB: open")
    if d and d["litelens CLI"].time:
        c = d["litelens CLI"]
        lines.append(f"- 3 GB model opens and lists every layer in {fmt_time(c.time)} (< 50 ms) with peak RSS "
                     f"{fmt_bytes(c.peak)} (< 64 MB): {ok(c.time < 0.05 and c.peak < 64e6)}.")
    for s, m, cells in bench.rows:
        if not s.startswith("(a)"):
            continue
        cli, py, api, it = (cells.get(t) for t in ("litelens CLI", "litelens Python", "litelens C++", "interpreter"))
        if not (it and it.time):
            continue
        parts = []
        for name, c in (("C++ program", api), ("CLI (writes an .npz)", cli)):
            if c and c.time and not c.error:
                parts.append(f"litelens {name} {fmt_ratio(it.time / c.time)} in wall time, "
                             f"{fmt_ratio(it.cpu_time / c.cpu_time)} in CPU time")
        work = [f"{name} {fmt_ratio(statistics.median(it.work) / statistics.median(c.work))}"
                for name, c in (("C++", api), ("Python", py)) if c and c.work and it.work]
        if work:
            parts.append("work alone, in process: " + ", ".join(work))
        best = max((it.time / c.time for c in (api, cli) if c and c.time and not c.error), default=0)
        lines.append(f"- (a) {m}, against the interpreter recipe (target ×50, process against process, start-up "
                     f"and imports included: most of the recipe's time is Python's): {'; '.join(parts)}: "
                     f"{ok(best >= 50)} process against process.")
    for fmt in ("safetensors", "npy", "npz"):
        cells = find(bench, f"(d) 3 GB: export every weight .{fmt}")
        if not cells:
            continue
        cli, cp = cells.get("litelens CLI"), cells.get("cp")
        sync_t = bench.extra.get("cp_sync", {}).get("median_s")
        if cli and cp and cli.time and cp.time:
            share = cp.time / cli.time
            share_sync = sync_t / cli.time if sync_t else None
            gbps = 3242738688 / cli.time / 1e9
            text = (f"- export .{fmt}: {fmt_time(cli.time)}, {gbps:.2f} GB/s, peak RSS {fmt_bytes(cli.peak)}: "
                    f"{100 * share:.0f}% of the throughput of cp ({fmt_time(cp.time)}, data left in the page cache)")
            if share_sync:
                text += (f", {100 * share_sync:.0f}% of cp + sync ({fmt_time(sync_t)}, data on disk, as litelens "
                         f"leaves it)")
            if fmt != "npz":
                text += f"; target 70%: {ok(share >= 0.7)} against cp, {ok((share_sync or 0) >= 0.7)} against cp + sync"
            else:
                text += "; the CRC-32 of every byte, which the ZIP format requires, is what npz adds"
            lines.append(text + ".")
    nc = bench.extra.get("numpy_cost", {}).get("litelens")
    if nc and "small_s" in nc:
        lines.append(f"- Python `.numpy()`: {fmt_time(nc['small_s'])} for 1 KiB, {fmt_time(nc['large_s'])} for 1 GiB "
                     f"(zero-copy: {not nc['large_copies']}): "
                     f"{ok(nc['large_s'] < 3 * nc['small_s'] + 5e-6 and not nc['large_copies'])}.")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description="litelens benchmarks (issue 6)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--runs", type=int, default=5, help="runs per cell (default 5)")
    ap.add_argument("--budget", type=float, default=8.0, help="seconds per cell before fewer runs (default 8)")
    ap.add_argument("--big-runs", type=int, default=5, help="rounds of the 3 GB exports (default 5)")
    ap.add_argument("--big-budget", type=float, default=20.0, help="seconds per 3 GB cell (default 20)")
    ap.add_argument("--micro-time", type=float, default=0.2, help="Google Benchmark min time (s)")
    ap.add_argument("--quick", action="store_true", help="2 runs, no flatc or peers on the 3 GB model")
    ap.add_argument("--only", nargs="*", help="scenario prefixes: a b c d numpy limits micro")
    ap.add_argument("--no-big", action="store_true", help="skip the 3 GB model")
    args = ap.parse_args()
    if args.quick:
        args.runs = min(args.runs, 2)

    t_start = time.time()
    bench = Bench(args)
    if not os.path.exists(bench.cli):
        log(f"{bench.cli} is missing: run `make bench`")
        return 1
    env = {"machine": lscpu_summary(), "versions": versions(),
           "load_start": " ".join(f"{x:.1f}" for x in os.getloadavg())}
    log(f"litelens Python package: {'found' if bench.have_py else 'not installed (column left empty)'}")

    models = []
    i8 = int8_model() if any(bench.wanted(s) for s in "abc") else None
    if i8:
        models.append(i8)
    heavy = os.path.join(CACHE, "models", "pose_landmark_heavy.tflite")
    if os.path.exists(heavy):
        models.append(("pose_landmark_heavy (fp16)", heavy))
    else:
        log(f"{heavy} is missing (scripts/fetch-models.sh)")
    big = None if args.no_big else big_model(bench.build)

    try:
        for label, path in models:
            if bench.wanted("a"):
                log(f"(a) conv: {label}")
                bench.conv(label, path)
        for label, path in models:
            if bench.wanted("b"):
                log(f"(b) inspect: {label}")
                # flatc takes ~35 s on the 28 MB model (it prints every weight byte): one run there.
                bench.inspect(label, path, 0 if args.quick else (1 if os.path.getsize(path) > (16 << 20) else 3))
        for fmt in ("npz", "safetensors"):
            for label, path in models:
                if bench.wanted("c"):
                    log(f"(c) export .{fmt}: {label}")
                    bench.export(label, path, fmt)
        if big and bench.wanted("d"):
            log("(d) 3 GB model: open + list")
            bench.big_list(big)
            log("(d) 3 GB model: exports and cp, in turns")
            bench.big_exports(big)
        if big and bench.wanted("numpy"):
            log("numpy() cost")
            bench.numpy_cost(big)
        if bench.wanted("limits"):
            log("what the peers could not do")
            bench.limits()
        if bench.wanted("micro"):
            log("micro-benchmarks")
            bench.micro(big)
    finally:
        bench.cleanup()

    env["load_end"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    env["seconds"] = round(time.time() - t_start)
    text, data = report(bench, env)
    print(text)
    os.makedirs(bench.build, exist_ok=True)
    with open(os.path.join(bench.build, "bench-results.md"), "w") as f:
        f.write(text)
    with open(os.path.join(bench.build, "bench-results.json"), "w") as f:
        json.dump(data, f, indent=1)
    log(f"done in {env['seconds']} s; results in {bench.build}/bench-results.{{md,json}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
