#!/usr/bin/env bash
# Installs what the project needs on a Debian machine, idempotently:
#   - Debian packages (compiler, Python venv, Mesa's software Vulkan driver for native wonnx);
#   - libtorch 2.11 from PyPI's torch==2.11.0 wheel into .venv (linked as .libtorch for cargo);
#   - the wasm32 target for the shared core.
# Needs a Rust toolchain installed with rustup (cargo on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.11.0
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages, only those missing (apt-get update is slow).
need=()
for pkg in mesa-vulkan-drivers libvulkan1 ca-certificates; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
command -v cc >/dev/null || need+=(build-essential)
command -v pkg-config >/dev/null || need+=(pkg-config)
# Any python3 with a working venv module will do (Debian's, or e.g. pyenv's).
python3 -m venv --help >/dev/null 2>&1 || need+=(python3 python3-venv python3-pip)
if [ "${#need[@]}" -gt 0 ]; then
  log "apt-get install ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if ! command -v cargo >/dev/null; then
  echo "error: cargo not found. Install Rust with rustup (https://rustup.rs), then rerun $0." >&2
  exit 1
fi

# libtorch through pip: the wheel carries libtorch's headers and shared libraries.
if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  log "installing torch==$TORCH_VERSION into .venv (about 2.7 GB download)"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check --no-cache-dir "torch==$TORCH_VERSION"
fi
torch_dir=$(.venv/bin/python -c "import os, torch; print(os.path.dirname(torch.__file__))" 2>/dev/null)
ln -sfn "$torch_dir" .libtorch   # .cargo/config.toml points LIBTORCH here
log "libtorch: $torch_dir"

if command -v rustup >/dev/null && ! rustup target list --installed | grep -q wasm32-unknown-unknown; then
  log "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi
log "done"
