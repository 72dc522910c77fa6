# Plutino's developer entry points. On a fresh Debian/Ubuntu machine
#     make run     builds everything and serves the host with the demo rule (plutino serve --demo)
#     make test    builds everything, lints (ruff), type-checks (mypy) and runs the test suite
# do all the set-up: the system tools (tools/system-deps.sh installs them when missing and it runs
# as root, else stops at once with the apt-get line to run), .venv (python3 -m venv), the contract
# and the host installed into it.
# Other targets: build (install only), lint (ruff and mypy), test-scaleout (only the tests marked
# scaleout: the plugins in Ray Data and Spark on real local clusters, several hosts on one
# stream), bench (bench/*.py except _helpers, report.py and scaleout.py's sections), bench-report (the README's and
# docs/performance.md's tables from build/bench/), clean, distclean (also drops .venv).
# Pass options to the server with ARGS, e.g.  make run ARGS="--port 9090 --data-dir /tmp/pd".

PYTHON ?= python3
VENV   ?= .venv
VPY    := $(VENV)/bin/python
ARGS   ?=

# The one CMake build of native_plugins/, kept between builds: the wheel build compiles the
# bundled plugins and the tests' corpora (PLUTINO_BUILD_BROKEN=ON; never installed) into it and
# the tests reuse it (tests/conftest.py), so each plugin is compiled once, and again only when
# its sources change. The lock is the one the tests' fixture takes.
NATIVE_BUILD := build/native
NATIVE_LOCK  := build/native.lock

# Build tools (scikit-build-core, Cython, hatchling), then the contract, then the host: each
# reinstalled only when its own inputs changed, and the host's native part rebuilt incrementally.
TOOLS_STAMP    := $(VENV)/.plutino-tools
CONTRACT_STAMP := $(VENV)/.plutino-contract
HOST_STAMP     := $(VENV)/.plutino-host
SCALEOUT_STAMP := $(VENV)/.plutino-scaleout
PIP := $(VPY) -m pip install --quiet --disable-pip-version-check

# CMake finds `cython` on PATH (the geo plugin is Cython): the venv's.
export PATH := $(abspath $(VENV))/bin:$(PATH)
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

_files = $(shell find $(1) -type f ! -path '*/__pycache__/*' ! -name '*.pyc' 2>/dev/null)
CONTRACT_INPUTS := contract/pyproject.toml contract/README.md contract/LICENSE \
  $(call _files,contract/plutino_contract contract/include contract/cmake contract/rust)
HOST_INPUTS := pyproject.toml CMakeLists.txt README.md LICENSE \
  $(call _files,host native_plugins contract/include contract/cmake)

.PHONY: all build run test test-scaleout lint bench bench-report clean distclean system-deps system-deps-test

all: build

# System tools (gcc, make, cmake, the venv module; mosquitto, cargo, chromium and Java 17 for the tests).
system-deps:
	@PYTHON=$(PYTHON) tools/system-deps.sh build

system-deps-test:
	@PYTHON=$(PYTHON) tools/system-deps.sh test

$(VPY): | system-deps
	$(PYTHON) -m venv $(VENV)

# What pyproject.toml's build-system tables name, and what scikit-build-core asks for beside
# them (a newer CMake or ninja from PyPI when the system's is too old or missing), in the venv:
# the packages are then built without an isolated environment, so CMake's cache stays valid
# from one build to the next.
$(TOOLS_STAMP): $(VPY) pyproject.toml contract/pyproject.toml
	$(PIP) --upgrade pip
	$(PIP) $$($(VPY) -c 'import sys, tomllib; print(" ".join(r for f in sys.argv[1:] for r in tomllib.load(open(f, "rb"))["build-system"]["requires"]))' pyproject.toml contract/pyproject.toml)
	@more=$$($(VPY) -c 'from scikit_build_core.build import get_requires_for_build_wheel as r; print(" ".join(r()))'); \
	  [ -z "$$more" ] || $(PIP) $$more
	@touch $@

$(CONTRACT_STAMP): $(TOOLS_STAMP) $(CONTRACT_INPUTS)
	$(PIP) --no-build-isolation ./contract
	@touch $@

$(HOST_STAMP): $(CONTRACT_STAMP) $(HOST_INPUTS)
	@echo "installing the host into $(VENV): the plugins compile into $(NATIVE_BUILD) (a few minutes the first time)"
	@mkdir -p $(dir $(NATIVE_LOCK))
	flock $(NATIVE_LOCK) $(PIP) --no-build-isolation --config-settings=build-dir=$(NATIVE_BUILD) \
	  --config-settings=cmake.define.PLUTINO_BUILD_BROKEN=ON '.[test]'
	@touch $@

# The scaleout extra (Ray, PySpark: a few hundred MB) for the tests only, so that `make run`
# does not download it: its requirements read from pyproject.toml, installed beside the host.
$(SCALEOUT_STAMP): $(HOST_STAMP) pyproject.toml
	$(VPY) -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["scaleout"]))' > $(VENV)/scaleout-requirements.txt
	$(PIP) -r $(VENV)/scaleout-requirements.txt
	@touch $@

build: system-deps $(HOST_STAMP)

run: system-deps $(HOST_STAMP)
	$(VPY) -m plutino serve --demo $(ARGS)

lint: $(HOST_STAMP)
	$(VPY) -m ruff check host contract tests bench tools
	$(VPY) -m mypy

# The suite on TEST_JOBS pytest-xdist workers, each running whole files (their module fixtures,
# servers and brokers, stay in one process); TEST_JOBS=0 runs it in one process. tests/isolation
# runs alone afterwards: it times the supervisor's reactions (call deadlines, memory limits,
# restarts), which a second busy core distorts (a 128 MiB call took over its 2 s deadline).
TEST_JOBS ?= 2

test: system-deps-test $(SCALEOUT_STAMP) lint
	$(VPY) -m pytest -q -n $(TEST_JOBS) --dist loadfile tests --ignore=tests/isolation
	$(VPY) -m pytest -q -p no:xdist tests/isolation

# The scaleout group alone (also part of `make test`): Ray Data, Spark (local[2], a standalone
# master and worker, Structured Streaming; Java from system-deps) and several hosts on one stream.
test-scaleout: system-deps-test $(SCALEOUT_STAMP)
	$(VPY) -m pytest -q -p no:xdist -m scaleout tests/scaleout

bench: $(SCALEOUT_STAMP)
	@set -e; found=0; for f in bench/*.py; do \
	  case "$$f" in bench/_*|bench/report.py|bench/scaleout_*) continue;; esac; \
	  [ -e "$$f" ] || continue; found=1; echo "== $$f"; $(VPY) "$$f"; \
	done; [ $$found = 1 ] || echo "no benchmarks in bench/"

# The README's and docs/performance.md's tables from the latest 3 saved runs (build/bench/).
bench-report:
	$(VPY) bench/report.py

clean:
	rm -rf build dist contract/dist .pytest_cache .mypy_cache .ruff_cache $(TOOLS_STAMP) $(CONTRACT_STAMP) $(HOST_STAMP)
	find . \( -path ./$(VENV) -o -path ./.git \) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
