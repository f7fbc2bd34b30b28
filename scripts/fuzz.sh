#!/usr/bin/env bash
# Fuzz litelens with libFuzzer (clang, ASan + UBSan) for a bounded time per target.
#
#   scripts/fuzz.sh [--seconds N] [--targets "open walk"] [--max-len BYTES]
#                   [--runs "N" or "open:N walk:N ..." --seed S]
#   make fuzz FUZZ_SECONDS=N          fresh random seeds, time-bounded (part of `make soak`)
#   make fuzz-fixed                   what CI runs: a fixed number of runs from a fixed seed
#
# With --runs and --seed the run is deterministic: each target executes exactly N inputs (its own
# N where the list names it, else the plain number, else 10000) from
# libFuzzer seed S, on a fresh working corpus built from the same sources, so a commit passes or
# fails the same way every time (--seconds then only bounds a hang).
#
# Builds build-fuzz/ (-DLITELENS_FUZZ=ON), then for each target in LITELENS_FUZZ_TARGETS
# (fuzz/CMakeLists.txt) runs fuzz_<target> for N seconds (default 60) on a working corpus in
# build-fuzz/fuzz-corpus/<target>/, seeded from:
#   - the built models (litelens_fuzz_seeds: the model zoo of fuzz/model_zoo.h),
#   - the real models under 256 KiB from ${LITELENS_CACHE:-~/.cache/litelens}/models,
#   - the committed corpus fuzz/corpus/<target>/ and every crash in fuzz/regressions/.
# The working corpus grows across runs and is not committed; fuzz/corpus/ holds a small minimized
# copy (refresh it with --save-corpus). A crash stops the run with exit status 1 and leaves the
# input in build-fuzz/fuzz-artifacts/<target>/: add it to fuzz/regressions/ under a descriptive
# name once fixed, and the ctest fuzz_replay test keeps it fixed.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=60
TARGETS=""
MAX_LEN=262144
SAVE_CORPUS=0
RUNS=""
FUZZ_SEED=""
BUILD=build-fuzz
MODELS="${LITELENS_CACHE:-$HOME/.cache/litelens}/models"

while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_PER_TARGET="$2"; shift 2 ;;
    --targets) TARGETS="$2"; shift 2 ;;
    --max-len) MAX_LEN="$2"; shift 2 ;;
    --save-corpus) SAVE_CORPUS=1; shift ;;
    --runs) RUNS="$2"; shift 2 ;;
    --seed) FUZZ_SEED="$2"; shift 2 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "fuzz: unknown argument $1" >&2; exit 2 ;;
  esac
done

log() { echo "fuzz: $*" >&2; }
command -v clang++ >/dev/null || { log "clang++ not found (apt-get install clang libclang-rt-14-dev)"; exit 1; }

if [ ! -f "$BUILD/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLITELENS_FUZZ=ON >/dev/null
fi
[ -n "$TARGETS" ] || TARGETS=$(sed -n 's/^set(LITELENS_FUZZ_TARGETS \(.*\))$/\1/p' fuzz/CMakeLists.txt)
cmake --build "$BUILD" --target fuzz_targets litelens_fuzz_seeds litelens_fuzz_replay

status=0
summary=""
if [ -n "$RUNS" ] && [ -z "$FUZZ_SEED" ]; then log "--runs needs --seed"; exit 2; fi
extra=()
runs_of() {  # the --runs value for target $1
  local n=10000 item
  for item in $RUNS; do
    case "$item" in
      "$1":*) echo "${item#*:}"; return ;;
      *:*) ;;
      *) n="$item" ;;
    esac
  done
  echo "$n"
}
if [ -n "$RUNS" ]; then
  SECONDS_PER_TARGET=$((SECONDS_PER_TARGET > 600 ? SECONDS_PER_TARGET : 600))
elif [ -n "$FUZZ_SEED" ]; then
  extra=(-seed="$FUZZ_SEED")
fi
for t in $TARGETS; do
  corpus="$BUILD/fuzz-corpus/$t"
  if [ -n "$RUNS" ]; then
    extra=(-runs="$(runs_of "$t")" -seed="$FUZZ_SEED")
    # A fresh working corpus: the one that grows across time-bounded runs would change the path.
    corpus="$BUILD/fuzz-corpus-fixed/$t"
    rm -rf "$corpus"
  fi
  artifacts="$BUILD/fuzz-artifacts/$t"
  mkdir -p "$corpus" "$artifacts" "fuzz/corpus/$t"
  "$BUILD/fuzz/litelens_fuzz_seeds" "$corpus" >/dev/null
  if [ -d "$MODELS" ]; then
    find "$MODELS" -maxdepth 1 -name '*.tflite' -size -256k -exec cp -n {} "$corpus/" \;
  else
    log "no real models in $MODELS (run scripts/fetch-models.sh); seeding from built models only"
  fi
  if [ -n "$RUNS" ]; then
    log "target $t: $(runs_of "$t") runs from seed $FUZZ_SEED, corpus $(ls "$corpus" | wc -l) files"
  else
    log "target $t: ${SECONDS_PER_TARGET}s, corpus $(ls "$corpus" | wc -l) files"
  fi
  out="$BUILD/fuzz-$t.log"
  if "$BUILD/fuzz/fuzz_$t" "$corpus" "fuzz/corpus/$t" fuzz/regressions \
      -max_total_time="$SECONDS_PER_TARGET" -max_len="$MAX_LEN" -timeout=10 \
      -rss_limit_mb=2048 -malloc_limit_mb=512 -dict=fuzz/tflite.dict \
      -artifact_prefix="$artifacts/" -print_final_stats=1 "${extra[@]}" >"$out" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out")
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out")
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$out")
    files=$(ls "$corpus" | wc -l)
    size=$(du -sk "$corpus" | cut -f1)
    summary+="fuzz_$t: ${runs} runs (${speed}/s), peak RSS ${rss} MiB, corpus ${files} files (${size} KiB)"$'\n'
  else
    status=1
    log "fuzz_$t FOUND A PROBLEM (log: $out):"
    grep -E "ERROR|runtime error|what\(\)|SUMMARY|Test unit written" "$out" | head -n 12 >&2 || true
    summary+="fuzz_$t: CRASH, see $out and $artifacts/"$'\n'
  fi
  if [ "$SAVE_CORPUS" = 1 ]; then
    # A small committed corpus (< 2 MB): inputs up to 3 KiB keeping the coverage of the working one.
    tmp="$BUILD/fuzz-merge-$t"
    rm -rf "$tmp" && mkdir -p "$tmp"
    "$BUILD/fuzz/fuzz_$t" -merge=1 -max_len=3072 "$tmp" "$corpus" >/dev/null 2>&1 || true
    rm -f "fuzz/corpus/$t"/*
    cp "$tmp"/* "fuzz/corpus/$t/" 2>/dev/null || true
    log "saved $(ls "fuzz/corpus/$t" | wc -l) inputs ($(du -sk "fuzz/corpus/$t" | cut -f1) KiB) to fuzz/corpus/$t"
  fi
done
printf '%s' "$summary"
exit $status
