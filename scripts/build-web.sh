#!/usr/bin/env bash
# Builds the browser side: crates/wasm for wasm32 (size-optimised profile) → wasm-bindgen's ES
# module in web/pkg, which web/liveness-check.js imports. Prints the wasm size raw and gzipped.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[build-web]\033[0m %s\n' "$*"; }

cargo build -p liveness-wasm --target wasm32-unknown-unknown --profile wasm-release
wasm=target/wasm32-unknown-unknown/wasm-release/liveness_wasm.wasm
rm -rf web/pkg.tmp
# The name section (function names for stack traces) is a fifth of the file: left out.
wasm-bindgen --target web --remove-name-section --out-dir web/pkg.tmp "$wasm"
# Replace the package in one step, so a server never sees half of it.
rm -rf web/pkg && mv web/pkg.tmp web/pkg
raw=$(stat -c %s web/pkg/liveness_wasm_bg.wasm)
gz=$(gzip -9c web/pkg/liveness_wasm_bg.wasm | wc -c)
log "web/pkg/liveness_wasm_bg.wasm: $raw bytes raw, $gz bytes gzip -9"
