#!/usr/bin/env bash
# Installs what litelens needs to build and test, only when missing: Debian packages (apt-get)
# and PyPI packages (pip). Safe to run repeatedly; quick when everything is present.
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --fixtures also TensorFlow, used only to make quantized test models
set -euo pipefail

APT_PACKAGES=(
  cmake ninja-build g++ ccache pkg-config
  libflatbuffers-dev flatbuffers-compiler
  libcli11-dev libfmt-dev nlohmann-json3-dev libzip-dev
  libgtest-dev libbenchmark-dev
  clang libclang-rt-14-dev
  nodejs npm
)
PIP_PACKAGES=(
  "numpy>=1.26" "pytest>=8" "nanobind>=2.4" "scikit-build-core>=0.10"
  "ai-edge-litert==2.3.0" "tflite==2.18.0" "safetensors>=0.4"
)

log() { echo "install-deps: $*" >&2; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing_apt=()
for p in "${APT_PACKAGES[@]}"; do
  # nodejs/npm may come from elsewhere on this machine kind; a working command is enough.
  case "$p" in
    nodejs) command -v node >/dev/null && continue ;;
    npm) command -v npm >/dev/null && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing_apt+=("$p")
done
if [ ${#missing_apt[@]} -gt 0 ]; then
  log "apt-get install ${missing_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing_apt[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" - <<'PY' 2>/dev/null
import importlib.metadata as md, sys
need = {"numpy": None, "pytest": None, "nanobind": None, "scikit-build-core": None,
        "ai-edge-litert": "2.3.0", "tflite": "2.18.0", "safetensors": None}
for name, pin in need.items():
    v = md.version(name)
    if pin and v != pin:
        sys.exit(1)
PY
then
  log "pip install ${PIP_PACKAGES[*]}"
  "$PYTHON" -m pip install -q --disable-pip-version-check --root-user-action=ignore "${PIP_PACKAGES[@]}"
fi

# TensorFlow with tf_keras (Keras 2: the only Keras whose LSTM the converter fuses into
# UNIDIRECTIONAL_SEQUENCE_LSTM), pinned so that cached fixtures stay reproducible. tf-keras
# depends on the "tensorflow" distribution itself, so that one is installed, not tensorflow-cpu.
# Checked through package metadata: importing TensorFlow takes seconds.
TF_PACKAGES=("tensorflow==2.21.0" "tf-keras==2.21.0")
if [ "${1:-}" = "--fixtures" ]; then
  if ! "$PYTHON" - <<'PY' 2>/dev/null
import importlib.metadata as md, sys
sys.exit(0 if md.version("tensorflow") == "2.21.0" and md.version("tf-keras") == "2.21.0" else 1)
PY
  then
    log "pip install ${TF_PACKAGES[*]} (fixtures only)"
    "$PYTHON" -m pip install -q --disable-pip-version-check --root-user-action=ignore "${TF_PACKAGES[@]}"
  fi
fi
