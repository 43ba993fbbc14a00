#!/usr/bin/env bash
# The main job: builds the browser side and the verification server, and serves the demo signup
# page with models/default.onnx on http://127.0.0.1:8080/demo/ (PORT=… to change it). Open it in
# a current browser; the camera works on localhost without https. The server keeps its audit log,
# token keys and operator API key in its data folder (~/.local/share/liveness-server; --data-dir
# to change it), never in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh web
./scripts/build-web.sh
cargo build --release -p liveness-server
exec target/release/liveness-server serve --port "${PORT:-8080}" "$@"
