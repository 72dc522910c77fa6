#!/usr/bin/env bash
# The system tools a make target needs, installed when missing (Debian/Ubuntu, as root), or the
# exact command to run printed and exit 1. Called by the Makefile (PYTHON: the interpreter that
# creates .venv, python3 unless `make PYTHON=...`):
#     tools/system-deps.sh build    gcc, make, cmake, Python >= 3.11 with venv and its headers
#     tools/system-deps.sh test     the same, plus g++ (the C++ plugin tests), mosquitto (the MQTT
#                                   tests start their own broker) and cargo (the Rust plugin
#                                   tests), unless rustup's is in ~/.cargo/bin, chromium with
#                                   chromium-driver (the web console's browser test), and a Java
#                                   runtime >= 17 (openjdk-17-jre-headless: PySpark's JVM in the
#                                   scaleout tests)
set -euo pipefail
target=${1:-build}
python=${PYTHON:-python3}
need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
for tool in gcc make cmake; do
  have "$tool" || need+=("$tool")
done
if ! have "$python"; then
  [ "$python" = python3 ] || { echo "error: $python is not on PATH; install it, or run make without PYTHON=" >&2; exit 1; }
  need+=(python3 python3-venv python3-dev)
elif ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "error: Plutino needs Python >= 3.11; $python is $("$python" -c 'import platform; print(platform.python_version())')." >&2
  echo "install a newer one (e.g. sudo apt-get install -y python3.11 python3.11-venv python3.11-dev) and run make PYTHON=python3.11" >&2
  exit 1
else
  # the venv module, and the headers the Cython plugin (geo) compiles against
  pkg=python3; [ "$python" = python3 ] || pkg=$(basename "$python")
  "$python" -c 'import venv, ensurepip' 2>/dev/null || need+=("$pkg-venv")
  "$python" -c 'import os, sysconfig; os.stat(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' \
    2>/dev/null || need+=("$pkg-dev")
fi
if [ "$target" = test ]; then
  have g++ || need+=(g++)
  have mosquitto || need+=(mosquitto)
  if ! have cargo && [ ! -x "${HOME:-/nonexistent}/.cargo/bin/cargo" ]; then
    need+=(cargo)  # Debian's cargo brings rustc
  fi
  if ! have chromium && ! have chromium-browser; then need+=(chromium); fi
  have chromedriver || need+=(chromium-driver)
  # Spark 4 runs on Java 17 or newer; `java -version` says e.g. 'openjdk version "17.0.15" ...'
  java_major=$( { java -version 2>&1 || true; } | sed -n 's/.*version "\(1\.\)\{0,1\}\([0-9]*\).*/\2/p' | head -n1)
  if [ -z "$java_major" ] || [ "$java_major" -lt 17 ]; then
    [ -z "$java_major" ] || echo "java on PATH is version $java_major; the Spark tests need 17 or newer" >&2
    need+=(openjdk-17-jre-headless)
  fi
fi
[ ${#need[@]} -eq 0 ] && exit 0
echo "missing system packages: ${need[*]}" >&2
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${need[@]}" >&2
  exit 0
fi
if command -v apt-get >/dev/null; then
  echo "install them with:  sudo apt-get install -y ${need[*]}" >&2
else
  echo "install them with your system's package manager (${need[*]}), then run make again" >&2
fi
exit 1
