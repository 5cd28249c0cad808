# The two commands of the README:
#   make run    set up, build, and run the daemon on its built-in defaults
#   make test   set up, build, and run the whole test suite, then again under
#               AddressSanitizer + UndefinedBehaviorSanitizer
# Other targets: setup, build, asan, install (PREFIX, DESTDIR), clean.

MAKEFLAGS += --no-print-directory
PREFIX ?= /usr/local
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
BUILD  ?= build
ASAN   ?= build-asan
CMAKE_FLAGS ?=

.PHONY: all setup build asan run test test-build test-asan install clean

all: build

setup:
	@bash scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD) -DINFERD_WERROR=ON -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

asan: setup
	@cmake -S . -B $(ASAN) -DINFERD_WERROR=ON -DINFERD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN) -j $(JOBS)

run: build
	./$(BUILD)/inferd serve

# Both runs must pass; the sanitizer run is last so its summary closes the output.
test: build asan
	@echo "== tests: release build =="
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	@echo "== tests: ASan + UBSan build =="
	@cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	    ctest --output-on-failure -j $(JOBS)

install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(ASAN)
