# litelens: `make demo` and `make test` work on a fresh machine; each installs what is missing.
# Build folders: build/ (release), build-asan/ (sanitizers). Models: $(LITELENS_CACHE)/models.

BUILD      ?= build
PYTHON     ?= python3
export LITELENS_CACHE ?= $(HOME)/.cache/litelens
MODELS      = $(LITELENS_CACHE)/models
CLI         = $(BUILD)/tools/litelens/litelens
DEMO_MODEL  = $(MODELS)/face_detection_short_range.tflite
CMAKE_FLAGS = -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all deps build models demo test test-cpp test-python clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@[ -f $(BUILD)/build.ninja ] || cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	@cmake --build $(BUILD)

models: deps
	@scripts/fetch-models.sh >/dev/null

demo: build models
	$(CLI) info $(DEMO_MODEL)
	$(CLI) ops $(DEMO_MODEL) | head -n 12

test-cpp: build
	ctest --test-dir $(BUILD) --output-on-failure -j2

test-python: build models
	LITELENS_CLI=$(abspath $(CLI)) $(PYTHON) -m pytest -q tests/python

test: test-cpp test-python

clean:
	rm -rf $(BUILD) build-asan
