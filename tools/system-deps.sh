#!/usr/bin/env bash
# The system tools a make target needs, installed when missing (Debian/Ubuntu, as root), or the
# exact command to run printed and exit 1. Called by the Makefile:
#     tools/system-deps.sh build    gcc, make, cmake, python3 with venv
#     tools/system-deps.sh test     the same, plus mosquitto (the MQTT tests start their own broker)
#                                   and cargo (the Rust plugin tests), unless rustup's is in ~/.cargo/bin
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
for tool in gcc make cmake python3; do
  have "$tool" || need+=("$tool")
done
if have python3 && ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  need+=(python3-venv)
fi
if [ "${1:-build}" = test ] && ! have mosquitto; then
  need+=(mosquitto)
fi
if [ "${1:-build}" = test ] && ! have cargo && [ ! -x "${HOME:-/nonexistent}/.cargo/bin/cargo" ]; then
  need+=(cargo)  # Debian's cargo brings rustc
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
