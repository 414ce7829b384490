# EdgeOpt: `make run` and `make test` work on a fresh Debian 12 machine (they install what is missing).
BUILD   ?= build
FUZZ_BUILD ?= build-fuzz
JOBS    ?= $(shell nproc)
VENV    ?= .venv
PYTHON  := $(VENV)/bin/python
FUZZ_SECONDS ?= 20

.PHONY: all deps pydeps build web test-web models test test-unit test-interop fuzz run demo bench bench-server bench-techniques bench-runtimes bench-store format clean

all: build

deps:
	@scripts/install-deps.sh

pydeps: deps
	@scripts/install-py.sh $(VENV)

$(BUILD)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD)/build.ninja web
	cmake --build $(BUILD) -j $(JOBS)

# The web UI (web/): `npm ci` from the committed lock file, then a Vite build into web/dist, which
# `edgeopt serve` serves at /, with the single-file template `edgeopt report` fills (web/dist/report.html). Both steps run only when their inputs changed.
WEB_SRC := $(shell find web/src web/index.html web/report.html web/vite.config.ts web/vite.report.config.ts web/scripts/inline-report.mjs web/tsconfig.json web/package.json -type f 2>/dev/null)

# Vite 8 needs Node.js >= 20.19; Debian 12's own nodejs is 18. When the machine's node is missing
# or older, Node 22 from PyPI is installed into the venv (scripts/install-node.sh) and the UI's
# steps run with it first on PATH. EDGEOPT_VENV_NODE=1 uses the venv's Node even when the machine
# has a new enough one (how the fresh-machine path is tried on a newer machine).
NODE_OK := $(shell node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.stdout.write(a>20||(a==20&&b>=19)?"yes":"no")' 2>/dev/null)
ifeq ($(NODE_OK)$(EDGEOPT_VENV_NODE),yes)
NODE_DEP :=
WEB_ENV  :=
else
NODE_DEP := $(VENV)/node-bin/.installed
WEB_ENV  := PATH="$(abspath $(VENV))/node-bin:$$PATH"
endif

$(VENV)/node-bin/.installed: web/requirements-node.txt scripts/install-node.sh | deps
	@scripts/install-node.sh $(VENV)
	@touch $@

web/node_modules/.package-lock.json: web/package-lock.json $(NODE_DEP)
	cd web && $(WEB_ENV) npm ci --no-audit --no-fund
	@touch $@

web/dist/index.html: web/node_modules/.package-lock.json $(WEB_SRC)
	cd web && $(WEB_ENV) npm run build

web: deps web/dist/index.html

# Large torchvision models (random weights) are made at test time with their goldens from PyTorch
# and ONNX Runtime; the small fixtures and goldens are committed under tests/data.
MODELS_DIR := $(abspath $(BUILD))/models

models: pydeps
	@test -f $(MODELS_DIR)/golden/.done || ($(PYTHON) tools/fixtures/make_torch_models.py --out $(MODELS_DIR) && touch $(MODELS_DIR)/golden/.done)

# The store's tests (and the server's black-box tests) also run against a real PostgreSQL: a
# throw-away cluster in $(PG_TEST_DIR), started for the run and always stopped, its URL in
# EDGEOPT_TEST_POSTGRES_URL (set it yourself to use another server instead).
PG_TEST_DIR ?= $(abspath $(BUILD))/pg-test
WITH_PG := scripts/pg-test-cluster.sh run $(PG_TEST_DIR) --

test: build pydeps models
	$(WITH_PG) $(MAKE) --no-print-directory test-unit test-interop
	$(MAKE) test-web
	$(MAKE) fuzz

test-unit: build
	$(WITH_PG) sh -c 'cd $(BUILD) && EDGEOPT_GOLDEN_DIR=$(MODELS_DIR)/golden ctest --output-on-failure'

# Real runtimes as the oracle: ONNX Runtime and PyTorch outputs vs ours, on models made here.
# The ONNX exporter's C++ tests leave their exports (with reference outputs) for ONNX Runtime to check.
EXPORTS_DIR := $(abspath $(BUILD))/onnx-exports

test-interop: build pydeps
	mkdir -p $(EXPORTS_DIR) && EDGEOPT_EXPORT_DIR=$(EXPORTS_DIR) $(BUILD)/edgeopt_core_tests --gtest_filter='OnnxExport*' > /dev/null
	EDGEOPT_BIN=$(abspath $(BUILD))/edgeopt EDGEOPT_BUILD=$(abspath $(BUILD)) EDGEOPT_EXPORT_DIR=$(EXPORTS_DIR) \
	  $(WITH_PG) $(PYTHON) -m pytest -q tests/interop

# The UI: API types still match data/api/openapi.json, unit tests (vitest), then end-to-end tests in
# headless Debian chromium against a real `edgeopt serve` (screenshots in web/e2e-artifacts).
test-web: build
	cd web && $(WEB_ENV) npm run check-types
	cd web && $(WEB_ENV) npx vitest run
	cd web && $(WEB_ENV) EDGEOPT_BIN=$(abspath $(BUILD))/edgeopt node --test --test-concurrency=1 e2e/*.test.mjs

# Every parser gets a short libFuzzer run (clang, ASan+UBSan) from its seed corpus.
fuzz: deps
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -G Ninja -DEDGEOPT_FUZZ=ON -DEDGEOPT_WITH_TORCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	scripts/run-fuzzers.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# The platform on 127.0.0.1:8000 with SQLite under ./edgeopt-store (Ctrl-C stops it).
run: build
	$(BUILD)/edgeopt serve --host 127.0.0.1 --port 8000 --store edgeopt-store

# The CLI on the shared fixtures, offline (what `make run` showed before the server existed).
demo: build
	scripts/demo.sh $(BUILD)/edgeopt

bench: build pydeps
	$(PYTHON) bench/bench_foundation.py --bin $(BUILD)/edgeopt

# The service's goals: idle RSS, API read latency under load during a run, 500 SSE clients.
bench-server: build pydeps
	$(PYTHON) bench/bench_server.py --bin $(BUILD)/edgeopt

# The seven techniques on the small/medium/large Fashion-MNIST zoo models against the issue's bars
# (trains missing zoo models first: ~10 min each).
bench-techniques: build pydeps
	$(PYTHON) bench/bench_techniques.py --bin $(BUILD)/edgeopt

# Each exported TFLite file in LiteRT and in EdgeOpt's executor, each vs its FP32 file
# (docs/runtime-latency.md holds the tables this prints).
bench-runtimes: build pydeps
	$(PYTHON) bench/bench_runtimes.py --bin $(BUILD)/edgeopt --markdown

# The store's job queue: jobs/s and claim latency with 1..16 concurrent claimers, on a throw-away
# PostgreSQL cluster and on SQLite.
bench-store: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS) --target edgeopt_bench_store
	$(WITH_PG) sh -c '$(BUILD)/edgeopt_bench_store --database "$$EDGEOPT_TEST_POSTGRES_URL"'
	$(BUILD)/edgeopt_bench_store --claimers 1,2,4,8

format:
	clang-format -i $$(git ls-files 'src/*.cpp' 'src/*.h' 'tests/*.cpp')

include mk/calibrate.mk

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD)
