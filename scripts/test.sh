#!/usr/bin/env bash
# Runs every check and test of the project (what CI runs): formatting, lints, the shared core
# built for wasm32, and all Rust tests (on the CPU; tests make their own tiny data).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings
step "liveness-core for wasm32-unknown-unknown"
cargo clippy -p liveness-core --target wasm32-unknown-unknown -- -D warnings
step "cargo test"
cargo test --workspace
