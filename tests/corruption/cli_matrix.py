#!/usr/bin/env python3
"""The CLI corruption matrix: run litelens commands on every corrupted case file.

The cases come from the C++ corruption tests (tests/unit/corruption_test.cpp and
hardening_sweep_test.cpp): run with LITELENS_CASE_DIR set, they write each case as
<name>.tflite plus a line "<name>\\t<expected>" in manifest.tsv, where <expected> is an
ErrorKind name, "ok", "ok:<warning>", "ok:*" or "any" (random damage).

For every case and every command in COMMANDS the contract is:
  * the process exits 0 or 1, never 2 (bad usage) and never by a signal (crash, abort,
    sanitizer report, the CPU or memory limit);
  * exit 1 prints exactly one line on stderr, "litelens: <file>: <problem> ... [<kind>]", which
    names the file and, when the case expects a specific kind, that kind;
  * a case expected to open exits 0 (and --json output parses);
  * the input is left exactly as it was (size, mtime and SHA-256);
  * commands that write files leave no partial file behind when they fail;
  * without sanitizers, the process stays within an address-space limit (RLIMIT_AS, the
    `ulimit -v` of the shell) and a peak RSS proportional to the file.

Usage: cli_matrix.py --cli PATH --generator PATH [--work DIR] [--models DIR] [--sanitized]
                     [--stride N] [--jobs N] [--with GROUP ...]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Each command is one list of arguments; {model} is the case file, {out} a fresh empty folder.
# A later feature adds its commands here (or moves its group out of PENDING).
COMMANDS = [
    ["info", "{model}"],
    ["info", "--json", "{model}"],
    ["ops", "{model}"],
    ["ops", "--json", "{model}"],
    ["tensors", "{model}"],
    ["tensors", "--json", "{model}"],
]

# Commands of features still being written (see docs/threat-model.md): enable a group with
# --with GROUP to try it, move it into COMMANDS once the feature has landed. Until then their
# outcome per case is not specified (`layers` on a model without operators, `files` on a broken
# archive may rightly exit 1), so they are held to the rest of the contract only: exit 0 or 1,
# one stderr line naming the file, no signal, the input unchanged, no partial output.
PENDING = {
    "layers": [["layers", "{model}"], ["layers", "--json", "{model}"]],
    "extract": [["extract", "{model}", "-o", "{out}/params.npz"],
                ["extract", "{model}", "-o", "{out}/params.safetensors"]],
    "files": [["files", "{model}"], ["files", "--json", "{model}"],
              ["files", "{model}", "--extract", "{out}/files"]],
}

MIB = 1 << 20


def fingerprint(path: Path) -> tuple:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


def limits(size: int, sanitized: bool):
    """Resource limits for one run (applied in the child before exec)."""
    def apply():
        os.setsid()
        resource.setrlimit(resource.RLIMIT_CPU, (60, 60))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if not sanitized:
            # The `ulimit -v` bound: the tool, its libraries, and room proportional to the file.
            cap = 512 * MIB + 32 * size
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    return apply


def run_one(cli: str, case: Path, expected: str, command: list[str], sanitized: bool) -> list[str]:
    failures = []
    size = case.stat().st_size
    before = fingerprint(case)
    out_dir = Path(tempfile.mkdtemp(prefix="litelens-matrix-"))
    try:
        args = [cli] + [a.replace("{model}", str(case)).replace("{out}", str(out_dir)) for a in command]
        label = f"{case.name} [{' '.join(command).replace('{model}', 'MODEL').replace('{out}', 'OUT')}]"
        env = dict(os.environ)
        if sanitized:
            env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=1:hard_rss_limit_mb=2048:" + env.get("ASAN_OPTIONS", "")
            env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1:" + env.get("UBSAN_OPTIONS", "")
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            start = time.monotonic()
            proc = subprocess.Popen(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
                                    preexec_fn=limits(size, sanitized))
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            except BaseException:
                os.killpg(proc.pid, signal.SIGKILL)
                raise
            proc.returncode = os.waitstatus_to_exitcode(status)
            seconds = time.monotonic() - start
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode("utf-8", "replace")
            stderr = err.read().decode("utf-8", "replace")
        rc = proc.returncode
        lines = [l for l in stderr.splitlines() if l.strip()]
        if rc < 0:
            failures.append(f"{label}: killed by signal {-rc} ({signal.Signals(-rc).name}) after {seconds:.1f} s\n"
                            + "\n".join(lines[-12:]))
        elif rc not in (0, 1):
            failures.append(f"{label}: exit status {rc}\n" + "\n".join(lines[-12:]))
        elif rc == 1:
            if len(lines) != 1:
                failures.append(f"{label}: exit 1 with {len(lines)} stderr lines:\n" + "\n".join(lines[:12]))
            elif not lines[0].startswith("litelens: ") or str(case) not in lines[0]:
                failures.append(f"{label}: stderr does not name the file: {lines[0]}")
            elif expected.startswith("ok"):
                failures.append(f"{label}: expected to open, got: {lines[0]}")
            elif expected != "any" and not lines[0].endswith(f"[{expected}]"):
                failures.append(f"{label}: expected [{expected}], got: {lines[0]}")
            leftovers = [p for p in out_dir.rglob("*") if p.is_file()]
            if leftovers:
                failures.append(f"{label}: failed but left {[str(p.relative_to(out_dir)) for p in leftovers]}")
        else:
            if expected not in ("any",) and not expected.startswith("ok"):
                failures.append(f"{label}: exit 0, expected [{expected}]")
            for line in lines:
                if not line.startswith("litelens: "):
                    failures.append(f"{label}: unexpected stderr: {line}")
                    break
            if "--json" in command:
                try:
                    json.loads(stdout)
                except ValueError as e:
                    failures.append(f"{label}: --json output does not parse: {e}")
        leftovers = [p for p in out_dir.rglob("*") if ".tmp" in p.name or p.name.startswith(".litelens")]
        if leftovers:
            failures.append(f"{label}: temporary files left: {[p.name for p in leftovers]}")
        if not sanitized and rc >= 0:
            peak = usage.ru_maxrss * 1024
            cap = 256 * MIB + 32 * size
            if peak > cap:
                failures.append(f"{label}: peak RSS {peak // MIB} MiB for a {size}-byte file (limit {cap // MIB} MiB)")
        if fingerprint(case) != before:
            failures.append(f"{label}: the input file changed")
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", required=True, help="the litelens binary")
    ap.add_argument("--generator", help="the unit-test binary that writes the cases (skipped with --cases)")
    ap.add_argument("--cases", help="use case files already written here")
    ap.add_argument("--work", default=None,
                    help="parent of this run's work folder (default: the system temp folder); "
                         "kept when something fails")
    ap.add_argument("--models", default=None,
                    help="real models to run as well (expected to open); default: $LITELENS_CACHE/models")
    ap.add_argument("--no-models", action="store_true", help="skip the real models")
    ap.add_argument("--sanitized", action="store_true", help="the binaries use ASan/UBSan: no RLIMIT_AS/RSS checks")
    ap.add_argument("--stride", type=int, default=1, help="run every Nth case only")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--with", dest="groups", action="append", default=[], choices=sorted(PENDING),
                    help="also run a pending command group")
    args = ap.parse_args()

    commands = [(c, False) for c in COMMANDS]
    for g in args.groups:
        commands += [(c, True) for c in PENDING[g]]

    # A folder of its own per run: concurrent runs (two ctest invocations) must not share cases.
    if args.work:
        Path(args.work).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=args.work))
    if args.cases:
        cases_dir = Path(args.cases)
    else:
        if not args.generator:
            ap.error("--generator or --cases is required")
        cases_dir = work / "cases"
        shutil.rmtree(cases_dir, ignore_errors=True)
        cases_dir.mkdir(parents=True)
        env = dict(os.environ, LITELENS_CASE_DIR=str(cases_dir))
        gen = subprocess.run([args.generator, "--gtest_filter=corruption_*", "--gtest_brief=1"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seed_lines = [l for l in gen.stdout.splitlines() if "LITELENS_SEED=" in l]
        if seed_lines:
            print(seed_lines[0].strip())
        if gen.returncode != 0:
            print("cli_matrix: note: the case generator's own checks failed (see the unit tests):")
            print("\n".join(gen.stdout.splitlines()[-20:]))

    manifest = cases_dir / "manifest.tsv"
    if not manifest.exists():
        print(f"cli_matrix: no manifest in {cases_dir}", file=sys.stderr)
        return 2
    cases = []
    seen = set()
    for line in manifest.read_text().splitlines():
        name, _, expected = line.partition("\t")
        if name in seen:
            continue
        seen.add(name)
        cases.append((cases_dir / f"{name}.tflite", expected))
    cases = cases[::max(1, args.stride)]
    if not args.no_models:
        if not args.models:
            cache = os.environ.get("LITELENS_CACHE") or os.path.expanduser("~/.cache/litelens")
            args.models = os.path.join(cache, "models")
        models = sorted(Path(args.models).glob("*.tflite"))
        if not models:
            print(f"cli_matrix: no real models in {args.models} (run scripts/fetch-models.sh)", file=sys.stderr)
            return 1
        if args.sanitized:  # keep the sanitizer run short: the small ones
            models = [m for m in models if m.stat().st_size < 1_000_000]
        cases += [(m, "ok:*") for m in models]
    for path, _ in cases:
        if path.exists() and path.is_relative_to(cases_dir):
            path.chmod(0o444)  # documents intent; root ignores it, the fingerprint check does not

    jobs = [(case, "any" if pending else expected, command)
            for case, expected in cases for command, pending in commands]
    print(f"cli_matrix: {len(cases)} cases x {len(commands)} commands = {len(jobs)} runs"
          f"{' (sanitized)' if args.sanitized else ''}, {args.jobs} at a time")
    started = time.monotonic()
    failures: list[str] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for result in pool.map(lambda j: run_one(args.cli, j[0], j[1], j[2], args.sanitized), jobs):
            failures += result
    print(f"cli_matrix: {len(jobs)} runs in {time.monotonic() - started:.1f} s, {len(failures)} failures")
    for f in failures[:40]:
        print("FAIL " + f)
    if len(failures) > 40:
        print(f"... and {len(failures) - 40} more")
    if failures:
        print(f"cli_matrix: cases kept in {cases_dir}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
