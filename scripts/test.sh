#!/usr/bin/env bash
# Runs every check and test of the project (what CI runs): formatting, lints (host and wasm32),
# all Rust tests (on the CPU; tests make their own tiny data; the server's shared-database test
# against a throw-away PostgreSQL), a short run of each fuzz target, the wasm build, and the
# widget's tests in Debian's Chromium (WebGPU on its software adapter or none, fake cameras).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path crates/core/fuzz/Cargo.toml -- --check
step "cargo clippy (all targets and features, warnings are errors)"
cargo clippy --workspace --all-targets --all-features -- -D warnings
step "liveness-core, liveness-runtime and liveness-wasm for wasm32-unknown-unknown"
cargo clippy -p liveness-core -p liveness-runtime -p liveness-wasm --target wasm32-unknown-unknown -- -D warnings
# The CPU-only build of the module (scripts/build-web.sh builds both).
cargo clippy -p liveness-wasm --target wasm32-unknown-unknown --no-default-features -- -D warnings
step "cargo test (with a throw-away PostgreSQL for the server's shared-database test)"
./scripts/with-postgres.sh cargo test --workspace -- --include-ignored
step "fuzz targets, ${FUZZ_SECONDS:=20} s each (crates/core/fuzz; longer: see README)"
for target in manifest frames onnx; do
  # The whole log is kept (runs/fuzz-<target>.log) and printed on a failure, with the crash
  # input's place; seeds/<target> (committed) starts the run from valid inputs.
  mkdir -p runs "crates/core/fuzz/corpus/$target"
  log="$PWD/runs/fuzz-$target.log"
  seeds=()
  [ -d "crates/core/fuzz/seeds/$target" ] && seeds=("seeds/$target")
  if ! (cd crates/core/fuzz && cargo fuzz run --sanitizer none "$target" "corpus/$target" "${seeds[@]}" -- -max_total_time="$FUZZ_SECONDS") >"$log" 2>&1; then
    cat "$log"
    echo "error: fuzz target $target failed; its log is $log, the crashing input in crates/core/fuzz/artifacts/$target/" >&2
    exit 1
  fi
  tail -n 2 "$log"
done
step "wasm build (web/pkg)"
./scripts/build-web.sh
step "widget type declarations (tsc)"
(cd tests/browser && npx --no-install tsc -p tsconfig.json)
step "npm package and the example apps (scripts/build-examples.sh: pack, install, Vite builds)"
./scripts/build-examples.sh
step "browser tests (tests/browser, Chromium)"
# They compare the browser's score with the native one, from the liveness-trainer that
# `cargo test` just built, and run the demo and the example apps on the liveness-server it
# built; the package test reads the tarball. One file at a time (they share the machine's two
# cores); no test may hang: one that passes 10 minutes fails with its name.
(cd tests/browser && node --test --test-concurrency=1 --test-timeout=600000 \
  widget.test.mjs locales.test.mjs capture.test.mjs package.test.mjs examples.test.mjs)
