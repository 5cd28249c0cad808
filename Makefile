# The two commands of the README:
#   make run    set up, build, and run the daemon on its built-in defaults
#   make test   set up, build, and run the whole test suite, then again under
#               AddressSanitizer + UndefinedBehaviorSanitizer
# Other targets: setup, gpu-provider, build, asan, fuzz (FUZZ_SECONDS per target),
# install (PREFIX, DESTDIR), clean.

MAKEFLAGS += --no-print-directory
PREFIX ?= /usr/local
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
BUILD  ?= build
ASAN   ?= build-asan
FUZZ   ?= build-fuzz
FUZZ_SECONDS ?= 60
CMAKE_FLAGS ?=

.PHONY: all setup gpu-provider build asan fuzz-build fuzz run test test-build test-asan install clean

all: build

setup:
	@bash scripts/setup.sh

# ONNX Runtime's CUDA provider beside the CPU build (179 MB from npm): the
# tests check what deviceClass gpu does with it on this machine.
gpu-provider: setup
	@scripts/fetch_onnxruntime.sh --gpu

build: setup
	@cmake -S . -B $(BUILD) -DINFERD_WERROR=ON -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

asan: setup
	@cmake -S . -B $(ASAN) -DINFERD_WERROR=ON -DINFERD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN) -j $(JOBS)

# libFuzzer targets (clang), one per parser of outside input (tests/fuzz/).
fuzz-build: setup
	@CC=clang cmake -S . -B $(FUZZ) -DINFERD_FUZZ=ON -DINFERD_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(FUZZ) -j $(JOBS)

# Each target for FUZZ_SECONDS (make fuzz FUZZ_SECONDS=3600): a crash fails
# the run and leaves its input in $(FUZZ)/tests/fuzz/ (crash-*).
fuzz: fuzz-build
	@cmake -S . -B $(FUZZ) -DFUZZ_SECONDS=$(FUZZ_SECONDS) >/dev/null
	@cd $(FUZZ) && ctest -L fuzz --output-on-failure

run: build
	./$(BUILD)/inferd serve

# Every run must pass; the sanitizer run is last so its summary closes the output.
test: build asan fuzz-build gpu-provider
	@echo "== tests: release build =="
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	@echo "== tests: fuzz targets, 5 s each =="
	@cmake -S . -B $(FUZZ) -DFUZZ_SECONDS=5 >/dev/null
	@cd $(FUZZ) && ctest -L fuzz --output-on-failure
	@echo "== tests: ASan + UBSan build =="
	@cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	    ctest --output-on-failure -j $(JOBS)

install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZ)
