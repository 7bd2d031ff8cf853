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
WEB_TOOLS := $(CURDIR)/tests/browser/node_modules
export PATH := $(SALIENT_TOOLS)/bin:$(WEB_TOOLS)/.bin:$(PATH)

SALIENT := $(CARGO_TARGET_DIR)/release/salient
DEMO_OUT ?= demo-out
TRUNK_VERSION := 0.21.14
# Must equal the `wasm-bindgen` pin in app/Cargo.toml.
WASM_BINDGEN_VERSION := 0.2.130

.PHONY: demo test build app site tools fixtures clean

demo: build
	@echo "== salient predict: the five most probable classes of each sample photo"
	$(SALIENT) predict public/samples
	@echo
	@echo "== salient explain: the features behind each prediction, as heatmaps in $(DEMO_OUT)/"
	$(SALIENT) explain --top 3 -o $(DEMO_OUT) public/samples

# Every test, the browser tests in headless Chromium included (they need the app in dist/).
test: tools app
	SALIENT_BROWSER_TESTS=1 SALIENT_APP_DIR=$(CURDIR)/dist cargo test --release
	@echo "make test: all tests passed"

build:
	cargo build --release -p salient

# The web explorer's bundle (wasm, JS, CSS) in dist/.
app: tools
	cargo fetch --target wasm32-unknown-unknown --locked
	trunk build --release

# Installs what the tests need when it is missing; does nothing when it is there.
tools:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
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
