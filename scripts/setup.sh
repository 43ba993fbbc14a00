#!/usr/bin/env bash
# Installs what the project needs on a Debian machine, idempotently (only what is missing).
#
#   scripts/setup.sh web   what the demo needs: the wasm32 target, wasm-bindgen-cli (the exact
#                          version in Cargo.lock), Node.js to serve the page;
#   scripts/setup.sh       everything (what the tests need): the above, plus libtorch 2.11 from
#                          PyPI's torch==2.11.0 wheel into .venv (linked as .libtorch for cargo),
#                          Mesa's software Vulkan driver (native wonnx), Debian's Chromium,
#                          PostgreSQL (the server's shared-database test), cargo-fuzz (the fuzz
#                          targets' short run), the browser tests' npm packages and the token
#                          examples' libraries (jose from npm, PyJWT into .venv), and the
#                          server tests' independent reference (onnxruntime, Pillow into .venv).
#
# Needs a Rust toolchain installed with rustup (cargo on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

part=${1:-all}
case "$part" in
  web | all) ;;
  *)
    echo "usage: $0 [web|all]   (got '$part')" >&2
    exit 2
    ;;
esac

TORCH_VERSION=2.11.0
PYJWT_VERSION=2.10.1
ONNXRUNTIME_VERSION=1.30.0
PILLOW_VERSION=12.3.0
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v cargo >/dev/null; then
  echo "error: cargo not found. Install Rust with rustup (https://rustup.rs), then rerun $0." >&2
  exit 1
fi

# Debian packages, only those missing (apt-get update is slow).
need=()
command -v cc >/dev/null || need+=(build-essential)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
dpkg -s ca-certificates >/dev/null 2>&1 || need+=(ca-certificates)
if [ "$part" = all ]; then
  for pkg in mesa-vulkan-drivers libvulkan1; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  [ -x /usr/bin/chromium ] || need+=(chromium)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  # Any python3 with a working venv module will do (Debian's, or e.g. pyenv's).
  python3 -m venv --help >/dev/null 2>&1 || need+=(python3 python3-venv python3-pip)
fi
if [ "${#need[@]}" -gt 0 ]; then
  log "apt-get install ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# The browser side: the wasm target and the wasm-bindgen CLI matching the library exactly.
if command -v rustup >/dev/null && ! rustup target list --installed | grep -q wasm32-unknown-unknown; then
  log "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi
bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$bindgen_version" ]; then
  log "cargo install wasm-bindgen-cli --version $bindgen_version (about 10 minutes on 2 cores, once)"
  cargo install --quiet wasm-bindgen-cli --version "$bindgen_version"
fi

if [ "$part" = all ]; then
  # libtorch through pip: the wheel carries libtorch's headers and shared libraries.
  if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
    free_gb=$(df -Pk . | awk 'NR == 2 { print int($4 / 1048576) }')
    if [ "$free_gb" -lt 25 ]; then
      log "warning: only ${free_gb} GB free here; torch (5 GB) and a test build (about 10 GB) need about 20 GB"
    fi
    log "installing torch==$TORCH_VERSION into .venv (about 2.7 GB download)"
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check --no-cache-dir "torch==$TORCH_VERSION"
  fi
  torch_dir=$(.venv/bin/python -c "import os, torch; print(os.path.dirname(torch.__file__))" 2>/dev/null)
  ln -sfn "$torch_dir" .libtorch # .cargo/config.toml points LIBTORCH here
  log "libtorch: $torch_dir"

  # The fuzz targets (crates/core/fuzz) run briefly in the tests.
  if ! cargo fuzz --version >/dev/null 2>&1; then
    log "cargo install cargo-fuzz (about 3 minutes, once)"
    cargo install --quiet --locked cargo-fuzz
  fi

  # The browser tests' npm packages: playwright-core (drives Debian's Chromium), typescript;
  # the token examples' libraries (jose, PyJWT), which the server's tests run; and the example
  # apps' Vite, React and Vue (examples/web).
  for pkg in tests/browser examples/node examples/web; do
    if ! (cd "$pkg" && npm ls --silent >/dev/null 2>&1); then
      log "npm ci ($pkg)"
      npm ci --prefix "$pkg" --no-audit --no-fund --loglevel=error
    fi
  done
  if ! .venv/bin/python -c "import jwt, cryptography" 2>/dev/null; then
    log "pip install pyjwt[crypto] into .venv (the Python token example)"
    .venv/bin/pip install --quiet --disable-pip-version-check --no-cache-dir "pyjwt[crypto]==$PYJWT_VERSION"
  fi
  # tests/oracle/liveness_oracle.py: the server tests' honest client, independent of the Rust code.
  if ! .venv/bin/python -c "import onnxruntime, PIL, numpy" 2>/dev/null; then
    log "pip install onnxruntime, pillow into .venv (the tests' independent reference)"
    .venv/bin/pip install --quiet --disable-pip-version-check --no-cache-dir \
      "onnxruntime==$ONNXRUNTIME_VERSION" "pillow==$PILLOW_VERSION"
  fi
fi
log "done"
