#!/usr/bin/env bash
# Packs the widget (scripts/package.sh), installs the tarball into examples/web as an app would
# (`npm install ./liveness-check-X.Y.Z.tgz`; the examples' other packages come from their lock),
# type-checks the React example and builds the three apps (vanilla, React, Vue) with Vite into
# examples/web/<app>/dist, printing each bundle's size. The browser tests then open each build.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[examples]\033[0m %s\n' "$*"; }

tarball=$(scripts/package.sh)
cd examples/web
# The tarball is not in the lock (its bytes change with every wasm build): installed unsaved.
[ -d node_modules/vite ] || npm ci --no-audit --no-fund --loglevel=error
npm install --no-save --no-audit --no-fund --loglevel=error "../../$tarball"
npx --no-install tsc -p react
for app in vanilla react vue; do
  npx --no-install vite build "$app" --logLevel warn
  js=$(find "$app/dist" -name '*.js' -printf '%s\n' | awk '{s += $1} END {print s}')
  all=$(du -sb "$app/dist" | cut -f1)
  log "$app: $all bytes in dist (JavaScript $js bytes; the rest: the wasm module, stylesheet and locale tables)"
done
