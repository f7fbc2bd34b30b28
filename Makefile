# litelens: `make demo` and `make test` work on a fresh machine; each installs what is missing.
# Build folders: build/ (release), build-asan/ (sanitizers), build-bench/ (make bench). Models: $(LITELENS_CACHE)/models.

BUILD      ?= build
PYTHON     ?= python3
export LITELENS_CACHE ?= $(HOME)/.cache/litelens
MODELS      = $(LITELENS_CACHE)/models
FIXTURES    = $(LITELENS_CACHE)/fixtures
CLI         = $(BUILD)/tools/litelens/litelens
DEMO_MODEL  = $(MODELS)/face_detection_short_range.tflite
CMAKE_FLAGS = -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLITELENS_WERROR=ON
# ccache keys on paths relative to the checkout, so a fresh clone reuses earlier compilations.
export CCACHE_BASEDIR ?= $(CURDIR)
export CCACHE_NOHASHDIR ?= 1
ASAN_BUILD  = build-asan
BENCH_BUILD = build-bench
FUZZ_SECONDS ?= 60
SOAK_SECONDS ?= 900
# CI's fuzzing: a fixed number of inputs per target from a fixed seed (deterministic).
FUZZ_RUNS ?= open:150000 walk:100000 layers:50000 export:2500
FUZZ_SEED ?= 1

.PHONY: all deps build models fixtures demo test test-asan test-cpp test-python test-python-package test-python-abi3 python-stub fuzz fuzz-fixed soak bench clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@[ -f $(BUILD)/build.ninja ] || cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	@cmake --build $(BUILD)

models: deps
	@scripts/fetch-models.sh >/dev/null

# Quantized test models made by TensorFlow's converter from small Keras models (the only use of
# TensorFlow), cached in $(FIXTURES) with a version stamp: rebuilt only when the stamp changes.
fixtures: deps
	@scripts/install-deps.sh --fixtures
	@$(PYTHON) scripts/make-fixtures.py --out $(FIXTURES) >/dev/null

demo: build models
	@echo "== $(notdir $(DEMO_MODEL)): every CONV_2D layer's weights and biases (shape, dtype, layout, first values)"
	$(CLI) layers $(DEMO_MODEL) --op CONV_2D --count 6

test-cpp: build models
	ctest --test-dir $(BUILD) --output-on-failure -j2

test-python: build models fixtures
	LITELENS_CLI=$(abspath $(CLI)) $(PYTHON) -m pytest -q tests/python --ignore-glob='*/test_package_*'

# The Python package (pip install ., incremental in build-py/) and its own tests.
test-python-package: deps models
	$(PYTHON) -m pip install -q --no-build-isolation --disable-pip-version-check --root-user-action=ignore .
	$(PYTHON) -m pytest -q $(wildcard tests/python/test_package_*.py)

# The stable-ABI wheel as a user gets it: `pip wheel .` with Python 3.12 and build isolation
# (scikit-build-core and nanobind from PyPI), tagged cp312-abi3, installed into a Python 3.13 venv
# and smoke-tested there (import, a cached model, conv2d_params, the litelens command).
# Incremental in build-py/cp312-abi3-*/ with ccache; fails, never skips, without 3.12 / 3.13.
test-python-abi3: deps models
	@python/test-abi3.sh

# Regenerates python/litelens/_litelens.pyi from the installed module (after test-python-package).
python-stub:
	$(PYTHON) -m nanobind.stubgen -q -m litelens._litelens -p python/stubgen_patterns.txt -o python/litelens/_litelens.pyi

# The whole C++ suite and the CLI corruption matrix under AddressSanitizer + UBSan (incremental).
test-asan: deps models
	@[ -f $(ASAN_BUILD)/build.ninja ] || cmake -S . -B $(ASAN_BUILD) $(CMAKE_FLAGS) -DLITELENS_SANITIZE=ON
	@cmake --build $(ASAN_BUILD)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j2

# libFuzzer (clang) in build-fuzz/: every target for FUZZ_SECONDS seconds each, fresh seeds.
fuzz: deps models
	@scripts/fuzz.sh --seconds $(FUZZ_SECONDS)

# What CI fuzzes: FUZZ_RUNS inputs per target from libFuzzer seed FUZZ_SEED, on a fresh working
# corpus: the same commit always runs the same inputs.
fuzz-fixed: deps models
	@scripts/fuzz.sh --runs "$(FUZZ_RUNS)" --seed $(FUZZ_SEED)

# Fresh random seeds for every randomised suite (sweeps, CLI matrix, fuzzers) for SOAK_SECONDS;
# `make test` runs fixed seeds only. Run it before you stop; what it finds becomes a named case.
soak: build models
	@scripts/soak.sh --seconds $(SOAK_SECONDS)

test: fixtures test-asan test-cpp test-python test-python-package test-python-abi3

# Benchmarks (not part of `make test`; see BENCHMARKS.md): litelens against the LiteRT interpreter
# recipe, the tflite package, flatc and cp, then the decode micro-benchmarks; one table. Models
# are made once and cached in $(LITELENS_CACHE)/bench (TensorFlow is installed only to make the
# int8 MobileNetV2 when it is missing). The litelens Python column appears once `pip install .`
# has been run. Release build with the bench targets in $(BENCH_BUILD)/.
bench: deps models
	@[ -f $(LITELENS_CACHE)/bench/mobilenet_v2_int8.tflite ] || scripts/install-deps.sh --fixtures
	@cmake -S . -B $(BENCH_BUILD) $(CMAKE_FLAGS) -DLITELENS_BUILD_BENCH=ON -DLITELENS_BUILD_TESTS=OFF >/dev/null
	@cmake --build $(BENCH_BUILD)
	$(PYTHON) scripts/bench.py --build $(BENCH_BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(BENCH_BUILD) build-fuzz build-py
