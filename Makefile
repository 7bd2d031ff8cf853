# Salient: the two commands of the README, and their parts.
#
#   make demo   runs the main job on the built-in default (the bundled sample photos)
#   make test   runs every test
#
# Build outputs and tools are cached outside the clone (a fresh clone of the same machine
# builds incrementally); override with CARGO_TARGET_DIR / SALIENT_TOOLS.

SHELL := /bin/bash
CACHE ?= $(HOME)/.cache/salient
export CARGO_TARGET_DIR ?= $(CACHE)/target
SALIENT_TOOLS ?= $(CACHE)/tools
export PATH := $(SALIENT_TOOLS)/bin:$(PATH)

SALIENT := $(CARGO_TARGET_DIR)/release/salient
DEMO_OUT ?= demo-out
TRUNK_VERSION := 0.21.14
# Must equal the `wasm-bindgen` pin in app/Cargo.toml.
WASM_BINDGEN_VERSION := 0.2.130

.PHONY: demo test build site tools fixtures clean

demo: build
	@echo "== salient predict: the five most probable classes of each sample photo"
	$(SALIENT) predict public/samples
	@echo
	@echo "== salient explain: the features behind each prediction, as heatmaps in $(DEMO_OUT)/"
	$(SALIENT) explain --top 3 -o $(DEMO_OUT) public/samples

test: tools
	cargo test --release
	$(MAKE) site
	@echo "make test: all tests passed"

build:
	cargo build --release -p salient

# The web explorer, as a static site in dist/.
site: tools
	cargo fetch --target wasm32-unknown-unknown --locked
	trunk build --release

# Installs what the tests need when it is missing; does nothing when it is there.
tools:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@trunk --version 2>/dev/null | grep -q "$(TRUNK_VERSION)" || \
		cargo install --root $(SALIENT_TOOLS) trunk --version $(TRUNK_VERSION) --locked
	@wasm-bindgen --version 2>/dev/null | grep -q "$(WASM_BINDGEN_VERSION)" || \
		cargo install --root $(SALIENT_TOOLS) wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION)

# Regenerates tests/fixtures with PyTorch (by hand, never in CI): see tools/gen_fixtures.py.
fixtures:
	python3 tools/gen_fixtures.py

clean:
	rm -rf $(DEMO_OUT) dist
