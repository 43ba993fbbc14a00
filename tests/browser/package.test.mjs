// The npm package as an app receives it (scripts/build-examples.sh packs it and installs it into
// examples/web): what the tarball holds, its package.json, and that importing it where there is
// no DOM (server-side rendering) defines nothing and throws nothing.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';

import { ROOT } from './harness.mjs';

const run = promisify(execFile);
const cargoToml = await readFile(path.join(ROOT, 'Cargo.toml'), 'utf8');
const VERSION = cargoToml.match(/\[workspace\.package\][^[]*?\nversion = "([^"]+)"/)[1];
const TARBALL = path.join(ROOT, 'dist', 'npm', `liveness-check-${VERSION}.tgz`);
const INSTALLED = path.join(ROOT, 'examples', 'web', 'node_modules', 'liveness-check');

test('the tarball holds the element, its types, stylesheet, worker, locales, wasm and licences, and no model', async () => {
  const { stdout } = await run('tar', ['tzf', TARBALL]).catch((e) => {
    throw new Error(`${TARBALL}: ${e.message} (run scripts/build-examples.sh first)`);
  });
  const files = stdout.trim().split('\n').map((f) => f.replace(/^package\//, '')).sort();
  assert.deepEqual(files, [
    'CHANGELOG.md',
    'LICENSE-APACHE',
    'LICENSE-MIT',
    'README.md',
    'capture.js',
    'liveness-check.css',
    'liveness-check.d.ts',
    'liveness-check.js',
    'liveness-worker.js',
    ...['ar', 'de', 'en', 'es', 'fr', 'he', 'ja', 'pt-BR', 'ru', 'zh-CN'].map((l) => `locales/${l}.json`),
    'package.json',
    'pkg/liveness_wasm.d.ts',
    'pkg/liveness_wasm.js',
    'pkg/liveness_wasm_bg.wasm',
    'pkg/liveness_wasm_cpu.d.ts',
    'pkg/liveness_wasm_cpu.js',
    'pkg/liveness_wasm_cpu_bg.wasm',
    'pkg/liveness_wasm_cpu_relaxed.d.ts',
    'pkg/liveness_wasm_cpu_relaxed.js',
    'pkg/liveness_wasm_cpu_relaxed_bg.wasm',
    'pkg/liveness_wasm_size.js',
    'session-client.js',
    'texts.js',
    'worker-client.js',
  ]);
});

test('package.json: semver from the workspace, exports with types, side effects, licence', async () => {
  const pkg = JSON.parse(await readFile(path.join(INSTALLED, 'package.json'), 'utf8'));
  assert.equal(pkg.name, 'liveness-check');
  assert.equal(pkg.version, VERSION);
  assert.match(pkg.version, /^\d+\.\d+\.\d+(-[\w.-]+)?$/);
  assert.equal(pkg.license, 'MIT OR Apache-2.0');
  assert.equal(pkg.type, 'module');
  assert.deepEqual(pkg.exports['.'], { types: './liveness-check.d.ts', default: './liveness-check.js' });
  assert.equal(pkg.types, './liveness-check.d.ts');
  assert.deepEqual(pkg.sideEffects, ['./liveness-check.js']);
  const changelog = await readFile(path.join(INSTALLED, 'CHANGELOG.md'), 'utf8');
  assert.match(changelog, new RegExp(`^## \\[${VERSION.replaceAll('.', '\\.')}\\]`, 'm'), 'a CHANGELOG entry for this version');
  const readme = await readFile(path.join(INSTALLED, 'README.md'), 'utf8');
  assert.match(readme, /model is \*\*not\*\* in the package/);
});

test('every asset URL of the package modules is a literal new URL(…, import.meta.url)', async () => {
  const modules = ['liveness-check.js', 'liveness-worker.js', 'texts.js', 'worker-client.js'];
  for (const file of modules) {
    // Comments mention the pattern; only code counts.
    const source = (await readFile(path.join(INSTALLED, file), 'utf8')).replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
    const urls = [...source.matchAll(/new URL\(([^,)]+),\s*([^)]+)\)/g)].map((m) => [m[1].trim(), m[2].trim()]);
    const assets = urls.filter(([, base]) => base === 'import.meta.url');
    assert.ok(assets.length > 0, `${file}: no asset URL found`);
    for (const [spec] of assets) assert.match(spec, /^'\.\/[\w./-]+'$/, `${file}: ${spec} is not a literal relative path`);
    // Nothing of the package is resolved against a computed base (which bundlers cannot follow);
    // the page's own URLs (the model, the session endpoint) are resolved against the page.
    const page = /^(location\.href|document\.baseURI)$/;
    assert.deepEqual(urls.filter(([, base]) => base !== 'import.meta.url' && !page.test(base)), [], file);
  }
});

test('importing the package without a DOM (server-side rendering) defines nothing and throws nothing', async () => {
  assert.equal(globalThis.customElements, undefined);
  assert.equal(globalThis.HTMLElement, undefined);
  const m = await import(pathToFileURL(path.join(INSTALLED, 'liveness-check.js')).href);
  for (const name of ['LivenessCheck', 'mount', 'define', 'STATES', 'DEFAULT_TEXTS', 'DEFAULT_TAG', 'FRAMES']) {
    assert.ok(name in m, `export ${name}`);
  }
  assert.equal(m.define(), null);
  assert.equal(m.define('acme-liveness'), null);
  assert.equal(globalThis.customElements, undefined);
  assert.equal(m.DEFAULT_TAG, 'liveness-check');
});
