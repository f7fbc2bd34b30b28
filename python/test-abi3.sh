#!/usr/bin/env bash
# The stable-ABI wheel, built and used as a user would (`make test-python-abi3`, part of `make test`):
#
#   1. `pip wheel .` with Python 3.12 and build isolation ON: scikit-build-core and nanobind come
#      from PyPI, exactly as for a plain `pip install .`;
#   2. the wheel must be tagged cp312-abi3 and hold _litelens.abi3.so;
#   3. it is installed into a Python 3.13 virtual environment (numpy from PyPI), a newer
#      interpreter than the one it was built with, and a smoke test runs there: import, open a
#      cached model, conv2d_params, and the `litelens` command from that environment.
#
# Incremental: scikit-build-core builds in build-py/cp312-abi3-<platform>/ (pyproject.toml:
# build-dir = "build-py/{wheel_tag}"), kept between runs, and compiles through ccache with
# CCACHE_BASEDIR set to the checkout. The venv (build-py/abi3-venv-3.13/) is reused too.
#
# Python 3.12 and 3.13 are found as python3.12 / python3.13 on PATH or in pyenv's versions
# folder (this machine kind's image ships both there). If either is missing the target fails
# with a message saying so: it never skips silently.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
CACHE="${LITELENS_CACHE:-$HOME/.cache/litelens}"
MODEL="$CACHE/models/face_detection_short_range.tflite"
WHEELHOUSE="$ROOT/build-py/abi3-wheelhouse"
VENV="$ROOT/build-py/abi3-venv-3.13"

log() { echo "test-python-abi3: $*"; }
die() { echo "test-python-abi3: FAILED: $*" >&2; exit 1; }

# find_python 3.12 -> path of a CPython 3.12 interpreter, or nothing
find_python() {
  local v="$1" p root
  if p="$(command -v "python$v" 2>/dev/null)" && "$p" -c 'import sys; sys.exit(0)' 2>/dev/null; then
    echo "$p"; return
  fi
  root="$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")"
  for p in $(ls -d "$root"/versions/"$v".*/bin/python"$v" 2>/dev/null | sort -V -r); do
    [ -x "$p" ] && { echo "$p"; return; }
  done
}

PY312="$(find_python 3.12)"
PY313="$(find_python 3.13)"
[ -n "$PY312" ] || die "no Python 3.12 found (python3.12 on PATH or \$(pyenv root)/versions/3.12.*): \
the abi3 wheel cannot be built. Make a CPython 3.12 available as python3.12 and rerun."
[ -n "$PY313" ] || die "no Python 3.13 found (python3.13 on PATH or \$(pyenv root)/versions/3.13.*): \
the abi3 wheel cannot be tried on a newer interpreter. Make a CPython 3.13 available as python3.13 and rerun."
log "building with $("$PY312" -V 2>&1) ($PY312), testing with $("$PY313" -V 2>&1) ($PY313)"
[ -f "$MODEL" ] || die "$MODEL missing: run scripts/fetch-models.sh (make models)"

start=$(date +%s)
# 1. the wheel, with build isolation (no --no-build-isolation). The isolated environment gets the
# nanobind and scikit-build-core versions of the development install (scripts/install-deps.sh),
# so an upstream release cannot change the build under the test.
rm -rf "$WHEELHOUSE"
mkdir -p "$WHEELHOUSE"
CONSTRAINTS="$ROOT/build-py/abi3-build-constraints.txt"
python3 -m pip list --format=freeze --disable-pip-version-check 2>/dev/null \
  | grep -iE '^(nanobind|scikit[-_]build[-_]core)==' >"$CONSTRAINTS" \
  || die "nanobind and scikit-build-core are not installed for python3 (run scripts/install-deps.sh)"
export PIP_CONSTRAINT="$CONSTRAINTS"
log "build requirements pinned to: $(tr '\n' ' ' <"$CONSTRAINTS")"
if ! "$PY312" -m pip wheel . --no-deps --disable-pip-version-check -q -w "$WHEELHOUSE" \
    >"$ROOT/build-py/abi3-wheel.log" 2>&1; then
  tail -n 60 "$ROOT/build-py/abi3-wheel.log" >&2
  die "pip wheel . with Python 3.12 failed (full log: build-py/abi3-wheel.log)"
fi
built=$(date +%s)

# 2. the tag and the module's file name
shopt -s nullglob
wheels=("$WHEELHOUSE"/litelens-*.whl)
[ ${#wheels[@]} -eq 1 ] || die "expected one litelens wheel in $WHEELHOUSE, found ${#wheels[@]}"
WHEEL="${wheels[0]}"
case "$(basename "$WHEEL")" in
  litelens-*-cp312-abi3-*.whl) ;;
  *) die "$(basename "$WHEEL") is not tagged cp312-abi3 (wheel.py-api = \"cp312\" in pyproject.toml)" ;;
esac
"$PY312" - "$WHEEL" <<'PY' || die "the wheel's contents are wrong"
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
modules = [n for n in names if n.startswith("litelens/_litelens")]
assert modules and all(".abi3.so" in n or n.endswith(".pyi") for n in modules), modules
assert any(n.endswith("/scripts/litelens") for n in names), "the litelens command is not in the wheel"
assert "litelens/py.typed" in names and "litelens/__init__.py" in names
PY
log "built $(basename "$WHEEL") in $((built - start)) s"

# 3. a Python 3.13 environment (reused), the wheel, and a smoke test there
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
  rm -rf "$VENV"
  "$PY313" -m venv "$VENV"
fi
"$VENV/bin/python" -c 'import numpy' 2>/dev/null ||
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "numpy>=1.26"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$WHEEL"

cd "$VENV"  # away from the checkout, so `import litelens` cannot find python/litelens
"$VENV/bin/python" - "$MODEL" "$VENV/bin/litelens" <<'PY' || die "the smoke test in the Python 3.13 venv failed"
import json, subprocess, sys

import numpy as np
import litelens
import litelens._litelens as native

model_path, cli = sys.argv[1], sys.argv[2]
assert sys.version_info[:2] == (3, 13), sys.version
assert native.__file__.endswith(".abi3.so"), native.__file__
assert litelens.__file__.startswith(sys.prefix), litelens.__file__  # the venv's copy
with litelens.open(model_path) as m:
    f = m.layers(op="CONV_2D")[0].params["filter"]
    stored = f.numpy()
    assert (f.dtype, f.via, stored.dtype) == ("float16", ["DEQUANTIZE"], np.float16)
w, b = litelens.conv2d_params(path=model_path)
assert w.shape == (24, 5, 5, 3) and w.dtype == np.float32 and b.shape == (24,), (w.shape, w.dtype)
assert np.array_equal(w, stored.astype(np.float32))
version = subprocess.run([cli, "--version"], check=True, capture_output=True, text=True).stdout
assert version.startswith("litelens "), version
doc = json.loads(subprocess.run([cli, "layers", model_path, "--op", "CONV_2D", "--first", "--json", "--count", "4"],
                                check=True, capture_output=True, text=True).stdout)
(layer,) = doc["layers"]
shown = layer["params"]["filter"]["first_values"]  # the CLI's dequantized values
assert layer["params"]["filter"]["shape"] == list(w.shape)
assert np.allclose(shown, w.reshape(-1)[:4], rtol=1e-6, atol=0), (shown, w.reshape(-1)[:4])
print(f"litelens {litelens.__version__} ({version.strip()}) on Python {sys.version.split()[0]}: "
      f"conv2d_params {w.shape} {w.dtype}, biases {b.shape}")
PY
end=$(date +%s)
log "passed: wheel $((built - start)) s, venv and smoke test $((end - built)) s, total $((end - start)) s"
