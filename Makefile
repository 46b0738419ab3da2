# OpenDojo — the two set-up commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
SWIFT ?= swift
CONFIG ?= release
THREADS ?= $(shell nproc)
export OMP_NUM_THREADS ?= $(THREADS)
BIN := .build/$(CONFIG)/dojo

.PHONY: deps test-deps build demo test fuzz bench clean

deps:
	@scripts/install-deps.sh

# The tests also need chromium: the dashboard's test loads the page in headless Chromium
# (Tests/DojoServerTests/DashboardTests.swift).
test-deps:
	@scripts/install-deps.sh chromium

build: deps
	$(SWIFT) build -c $(CONFIG)

# The main job: train the multi-camera occupancy network on the embedded driving scenes.
demo: build
	$(BIN) train --out runs/demo --force

# Every test, in the release configuration (the numerics and training tests are too slow in debug).
# One build with the tests (a plain `swift build` and then `swift test` would build everything twice: their flags differ).
test: test-deps
	scripts/onnx-fixtures.sh
	$(SWIFT) build -c $(CONFIG) --build-tests
	$(SWIFT) test -c $(CONFIG) --skip-build --parallel --num-workers 2 2>&1 | tee .build/test.log; exit $${PIPESTATUS[0]}

# The fuzz harness (Tests/DojoCLITests/FuzzCLITests.swift) at 20 times the cases of `make test`, with a new seed each
# run (printed; FUZZ_SEED=N FUZZ_SCALE=K repeat or size it). A failure prints its case; a crash leaves it in
# $TMPDIR/dojo-fuzz-current-case.txt.
fuzz: test-deps
	scripts/onnx-fixtures.sh
	$(SWIFT) build -c $(CONFIG) --build-tests
	FUZZ_SEED=$${FUZZ_SEED:-$$(date +%s)}; echo "fuzz seed $$FUZZ_SEED"; \
	FUZZ_SEED=$$FUZZ_SEED FUZZ_SCALE=$${FUZZ_SCALE:-20} $(SWIFT) test -c $(CONFIG) --skip-build --filter 'FuzzCLITests|testMutatedFilesNeverCrash'

# Speed and memory against baselines run on this machine in the same run (installs python3-torch).
bench: build
	scripts/bench.sh

clean:
	rm -rf .build runs
