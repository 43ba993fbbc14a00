#!/usr/bin/env bash
# Runs every check and test of the project (what CI runs): formatting, lints (host and wasm32),
# all Rust tests (on the CPU; tests make their own tiny data), the wasm build, and the widget's
# tests in Debian's Chromium (WebGPU on its software adapter, a fake camera).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings
step "liveness-core and liveness-wasm for wasm32-unknown-unknown"
cargo clippy -p liveness-core -p liveness-wasm --target wasm32-unknown-unknown -- -D warnings
step "cargo test"
cargo test --workspace
step "wasm build (web/pkg)"
./scripts/build-web.sh
step "widget type declarations (tsc)"
(cd tests/browser && npx --no-install tsc -p tsconfig.json)
step "browser tests (tests/browser, Chromium)"
# They compare the browser's score with the native one, from the liveness-trainer that
# `cargo test` just built.
(cd tests/browser && node --test widget.test.mjs)
