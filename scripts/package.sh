#!/usr/bin/env bash
# Builds the widget's npm package: dist/npm/liveness-check-X.Y.Z.tgz (X.Y.Z: the workspace's
# version in Cargo.toml), which `npm install ./liveness-check-X.Y.Z.tgz` accepts. It holds the
# element, its types, stylesheet, worker and locales, and the prebuilt wasm modules (both builds; built here first by
# scripts/build-web.sh when web/pkg is missing: the consumer needs no Rust). Not the model: the
# host serves it (web/npm/README.md says how).
#
# Usage: scripts/package.sh   (prints the tarball's path)
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[package]\033[0m %s\n' "$*" >&2; }

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' Cargo.toml)
if ! [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "package: the workspace version in Cargo.toml is not semver: '$version'" >&2
  exit 1
fi
[ -f web/pkg/liveness_wasm_size.js ] && [ -f web/pkg/liveness_wasm_cpu_relaxed_bg.wasm ] || scripts/build-web.sh >&2

stage=dist/npm/liveness-check
rm -rf "$stage"
mkdir -p "$stage/pkg"
cp web/liveness-check.js web/liveness-check.d.ts web/liveness-check.css web/liveness-worker.js \
  web/capture.js web/texts.js web/worker-client.js web/session-client.js "$stage/"
cp web/pkg/liveness_wasm{,_cpu,_cpu_relaxed}.js web/pkg/liveness_wasm{,_cpu,_cpu_relaxed}.d.ts \
  web/pkg/liveness_wasm{,_cpu,_cpu_relaxed}_bg.wasm \
  web/pkg/liveness_wasm_size.js "$stage/pkg/"
cp -r web/locales "$stage/locales"
cp web/npm/README.md CHANGELOG.md LICENSE-MIT LICENSE-APACHE "$stage/"
sed "s/@VERSION@/$version/" web/npm/package.json > "$stage/package.json"
tarball=$(cd dist/npm && npm pack ./liveness-check --silent)
log "dist/npm/$tarball: $(stat -c %s "dist/npm/$tarball") bytes packed"
echo "dist/npm/$tarball"
