# Every target does its own set-up first, so each works as the first command on a fresh clone.
PYTHON ?= python3
BUILD ?= build
JOBS ?= 2
CMAKE_FLAGS ?=

.PHONY: all setup configure build python test test-cpp test-python test-sanitize fuzz-ci demo bench coverage clean

all: build

setup:
	@bash scripts/setup.sh

configure: setup
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) > $(BUILD).configure.log 2>&1 || (cat $(BUILD).configure.log; exit 1)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# The Python package, built from the same tree and installed into the current Python.
python: build
	@bash scripts/install_python.sh $(BUILD)

# The whole test suite: C++ (ctest) then Python (pytest).
test: build python
	$(MAKE) --no-print-directory test-cpp test-python

test-cpp:
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-python:
	@bash scripts/run_pytest.sh

# The C++ suite under sanitizers, in trees of its own that build only the tests they run:
# ASan+UBSan over every C++ test (build-asan), ThreadSanitizer over the transport and wrapper
# tests (build-tsan). See scripts/sanitize.sh.
test-sanitize: setup
	@JOBS=$(JOBS) bash scripts/sanitize.sh

# Every libFuzzer target (clang) for AZ_FUZZ_SECONDS each (default 60), from the seed corpora
# in tests/fuzz/corpus/. See scripts/fuzz.sh.
fuzz-ci: configure
	@JOBS=$(JOBS) bash scripts/fuzz.sh $(BUILD)

# The main job: sample Arrow data through the project (see README). Builds only what it runs.
DEMO_TARGETS = arrow_zerobus zerobus-arrow zerobus-emulator
demo: configure
	@echo "demo: building only the demo's targets: $(DEMO_TARGETS)"
	@cmake --build $(BUILD) -j $(JOBS) --target $(DEMO_TARGETS)
	@bash scripts/demo.sh $(BUILD)

# All benchmarks; each program's last output line is JSON, collected in bench-results.jsonl.
bench: build python
	@bash scripts/bench.sh $(BUILD)

# Per-file line coverage of the C++ sources (gcovr) and of the Python code (pytest-cov).
coverage: python
	@bash scripts/coverage.sh

clean:
	rm -rf build build-* bench-results.jsonl
