# Salient: the two commands of the README, and their parts.
#
#   make demo   runs the main job on the built-in default: the synthetic benchmark through the
#               whole pipeline, then the explorer site, served on 127.0.0.1
#   make test   runs every test
#
# Build outputs and tools are cached outside the clone (a fresh clone of the same machine
# builds incrementally); override with CARGO_TARGET_DIR / SALIENT_TOOLS.

SHELL := /bin/bash
CACHE ?= $(HOME)/.cache/salient
export CARGO_TARGET_DIR ?= $(CACHE)/target
SALIENT_TOOLS ?= $(CACHE)/tools
WEB_TOOLS := $(CURDIR)/tests/browser/node_modules
export PATH := $(SALIENT_TOOLS)/bin:$(WEB_TOOLS)/.bin:$(PATH)

SALIENT := $(CARGO_TARGET_DIR)/release/salient
DEMO_OUT ?= demo-out
TRUNK_VERSION := 0.21.14
# Must equal the `wasm-bindgen` pin in app/Cargo.toml.
WASM_BINDGEN_VERSION := 0.2.130

.PHONY: demo test test-wasm test-arm lint build app python install site synth-models bench bench-cpu bench-gpu bench-scaling bench-web bench-web-resnet50 tools fixtures clean

PORT ?= 8080
ROBUST := models/synth-robust.safetensors
PLAIN := models/synth-plain.safetensors

# The built-in default end to end: the benchmark, the pipeline scored against its ground truth,
# the explorer site, served locally.
demo: site
	@echo
	@echo "== the explorer: open the URL below (Ctrl-C stops the server)"
	$(SALIENT) serve $(DEMO_OUT)/site --port $(PORT)

# The demo's explorer site in $(DEMO_OUT)/site, servable from any static host.
site: build app
	@echo "== salient synth generate: 10 shape classes with 5 planted spurious cues, ground truth included"
	$(SALIENT) synth generate -o $(DEMO_OUT)/bench
	@echo "== salient synth score: discover, label from ground truth, build masks, evaluate robust vs plain"
	$(SALIENT) synth score --data $(DEMO_OUT)/bench --robust $(ROBUST) --plain $(PLAIN) -o $(DEMO_OUT)/run
	@echo "== salient site: the explorer over the benchmark's masks, with the robust model for uploads"
	$(SALIENT) site --dataset $(DEMO_OUT)/run/dataset --images $(DEMO_OUT)/bench/test --weights $(ROBUST) \
		--run $(DEMO_OUT)/run/discover --notes $(DEMO_OUT)/run/site-notes.json \
		--title "Salient · synthetic benchmark" -o $(DEMO_OUT)/site

# Retrains the shipped models (by hand; about 20 minutes on 2 cores). Same seed, same weights.
synth-models: build
	$(SALIENT) synth generate -o $(DEMO_OUT)/bench
	$(SALIENT) synth train --data $(DEMO_OUT)/bench -o $(ROBUST)
	$(SALIENT) synth train --data $(DEMO_OUT)/bench --epsilon 0 -o $(PLAIN)

# Every test, the ignored ones included: the browser tests in headless Chromium (they need the
# app in dist/, Chromium and playwright-core, which `tools` and `app` provide) and the check of
# the paper's published labels (in ../shared/). None may be skipped: the count of tests that
# ran closes the output, and a run with an ignored test left over fails.
TEST_LOG := $(CACHE)/test.log
test: tools app python
	@mkdir -p $(CACHE)
	set -o pipefail; { SALIENT_APP_DIR=$(CURDIR)/dist SALIENT_PYTHON=$(PYTHON) \
		cargo test --release -- --include-ignored && $(MAKE) --no-print-directory test-wasm test-arm; } 2>&1 | tee $(TEST_LOG)
	@awk '/^test result:/ { p += $$4; f += $$6; i += $$8 } END { printf "total: %d passed, %d failed\n", p, f; exit (p == 0 || f > 0 || i > 0) }' $(TEST_LOG)

# The engine's convolution kernels and model tests where this machine cannot run them natively,
# part of `test`: on WebAssembly SIMD (the browser's CPU path) under Node's WASI, and on ARM64
# (the NEON kernels) under QEMU's user mode.
test-wasm: tools
	CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="-C target-feature=+simd128" \
	CARGO_TARGET_WASM32_WASIP1_RUNNER="node --no-warnings $(CURDIR)/tests/wasi.mjs" \
		cargo test -p salient-engine --lib --target wasm32-wasip1 -- cpu:: model::

test-arm: tools
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu" \
		cargo test -p salient-engine --lib --target aarch64-unknown-linux-gnu -- cpu:: model::

# Formatting (rustfmt.toml) and lints, warnings as errors; .ci/run runs it before the tests.
lint:
	@rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
	@rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
	cargo fmt --all --check
	cargo clippy --release --workspace --all-targets -- -D warnings

build:
	cargo build --release -p salient

# The web explorer's bundle (wasm, JS, CSS) in dist/, rebuilt only when its sources change
# (trunk re-runs wasm-bindgen and wasm-opt, minutes, on every call).
APP_SOURCES := $(shell find app engine/src engine/data public -type f 2>/dev/null) \
	Cargo.toml Cargo.lock app/Cargo.toml engine/Cargo.toml Trunk.toml .cargo/config.toml
app: tools dist/index.html

dist/index.html: $(APP_SOURCES)
	cargo fetch --target wasm32-unknown-unknown --locked
	trunk build --release
	@touch dist/index.html

# The Python package (python/) in its own virtual environment, $(VENV): what `pip install ./python`
# does on any machine, with maturin, numpy and Pillow (the tests read PNG masks with it) installed
# first so the build needs no isolated environment. Rebuilt when the Rust or Python sources change.
# One environment per clone (named by its path): two clones never test each other's package.
VENV := $(CACHE)/venv-$(shell printf %s "$(CURDIR)" | sha256sum | cut -c1-12)
PYTHON := $(VENV)/bin/python
PYTHON_SOURCES := $(shell find python engine/src engine/data pipeline/src -type f -not -path '*/__pycache__/*' 2>/dev/null) \
	Cargo.toml Cargo.lock python/Cargo.toml python/pyproject.toml engine/Cargo.toml pipeline/Cargo.toml
python: $(VENV)/.installed

$(VENV)/.installed: $(PYTHON_SOURCES)
	@python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || { \
		echo "installing Debian's python3-venv (the Python package's tests)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq python3-venv python3-pip >/dev/null; }
	@test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --disable-pip-version-check "maturin>=1.9,<2" numpy pillow
	PATH=$(VENV)/bin:$$PATH $(PYTHON) -m pip install -q --disable-pip-version-check --no-build-isolation ./python
	@touch $@

# Installs the CLI and the web app it copies into every site: $(PREFIX)/bin/salient and
# $(PREFIX)/share/salient/app/ (an older copy replaced), where `salient site` finds the app without
# --app. E.g. `make install PREFIX=$HOME/.local`; DESTDIR stages a package.
PREFIX ?= /usr/local
install: build app
	install -d "$(DESTDIR)$(PREFIX)/bin" "$(DESTDIR)$(PREFIX)/share/salient"
	install -m 755 "$(SALIENT)" "$(DESTDIR)$(PREFIX)/bin/salient"
	rm -rf "$(DESTDIR)$(PREFIX)/share/salient/app"
	cp -R dist "$(DESTDIR)$(PREFIX)/share/salient/app"
	@echo "installed $(DESTDIR)$(PREFIX)/bin/salient and its web app in $(DESTDIR)$(PREFIX)/share/salient/app"

# CPU speed against ONNX Runtime and PyTorch eager on the same random ResNet-50 weights (numbers
# for the README), then the browser's backends against native (bench-web).
bench: bench-cpu bench-web

BENCH_ENV := $(CACHE)/benchenv
bench-cpu: build
	@test -x $(BENCH_ENV)/bin/python || python3 -m venv $(BENCH_ENV)
	@$(BENCH_ENV)/bin/pip install -q numpy==2.4.6 onnx==1.23.2 onnxruntime==1.32.0 safetensors==0.8.0 torch==2.9.1
	@mkdir -p $(DEMO_OUT)
	$(BENCH_ENV)/bin/python tools/bench_cpu.py --salient $(SALIENT) --json $(DEMO_OUT)/bench-cpu.json

# Time vs number of images (100, 1k, 10k synthetic JPEGs through `salient build`) and vs batch
# size; plots into docs/, with the projected cost of an ImageNet run.
bench-scaling: build
	@test -x $(BENCH_ENV)/bin/python || python3 -m venv $(BENCH_ENV)
	@$(BENCH_ENV)/bin/pip install -q numpy==2.4.6 safetensors==0.8.0 pillow==12.0.0 matplotlib==3.10.7
	$(BENCH_ENV)/bin/python tools/bench_scaling.py --salient $(SALIENT) --work $(CACHE)/scaling --plot docs/scaling

# On a machine with an NVIDIA GPU: salient against PyTorch eager, same weights. The cuda backend's
# build downloads an LLVM bundle (cubecl-cuda's build script) and torch comes from PyPI, so this
# needs internet once; `make bench-gpu GPU_BACKEND=wgpu` runs salient on Vulkan instead.
TORCH_ENV := $(CACHE)/torchenv
GPU_BACKEND ?= cuda
bench-gpu:
	cargo build --release -p salient --features $(GPU_BACKEND)
	@test -x $(TORCH_ENV)/bin/python || python3 -m venv $(TORCH_ENV)
	@$(TORCH_ENV)/bin/pip install -q torch torchvision numpy safetensors
	@mkdir -p $(DEMO_OUT)
	$(TORCH_ENV)/bin/python tools/bench_gpu.py --salient $(SALIENT) --backend $(GPU_BACKEND) --json $(DEMO_OUT)/bench-gpu.json

# The explorer's speed in headless Chromium (CPU and WebGPU) against the same work natively.
BENCH_PORT ?= 8765
# $(call web-bench,SITE,WEIGHTS,IMAGE,UPLOADS,NAME): serve SITE, time it in Chromium against
# `salient bench` on the same weights, figures into $(DEMO_OUT)/bench-web-NAME.json.
define web-bench
	@$(SALIENT) bench -w $(2) --batch 1 --runs 5 --batches 5 --attack-steps 0 --json > $(DEMO_OUT)/bench-native-$(5).json
	@$(SALIENT) serve $(1) --port $(BENCH_PORT) > /dev/null & pid=$$!; sleep 1; \
	  cd tests/browser && SITE_URL=http://127.0.0.1:$(BENCH_PORT)/ IMAGE=$(3) RUNS=$(4) \
	  NATIVE_MS=$$(sed 's/.*"images_per_second":\([0-9.]*\).*/\1/' $(CURDIR)/$(DEMO_OUT)/bench-native-$(5).json | awk '{print 1000/$$1}') \
	  BROWSE_WASM_GZIP_BYTES=$$(gzip -9 -c $$(ls $(CURDIR)/dist/salient-app-*.wasm) | wc -c) \
	  ENGINE_WASM_GZIP_BYTES=$$(gzip -9 -c $(CURDIR)/dist/salient-worker_bg.wasm | wc -c) OUT=$(CURDIR)/$(DEMO_OUT)/bench-web-$(5).json \
	  node bench.mjs; status=$$?; kill $$pid; exit $$status
endef
WEB_IMAGE := $(CURDIR)/$(DEMO_OUT)/bench/test/c2_triangle/c2_triangle_0000.png
bench-web: site
	$(call web-bench,$(DEMO_OUT)/site,$(ROBUST),$(WEB_IMAGE),5,synth)

# The same with a ResNet-50 (seeded random weights) for uploads: the real model's size in a tab.
# Its site needs a dataset built with the same weights: 3 masks for 2 features of each class.
R50_RANDOM := $(DEMO_OUT)/resnet50-random.safetensors
bench-web-resnet50: site
	@test -x $(BENCH_ENV)/bin/python || python3 -m venv $(BENCH_ENV)
	@$(BENCH_ENV)/bin/pip install -q numpy==2.4.6 safetensors==0.8.0
	$(BENCH_ENV)/bin/python -c "import sys; sys.path.insert(0, 'tools'); from bench_common import random_resnet50; \
	  from safetensors.numpy import save_file; save_file(random_resnet50(), '$(R50_RANDOM)')"
	@printf 'class,feature,label\n' > $(DEMO_OUT)/resnet50-labels.csv
	@for c in 0 1 2 3 4 5 6 7 8 9; do printf "$$c,$$((c * 7)),core\n$$c,$$((c * 7 + 1)),spurious\n" >> $(DEMO_OUT)/resnet50-labels.csv; done
	rm -rf $(DEMO_OUT)/resnet50-dataset
	$(SALIENT) build -w $(R50_RANDOM) --images $(DEMO_OUT)/bench/test --annotations $(DEMO_OUT)/resnet50-labels.csv \
	  --per-feature 3 -o $(DEMO_OUT)/resnet50-dataset
	$(SALIENT) site --dataset $(DEMO_OUT)/resnet50-dataset --images $(DEMO_OUT)/bench/test --weights $(R50_RANDOM) \
	  --attack-steps 0 --title "Salient · ResNet-50, random weights" -o $(DEMO_OUT)/site-resnet50
	$(call web-bench,$(DEMO_OUT)/site-resnet50,$(R50_RANDOM),$(WEB_IMAGE),3,resnet50)

# Installs what the tests need when it is missing; does nothing when it is there.
tools:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
	@rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
	@command -v qemu-aarch64 >/dev/null && command -v aarch64-linux-gnu-gcc >/dev/null || { \
		echo "installing Debian's qemu-user and ARM64 cross compiler (the NEON kernel tests)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
			qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross >/dev/null; }
	@trunk --version 2>/dev/null | grep -q "$(TRUNK_VERSION)" || \
		cargo install --root $(SALIENT_TOOLS) trunk --version $(TRUNK_VERSION) --locked
	@wasm-bindgen --version 2>/dev/null | grep -q "$(WASM_BINDGEN_VERSION)" || \
		cargo install --root $(SALIENT_TOOLS) wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION)
	@command -v chromium >/dev/null || { \
		echo "installing Debian's chromium (browser tests)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }
	@cmp -s tests/browser/package-lock.json $(WEB_TOOLS)/.installed-lock || \
		(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.installed-lock)

# Regenerates tests/fixtures with PyTorch (by hand, never in CI): see tools/gen_fixtures.py.
fixtures:
	python3 tools/gen_fixtures.py

clean:
	rm -rf $(DEMO_OUT) dist
