#!/usr/bin/env bash
# The main job: builds the browser side and serves the demo signup page with models/default.onnx
# on http://127.0.0.1:8080/demo/ (PORT=… to change it). Open it in a browser with WebGPU
# (current Chrome or Edge); the camera works on localhost without https.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh web
./scripts/build-web.sh
exec node web/serve.mjs --port "${PORT:-8080}" "$@"
