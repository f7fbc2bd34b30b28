#!/usr/bin/env python3
"""The CLI corruption matrix: run every litelens command on every corrupted case file.

The cases come from the C++ corruption tests (tests/unit/corruption_test.cpp and
hardening_sweep_test.cpp): run with LITELENS_CASE_DIR set, they write each case as
<name>.tflite plus a line "<name>\\t<expected>" in manifest.tsv, where <expected> is an
ErrorKind name, "ok", "ok:<warning>", "ok:*" or "any" (random damage). The real models
($LITELENS_CACHE/models) are cases expected to open.

Every command in COMMANDS runs on every case (a command may be a sequence of runs, each run
only when the one before it exited 0). First `info --json` runs on every case (the probe); what
it prints decides what the other commands must do:

  * A case expected to fail ("<kind>" in the manifest, or an "any" case whose probe exited 1
    with "[<kind>]"): every command exits 1 with that kind, since every command opens the model
    first and opening is where it fails.
  * A case expected to open ("ok...", the real models, an "any" case whose probe exited 0): every
    command exits 0, except for these documented, specific reasons (the facts come from the
    probe's JSON, so each exception applies only where its reason holds):

    command                                  | on a model that opens
    -----------------------------------------+-----------------------------------------------
    info, ops, tensors (table, --json)        | exit 0
    layers (table, --json)                    | exit 0; exit 1 "no layer matches the selection"
                                              | (no kind) when the model has no operators
                                              | (docs/layers.md: nothing matched is exit 1)
    extract -o OUT/params.npz,                | as layers, and the file written must be a
    extract -o OUT/params.safetensors         | well-formed .npz / .safetensors (constants with
                                              | no array form -- string, resource, variant, an
                                              | unknown code -- are skipped, one stderr line
                                              | each); for .safetensors exit 1 [output] "<type>
                                              | values cannot be written to safetensors" only
                                              | when the model has complex64/complex128 ones
    info (table)                              | exit 0; one "litelens: warning: ...
                                              | [invalid_metadata]" line per metadata problem the
                                              | probe reported (a broken TFLITE_METADATA,
                                              | CONVERSION_METADATA or archive: docs/metadata.md,
                                              | info warns)
    files, files --json,                      | exit 0; exit 1 [invalid_metadata] with the
    files --extract OUT/files                 | problem `info` reported when the appended
                                              | archive is broken (docs/metadata.md: files
                                              | fails, info warns), and only then; besides,
                                              | files --extract exits 1 [invalid_metadata]
                                              | "associated file '<name>'..." exactly when a
                                              | member's data is bad (CRC, DEFLATE stream, size,
                                              | method), as found here with zlib from the
                                              | listing's offsets: the first such member in
                                              | archive order
    diff MODEL MODEL (table, --json)          | exit 0
    patch round trip:                         | the extract run as above; then patch exits 0,
      extract MODEL -o OUT/p.npz,             | and its output opens (info --json exits 0) and
      patch MODEL -o OUT/patched.tflite       | shows the same subgraphs, tensors, operators,
            --from OUT/p.npz,                 | constants, metadata and signatures as MODEL;
      info --json OUT/patched.tflite          | or patch exits 2 "nothing to do" when the
                                              | export holds no arrays (extract wrote 0); exit 1
                                              | [unsupported] "... unknown to this build's
                                              | schema; rewriting the model would drop it"
                                              | (docs/patch.md: such files are refused); exit 1
                                              | [invalid_metadata] with info's problem when the
                                              | appended archive is broken (docs/patch.md)

For every run the contract is also:
  * the process exits 0, 1 or (only where allowed above) 2, never by a signal (crash, abort,
    sanitizer report, the CPU or memory limit);
  * a failing run prints exactly one line on stderr, "litelens: ...", which for exit 1 names
    the file (the case, or the patched output for the last run of the round trip);
  * --json output parses;
  * the input is left exactly as it was (size, mtime and SHA-256);
  * no temporary file is left behind, and a failing run leaves no output, complete or partial;
  * without sanitizers, the process stays within an address-space limit (RLIMIT_AS, the
    `ulimit -v` of the shell) and a peak RSS proportional to the file.

The metadata cases of corruption_test.metadata_and_archives are named for what is broken in
them, and the probe must report exactly that (METADATA_CASES): meta_tflite_* a TFLITE_METADATA
problem, meta_conversion_* a CONVERSION_METADATA problem, meta_archive_* an archive problem (so
`files` fails), each [invalid_metadata] and nothing else; meta_member_* no problem at all for
`info`, and a member whose data the zlib check refuses (so `files --extract` fails).

KNOWN_BUGS lists library bugs found by the matrix and not fixed yet: the failures they cause
are expected (and must still happen: an entry that no longer fails is reported, so it gets
removed when the bug is fixed).

Usage: cli_matrix.py --cli PATH --generator PATH [--work DIR] [--models DIR] [--sanitized]
                     [--stride N] [--heavy-stride N] [--jobs N] [--command NAME ...]
"""
from __future__ import annotations

import argparse
import ast
import concurrent.futures
import hashlib
import json
import math
import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Command:
    """One command of the matrix: one or more runs ({model} is the case, {out} a fresh folder)."""
    name: str
    runs: tuple[tuple[str, ...], ...]
    heavy: bool = False  # decodes or writes every parameter: thinned by --heavy-stride


def cmd(name: str, *runs: tuple[str, ...], heavy: bool = False) -> Command:
    return Command(name, tuple(runs), heavy)


PROBE = cmd("info --json", ("info", "--json", "{model}"))
ROUND_TRIP = "patch round trip"
COMMANDS = [
    PROBE,
    cmd("info", ("info", "{model}")),
    cmd("ops", ("ops", "{model}")),
    cmd("ops --json", ("ops", "--json", "{model}")),
    cmd("tensors", ("tensors", "{model}")),
    cmd("tensors --json", ("tensors", "--json", "{model}")),
    cmd("layers", ("layers", "{model}"), heavy=True),
    cmd("layers --json", ("layers", "--json", "{model}"), heavy=True),
    cmd("extract npz", ("extract", "{model}", "-o", "{out}/params.npz"), heavy=True),
    cmd("extract safetensors", ("extract", "{model}", "-o", "{out}/params.safetensors"), heavy=True),
    cmd("files", ("files", "{model}")),
    cmd("files --json", ("files", "--json", "{model}")),
    cmd("files --extract", ("files", "{model}", "--extract", "{out}/files")),
    cmd("diff", ("diff", "{model}", "{model}"), heavy=True),
    cmd("diff --json", ("diff", "--json", "{model}", "{model}"), heavy=True),
    cmd(ROUND_TRIP,
        ("extract", "{model}", "-o", "{out}/p.npz"),
        ("patch", "{model}", "-o", "{out}/patched.tflite", "--from", "{out}/p.npz"),
        ("info", "--json", "{out}/patched.tflite"),
        heavy=True),
]

# Library bugs the matrix found that are not fixed yet: (case name, command name) -> (a regular
# expression every failure of that run matches, the bug). Remove an entry once its bug is fixed.
KNOWN_BUGS: dict = {}

# safetensors has no complex types (constants with no array form are skipped by every format).
NOT_IN_SAFETENSORS = {"complex64", "complex128"}

MIB = 1 << 20


@dataclass(frozen=True)
class Outcome:
    """An allowed result of one run: the exit status, and for a failure the stderr line's tag
    ("[kind]" at its end; None: no tag) and a regular expression the line must contain."""
    status: int
    tag: str | None = None
    text: str | None = None

    def matches(self, rc: int, line: str) -> bool:
        if rc != self.status:
            return False
        if rc == 0:
            return True
        found = re.search(r"\[([a-z_0-9]+)\]$", line)
        if self.tag != "*" and (found.group(1) if found else None) != self.tag:
            return False
        return self.text is None or re.search(self.text, line) is not None

    def __str__(self) -> str:
        if self.status == 0:
            return "exit 0"
        return f"exit {self.status}" + (f" [{self.tag}]" if self.tag else "") + (f" /{self.text}/" if self.text else "")


OPENS = Outcome(0)
NO_LAYERS = Outcome(1, None, r": no layer matches the selection$")


@dataclass
class Facts:
    """What the probe (`info --json`) says about a model that opens."""
    operators: int
    dtypes: set[str]
    archive_error: str | None  # the "associated files" problem info reported, if any
    summary: dict              # what a patch round trip must keep
    metadata_errors: list = field(default_factory=list)  # the probe's model_metadata.errors
    member_error: str | None = None  # the first listed member whose data is bad (bad_member())
    warning_codes: set = field(default_factory=set)  # the probe's warnings

    @staticmethod
    def of(doc: dict, case: Path | None = None) -> "Facts":
        meta = doc.get("model_metadata") or {}
        errors = meta.get("errors") or []
        archive = [e["message"] for e in errors if e.get("entry") == "associated files"]
        member = bad_member(case, meta.get("associated_files") or []) if case and not archive else None
        return Facts(doc["operators"], set(doc["by_dtype"]), archive[0] if archive else None, kept(doc), errors, member,
                     {w["code"] for w in doc.get("warnings") or []})


def bad_member(case: Path, members: list[dict]) -> str | None:
    """The name of the first member (in the order listed) whose data extraction must refuse: a
    CRC-32 or size that differs, a corrupt or short DEFLATE stream, a method other than stored
    and deflate. Decoded here with zlib, independently of litelens, from the listing's offsets."""
    if not members:
        return None
    with case.open("rb") as f:
        for m in members:
            f.seek(m["offset"])
            raw = f.read(m["compressed_size"])
            size, crc = m["size"], int(m["crc32"], 16)
            if len(raw) != m["compressed_size"]:
                return m["name"]
            if m["compression"] == "stored":
                data = raw
            elif m["compression"] == "deflate":
                d = zlib.decompressobj(-zlib.MAX_WBITS)
                try:
                    data = d.decompress(raw, size + 1)  # never more than declared + 1
                except zlib.error:
                    return m["name"]
                if len(data) > size or not d.eof:
                    return m["name"]
            else:
                return m["name"]
            if len(data) != size or zlib.crc32(data) != crc:
                return m["name"]
    return None


# Named metadata cases (corruption_test.metadata_and_archives): name prefix -> the entries whose
# problems the probe must report (each [invalid_metadata]); meta_member_* also needs bad_member().
METADATA_CASES = {"meta_tflite_": {"TFLITE_METADATA"}, "meta_conversion_": {"CONVERSION_METADATA"},
                  "meta_archive_": {"associated files"}, "meta_member_": set()}


def metadata_case_problems(case: Path, facts: Facts) -> list[str]:
    """What is wrong with the probe's report on a named metadata case ([] when right)."""
    prefix = next((p for p in METADATA_CASES if case.stem.startswith(p)), None)
    if prefix is None:
        return []
    failures = []
    reported = [(e.get("entry"), e.get("kind")) for e in facts.metadata_errors]
    wanted = [(entry, "invalid_metadata") for entry in sorted(METADATA_CASES[prefix])]
    if sorted(reported) != wanted:
        failures.append(f"{case.name} [info --json]: model_metadata.errors should be {wanted}, got {reported}")
    if prefix == "meta_member_" and facts.member_error is None:
        failures.append(f"{case.name}: no member with bad data found (the case should have one)")
    return failures


# Layout oddities a patch repairs (docs/format.md, "Tolerated oddities"): the only warnings a
# round trip may drop.
REPAIRED_BY_PATCH = {"buffer_inside_flatbuffer", "overlapping_buffers"}


def kept(doc: dict) -> dict:
    out = {k: doc.get(k) for k in ("version", "description", "subgraphs", "tensors", "operators", "op_histogram",
                                   "constant_tensors", "parameters", "constant_bytes", "by_dtype", "metadata",
                                   "signatures")}
    out["warnings"] = [(w["code"], w["message"]) for w in doc.get("warnings") or []
                       if w["code"] not in REPAIRED_BY_PATCH]
    return out


def export_outcomes(facts: Facts, safetensors: bool) -> list[Outcome]:
    if facts.operators == 0:
        return [NO_LAYERS]
    allowed = [OPENS]
    if safetensors and (bad := sorted(facts.dtypes & NOT_IN_SAFETENSORS)):
        allowed.append(Outcome(1, "output", rf"\b({'|'.join(bad)}) values cannot be written to safetensors"))
    return allowed


def expected_outcomes(command: Command, step: int, facts: Facts, earlier: list[str]) -> list[Outcome]:
    """The allowed outcomes of run `step` of `command` on a model that opens (see the docstring).
    `earlier` holds the stdout of the runs before it."""
    name = command.name
    if name.startswith("layers"):
        return [NO_LAYERS] if facts.operators == 0 else [OPENS]
    if name.startswith("extract") or (name == ROUND_TRIP and step == 0):
        allowed = export_outcomes(facts, safetensors=name.endswith("safetensors"))
        if "--dequantize" in name and "blockwise_layout" in facts.warning_codes:
            # docs/format.md: dequantizing a blockwise layout it cannot read is refused.
            allowed.append(Outcome(1, "output", r"dequantize: blockwise quantization is supported for 2-D"))
        return allowed
    if name.startswith("files"):
        if facts.archive_error:
            return [Outcome(1, "invalid_metadata", re.escape(facts.archive_error))]
        if name == "files --extract" and facts.member_error is not None:
            return [Outcome(1, "invalid_metadata", "associated file '" + re.escape(facts.member_error) + "'")]
        return [OPENS]
    if name == ROUND_TRIP and step == 1:
        written = re.search(r"wrote (\d+) arrays", earlier[0])
        if written and int(written.group(1)) == 0:
            return [Outcome(2, None, r"^litelens: patch: nothing to do")]
        allowed = [OPENS, Outcome(1, "unsupported", r"unknown to this build's schema; rewriting the model would drop it")]
        if facts.archive_error:
            allowed.append(Outcome(1, "invalid_metadata", re.escape(facts.archive_error)))
        return allowed
    return [OPENS]


# ---- checks on what the commands write -------------------------------------------------------

NPY_ITEMSIZE = re.compile(r"^[<>|=]?[a-zA-Z](\d+)$")


def check_npy_header(data: bytes, name: str) -> str | None:
    if data[:6] != b"\x93NUMPY" or data[6] not in (1, 2, 3):
        return f"{name}: not an .npy file"
    if data[6] == 1:
        start, length = 10, struct.unpack_from("<H", data, 8)[0]
    else:
        start, length = 12, struct.unpack_from("<I", data, 8)[0]
    header = data[start:start + length]
    if len(header) != length or not header.startswith(b"{") or not header.endswith(b"\n"):
        return f"{name}: the .npy header length ({length}) does not frame its header"
    try:
        d = ast.literal_eval(header.decode("latin-1"))
        descr, shape = d["descr"], tuple(d["shape"])
    except (ValueError, SyntaxError, KeyError, TypeError, MemoryError, RecursionError) as e:
        return f"{name}: the .npy header does not parse: {type(e).__name__}"
    m = NPY_ITEMSIZE.match(descr) if isinstance(descr, str) else None
    if m and len(data) - start - length != math.prod(shape) * int(m.group(1)):
        return f"{name}: {len(data) - start - length} data bytes for shape {shape[:8]} of {descr}"
    return None


def check_export(path: Path) -> str | None:
    """Whether an export written by extract (.npz, .safetensors, a folder of .npy, .json, a C
    header) is well formed (None) or what is wrong."""
    if path.is_dir():
        for f in sorted(path.rglob("*.npy")):
            if problem := check_npy_header(f.read_bytes(), f.name):
                return problem
        try:
            json.loads((path / "manifest.json").read_text())
        except (OSError, ValueError) as e:
            return f"{path.name}/manifest.json: {type(e).__name__}: {e}"
        return None
    if not path.is_file():
        return f"{path.name} was not written"
    try:
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".h":
            text = path.read_text()
            if "#" not in text or text.count("{") != text.count("}"):
                return f"{path.name}: not a C header with balanced braces"
        elif path.suffix == ".npz":
            with zipfile.ZipFile(path) as z:
                for info in z.infolist():
                    data = z.read(info.filename)
                    if info.filename.endswith(".npy"):
                        if problem := check_npy_header(data, info.filename):
                            return problem
                    elif info.filename == "manifest.json":
                        json.loads(data)
        elif path.suffix == ".safetensors":
            with path.open("rb") as f:
                n = struct.unpack("<Q", f.read(8))[0]
                header = json.loads(f.read(n))
            body = path.stat().st_size - 8 - n
            sizes = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I64": 8, "I32": 4,
                     "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1}
            for key, t in header.items():
                if key == "__metadata__":
                    continue
                begin, end = t["data_offsets"]
                if not 0 <= begin <= end <= body or end - begin != math.prod(t["shape"]) * sizes[t["dtype"]]:
                    return f"{path.name}: {key}: data_offsets {begin}..{end} do not fit (body {body} bytes)"
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, struct.error) as e:
        return f"{path.name} is not well formed: {type(e).__name__}: {e}"
    return None


def output_of(template: tuple[str, ...], args: list[str]) -> Path | None:
    """The file an extract run writes."""
    return Path(args[args.index("-o") + 1]) if template[0] == "extract" else None


# ---- running -----------------------------------------------------------------------------------

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


@dataclass
class Run:
    rc: int
    stdout: str
    lines: list[str]
    seconds: float
    peak: int


def run_process(args: list[str], size: int, sanitized: bool) -> Run:
    env = dict(os.environ)
    if sanitized:
        # The RSS limit is for litelens's own memory. ASan's quarantine of freed blocks (256 MB
        # by default) is not: with it, a patch round trip of a rank-100000 shape reached 2.1 GB
        # under ASan, 92 MB with no quarantine and 10 MB in release. A smaller quarantine still
        # catches a use after free of recent blocks.
        env["ASAN_OPTIONS"] = ("detect_leaks=1:abort_on_error=1:hard_rss_limit_mb=2048:quarantine_size_mb=32:"
                               + env.get("ASAN_OPTIONS", ""))
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
    return Run(proc.returncode, stdout, [l for l in stderr.splitlines() if l.strip()], seconds,
               usage.ru_maxrss * 1024)


def files_in(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def temporary_files(folder: Path) -> set[str]:
    """AtomicFile's temporaries (".<name>.tmp-<random>") and anything else named like one."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if ".tmp" in p.name or p.name.startswith(".litelens")}


@dataclass
class Job:
    case: Path
    expected: str            # an ErrorKind name, "ok" (opens), or "any" (the probe of random damage)
    command: Command
    facts: Facts | None = None
    results: list[Run] = field(default_factory=list)


def run_job(cli: str, job: Job, sanitized: bool) -> list[str]:
    """Runs one command (all its runs) on one case; returns the contract violations."""
    failures: list[str] = []
    case = job.case
    size = case.stat().st_size
    before = fingerprint(case)
    out_dir = Path(tempfile.mkdtemp(prefix="litelens-matrix-"))
    label = f"{case.name} [{job.command.name}]"
    try:
        for step, template in enumerate(job.command.runs):
            args = [cli] + [a.replace("{model}", str(case)).replace("{out}", str(out_dir)) for a in template]
            where = label if len(job.command.runs) == 1 else \
                f"{label} run {step + 1} ({' '.join(template).replace('{model}', 'MODEL').replace('{out}', 'OUT')})"
            subject = str(case) if "{model}" in template else next(a for a in args if str(out_dir) in a)
            if job.expected == "ok":
                allowed = expected_outcomes(job.command, step, job.facts, [r.stdout for r in job.results])
            elif job.expected == "any":  # random damage, before the probe: opens or fails with any kind
                allowed = [OPENS, Outcome(1, "*")]
            else:
                allowed = [Outcome(1, job.expected)]
            existing, temporaries = files_in(out_dir), temporary_files(out_dir)
            failed_before = len(failures)
            try:
                run = run_process(args, size, sanitized)
            except OSError as e:  # e.g. the binary is being relinked
                failures.append(f"{where}: cannot run {args[0]}: {e}")
                break
            job.results.append(run)
            rc, lines = run.rc, run.lines
            first = lines[0] if lines else ""
            if rc < 0:
                failures.append(f"{where}: killed by signal {-rc} ({signal.Signals(-rc).name}) after {run.seconds:.1f} s\n"
                                + "\n".join(lines[-12:]))
                break
            if rc != 0 and len(lines) != 1:
                failures.append(f"{where}: exit {rc} with {len(lines)} stderr lines:\n" + "\n".join(lines[:12]))
            elif rc != 0 and not first.startswith("litelens: "):
                failures.append(f"{where}: stderr is not a litelens message: {first}")
            elif rc == 1 and subject not in first:
                failures.append(f"{where}: stderr does not name the file: {first}")
            elif not any(o.matches(rc, first) for o in allowed):
                got = f"exit {rc}" + (f": {first}" if rc else "")
                failures.append(f"{where}: expected {' or '.join(map(str, allowed))}, got {got}")
            if rc == 0:
                for line in lines:
                    if not line.startswith("litelens: "):
                        failures.append(f"{where}: unexpected stderr: {line}")
                        break
                if job.command.name == "info" and job.facts is not None:
                    warned = [l for l in lines if l.startswith("litelens: warning: ") and l.endswith("[invalid_metadata]")]
                    if len(warned) != len(job.facts.metadata_errors):
                        failures.append(f"{where}: {len(warned)} metadata warning lines on stderr, but the probe "
                                        f"reported {len(job.facts.metadata_errors)} problems")
                if "--json" in template:
                    try:
                        json.loads(run.stdout)
                    except ValueError as e:
                        failures.append(f"{where}: --json output does not parse: {e}")
                if (written := output_of(template, args)) and (problem := check_export(written)):
                    failures.append(f"{where}: {problem}")
                if template[0] == "patch" and not (out_dir / "patched.tflite").is_file():
                    failures.append(f"{where}: exit 0 but no patched model")
                if job.command.name == ROUND_TRIP and template[0] == "info":
                    try:
                        if (after := kept(json.loads(run.stdout))) != job.facts.summary:
                            changed = [k for k in after if after[k] != job.facts.summary.get(k)]
                            failures.append(f"{where}: the patched model differs from the input in {changed}")
                    except ValueError:
                        pass  # reported above
            else:
                if new := sorted(files_in(out_dir) - existing):
                    failures.append(f"{where}: failed but left {new}")
            if leftovers := sorted(temporary_files(out_dir) - temporaries):
                failures.append(f"{where}: temporary files left: {leftovers}")
            if not sanitized:
                cap = 256 * MIB + 32 * size
                if run.peak > cap:
                    failures.append(f"{where}: peak RSS {run.peak // MIB} MiB for a {size}-byte file "
                                    f"(limit {cap // MIB} MiB)")
            if rc != 0 or len(failures) > failed_before:
                break  # the next run needs this one's output, or would only repeat the problem
        if fingerprint(case) != before:
            failures.append(f"{label}: the input file changed")
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return failures


def known_bug_filter(job: Job, failures: list[str]) -> tuple[list[str], str | None]:
    """Failures left after the known bugs; and a note when a known bug showed (or stopped showing)."""
    entry = KNOWN_BUGS.get((job.case.stem, job.command.name))
    if not entry or job.expected != "ok":
        return failures, None
    pattern, bug = entry
    if not failures:
        return [f"{job.case.name} [{job.command.name}]: passes, but KNOWN_BUGS says it fails ({bug}); "
                "if the bug is fixed, remove the entry"], None
    if all(re.search(pattern, f) for f in failures):
        return [], f"{job.case.name} [{job.command.name}]: known bug: {bug}"
    return failures, None


def probe_expectation(probe: Job, manifest_expected: str) -> tuple[str | None, Facts | None]:
    """What the other commands must do on a case, from its probe run: ("ok", facts), (kind, None),
    or (None, None) when the probe itself broke the contract (reported already) on a case that
    had to open, so nothing sensible can be expected."""
    run = probe.results[0] if probe.results else None
    expects_kind = not manifest_expected.startswith("ok") and manifest_expected != "any"
    if run is None or run.rc not in (0, 1) or len(run.lines) > 1:
        return (manifest_expected, None) if expects_kind else (None, None)
    if run.rc == 0:
        if expects_kind:
            return None, None
        try:
            return "ok", Facts.of(json.loads(run.stdout), probe.case)
        except ValueError:
            return None, None  # reported by the probe's own checks
    if expects_kind:
        return manifest_expected, None
    if manifest_expected == "any":
        found = re.search(r"\[([a-z_0-9]+)\]$", run.lines[0]) if run.lines else None
        if found:
            return found.group(1), None
    return None, None


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
    ap.add_argument("--heavy-stride", type=int, default=1,
                    help="of those, run the commands that decode or write every parameter (layers, extract, "
                         "diff, the patch round trip) on every Nth only")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--command", dest="only", action="append", default=[], choices=[c.name for c in COMMANDS],
                    metavar="NAME", help="run only these commands (and the probe); repeatable")
    args = ap.parse_args()

    commands = [c for c in COMMANDS if c is not PROBE and (not args.only or c.name in args.only)]

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
        seed_lines = [l for l in gen.stdout.splitlines() if "[ seeds" in l]
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
    # Named cases that random seeds once found (tests/corruption/regressions/README.md).
    regressions = Path(__file__).resolve().parent / "regressions"
    for line in (regressions / "manifest.tsv").read_text().splitlines():
        name, _, expected = line.partition("\t")
        cases.append((regressions / f"{name}.tflite", expected))
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

    started = time.monotonic()
    failures: list[str] = []
    notes: list[str] = []
    seconds: dict[str, float] = {}

    def run_all(jobs: list[Job]) -> None:
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for job, result in zip(jobs, pool.map(lambda j: run_job(args.cli, j, args.sanitized), jobs)):
                result, note = known_bug_filter(job, result)
                failures.extend(result)
                if note:
                    notes.append(note)
                seconds[job.command.name] = seconds.get(job.command.name, 0.0) + sum(r.seconds for r in job.results)

    # 1. The probe on every case, held to the manifest ("any": opens, or fails with any kind).
    probes = [Job(case, "ok" if expected.startswith("ok") else expected, PROBE) for case, expected in cases]
    run_all(probes)

    # 2. Every other command, expecting what the probe found.
    heavy_cases = {case for case, _ in cases[::max(1, args.heavy_stride)]}
    jobs: list[Job] = []
    for (case, expected), probe in zip(cases, probes):
        kind, facts = probe_expectation(probe, expected)
        if kind is None:
            continue
        if facts is not None:
            failures.extend(metadata_case_problems(case, facts))
        elif any(case.stem.startswith(p) for p in METADATA_CASES):
            failures.append(f"{case.name}: a metadata case must open, got {kind}")
        for c in commands:
            if c.heavy and case not in heavy_cases:
                continue
            jobs.append(Job(case, kind, c, facts))
    run_all(jobs)

    runs = len(probes) + sum(len(j.results) for j in jobs)
    sanitized = " (sanitized)" if args.sanitized else ""
    print(f"cli_matrix: {len(cases)} cases x {len(commands) + 1} commands ({len(probes) + len(jobs)} jobs, "
          f"{runs} runs{sanitized}, {args.jobs} at a time) in {time.monotonic() - started:.1f} s, "
          f"{len(failures)} failures")
    print("cli_matrix: seconds per command (summed over runs): "
          + ", ".join(f"{k} {v:.0f}" for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])))
    for n in notes:
        print("NOTE " + n)
    return report("cli_matrix", failures, cases_dir, work)


def report(prefix: str, failures: list[str], cases_dir: Path, work: Path) -> int:
    """Prints the first 40 failures; keeps the cases when there are any, else removes the work
    folder. Returns the exit status."""
    for f in failures[:40]:
        print("FAIL " + f)
    if len(failures) > 40:
        print(f"... and {len(failures) - 40} more")
    if failures:
        print(f"{prefix}: cases kept in {cases_dir}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
