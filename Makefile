# Plutino's developer entry points. Each target creates .venv (python3 -m venv) when it is
# missing and installs the contract and the host into it, so on a fresh machine
#     make run     builds everything and serves the host with the demo rule (plutino serve --demo)
#     make test    builds everything and runs the test suite
# Other targets: build (install only), bench (bench/*.py except _helpers), clean, distclean
# (also drops .venv).
# Pass options to the server with ARGS, e.g.  make run ARGS="--port 9090 --data-dir /tmp/pd".

PYTHON ?= python3
VENV   ?= .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.plutino-installed
ARGS   ?=

# The tests build native_plugins/ with CMake, which looks for `cython` on PATH: use the venv's.
export PATH := $(abspath $(VENV))/bin:$(PATH)

# Everything the installed packages are built from: a change to any of these reinstalls.
INPUTS := pyproject.toml CMakeLists.txt README.md \
  $(shell find contract host native_plugins -type f ! -path '*/__pycache__/*' ! -name '*.pyc' \
          ! -path '*/build/*' ! -path '*/dist/*' ! -path '*.egg-info/*' 2>/dev/null)

.PHONY: all build run test bench clean distclean system-deps system-deps-test

all: build

# System tools (cmake, the venv module; mosquitto for the tests) are installed when missing
# (apt-get, as root) or named with the command that installs them.
system-deps:
	@tools/system-deps.sh build

system-deps-test:
	@tools/system-deps.sh test

$(VPY): | system-deps
	$(PYTHON) -m venv $(VENV)

# pip always rebuilds a local directory, so the stamp keeps `make test` quick when nothing changed.
$(STAMP): $(VPY) $(INPUTS)
	$(VPY) -m pip install ./contract
	$(VPY) -m pip install '.[test]'
	@touch $@

build: system-deps $(STAMP)

run: system-deps $(STAMP)
	$(VPY) -m plutino serve --demo $(ARGS)

test: system-deps-test $(STAMP)
	$(VPY) -m pytest -q tests

bench: $(STAMP)
	@set -e; found=0; for f in bench/*.py; do \
	  case "$$f" in bench/_*) continue;; esac; \
	  [ -e "$$f" ] || continue; found=1; echo "== $$f"; $(VPY) "$$f"; \
	done; [ $$found = 1 ] || echo "no benchmarks in bench/"

clean:
	rm -rf build dist contract/dist .pytest_cache $(STAMP)
	find . \( -path ./$(VENV) -o -path ./.git \) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
