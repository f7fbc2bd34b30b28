#!/usr/bin/env bash
# `make soak`: the randomised suites with fresh seeds, until the time runs out.
#
#   scripts/soak.sh [--seconds N]        (make soak SOAK_SECONDS=N; default 900)
#
# `make test` runs fixed seeds only, so a commit passes or fails the same way on every run. New
# seeds are tried here, in rounds, each with a seed drawn from /dev/urandom:
#   1. the C++ random sweeps (corruption_sweep_test) with LITELENS_SEED=<seed>, 4x the cases;
#   2. the CLI corruption matrix on the cases of that seed (its generator draws the same way);
#   3. every fuzz target for a slice of the round, with a libFuzzer seed taken from <seed>.
# The first failure stops the soak: it prints the seed and the command that replays it. Keep what
# it found as a named case (tests/corruption/regressions/README.md, or fuzz/regressions/ for the
# fuzzers), fix the bug, and add the seed to seeds() in tests/unit/hardening_support.h.
set -euo pipefail
cd "$(dirname "$0")/.."

TOTAL=900
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) TOTAL="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "soak: unknown argument $1" >&2; exit 2 ;;
  esac
done

BUILD="${BUILD:-build}"
log() { echo "soak: $*" >&2; }
start=$(date +%s)
left() { echo $((TOTAL - ($(date +%s) - start))); }
rounds=0
while [ "$(left)" -gt 60 ]; do
  seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
  rounds=$((rounds + 1))
  log "round $rounds: seed $seed, $(left) s left"
  if ! LITELENS_SEED=$seed LITELENS_CORRUPTION_SCALE=4 "$BUILD/tests/litelens_unit_tests" \
      --gtest_filter='corruption_sweep_test.*' --gtest_brief=1 >"$BUILD/soak-sweeps.log" 2>&1; then
    tail -n 30 "$BUILD/soak-sweeps.log" >&2
    log "FAILED: the random sweeps with seed $seed. Replay:"
    log "  LITELENS_SEED=$seed LITELENS_CORRUPTION_SCALE=4 $BUILD/tests/litelens_unit_tests --gtest_filter='corruption_sweep_test.*'"
    exit 1
  fi
  [ "$(left)" -gt 150 ] || break
  if ! LITELENS_SEED=$seed python3 tests/corruption/cli_matrix.py --cli "$BUILD/tools/litelens/litelens" \
      --generator "$BUILD/tests/litelens_unit_tests" --work "$BUILD/soak-matrix" --jobs 2 >"$BUILD/soak-matrix.log" 2>&1; then
    tail -n 30 "$BUILD/soak-matrix.log" >&2
    log "FAILED: the CLI matrix with seed $seed. Replay:"
    log "  LITELENS_SEED=$seed python3 tests/corruption/cli_matrix.py --cli $BUILD/tools/litelens/litelens --generator $BUILD/tests/litelens_unit_tests"
    exit 1
  fi
  fuzz_seed=$(( (seed & 0x7ffffffe) + 1 ))  # libFuzzer takes a positive 32-bit seed
  slice=$(( $(left) / 8 ))
  [ "$slice" -ge 10 ] || break
  [ "$slice" -le 120 ] || slice=120
  if ! scripts/fuzz.sh --seconds "$slice" --seed "$fuzz_seed" >"$BUILD/soak-fuzz.log" 2>&1; then
    tail -n 30 "$BUILD/soak-fuzz.log" >&2
    log "FAILED: fuzzing with libFuzzer seed $fuzz_seed; the input is in build-fuzz/fuzz-artifacts/"
    exit 1
  fi
done
log "$rounds rounds in $(( $(date +%s) - start )) s, no failure"
