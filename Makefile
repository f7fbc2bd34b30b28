# litelens: `make demo` and `make test` work on a fresh machine; each installs what is missing.
# Build folders: build/ (release), build-asan/ (sanitizers). Models: $(LITELENS_CACHE)/models.

BUILD      ?= build
PYTHON     ?= python3
export LITELENS_CACHE ?= $(HOME)/.cache/litelens
MODELS      = $(LITELENS_CACHE)/models
CLI         = $(BUILD)/tools/litelens/litelens
DEMO_MODEL  = $(MODELS)/face_detection_short_range.tflite
CMAKE_FLAGS = -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
ASAN_BUILD  = build-asan
FUZZ_SECONDS ?= 60

.PHONY: all deps build models demo test test-asan test-cpp test-python fuzz clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@[ -f $(BUILD)/build.ninja ] || cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	@cmake --build $(BUILD)

models: deps
	@scripts/fetch-models.sh >/dev/null

demo: build models
	@echo "== $(notdir $(DEMO_MODEL)): every CONV_2D layer's weights and biases (shape, dtype, layout, first values)"
	$(CLI) layers $(DEMO_MODEL) --op CONV_2D --count 6

test-cpp: build
	ctest --test-dir $(BUILD) --output-on-failure -j2

test-python: build models
	LITELENS_CLI=$(abspath $(CLI)) $(PYTHON) -m pytest -q tests/python

# The whole C++ suite and the CLI corruption matrix under AddressSanitizer + UBSan (incremental).
test-asan: deps models
	@[ -f $(ASAN_BUILD)/build.ninja ] || cmake -S . -B $(ASAN_BUILD) $(CMAKE_FLAGS) -DLITELENS_SANITIZE=ON
	@cmake --build $(ASAN_BUILD)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j2

# libFuzzer (clang) in build-fuzz/: every target for FUZZ_SECONDS seconds each.
fuzz: deps models
	@scripts/fuzz.sh --seconds $(FUZZ_SECONDS)

test: test-asan test-cpp test-python

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
