// The example apps of examples/web — vanilla, React and Vue, each built by Vite from the npm
// package's tarball (scripts/build-examples.sh) — served by liveness-server with its strict CSP
// and opened in Chromium with a fake camera: the check runs to a result, the wasm module and the
// worker come from the app's bundle, and nothing breaks the policy.

import assert from 'node:assert/strict';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  ROOT,
  checkToResult,
  instrumentedPage,
  launch,
  startSite,
  tempDir,
  writeY4m,
} from './harness.mjs';

let browser;

before(async () => {
  const camera = path.join(await tempDir(), 'face.y4m');
  await writeY4m(camera, { scene: 'face' });
  browser = await launch({ camera });
});

after(async () => {
  await browser?.close();
});

describe('the example apps, built with Vite from the npm package', () => {
  for (const app of ['vanilla', 'react', 'vue']) {
    test(`${app}: the check runs from the bundle under the strict CSP`, async () => {
      const dist = path.join(ROOT, 'examples', 'web', app, 'dist');
      await access(path.join(dist, 'index.html')).catch(() => {
        throw new Error(`${dist} is missing: run scripts/build-examples.sh first`);
      });
      const site = await startSite({ web: dist });
      const context = await browser.newContext();
      try {
        await context.grantPermissions(['camera'], { origin: site.base });
        const requests = [];
        const missing = [];
        context.on('request', (r) => requests.push(new URL(r.url()).pathname));
        context.on('response', (r) => {
          if (r.status() >= 400) missing.push(`${r.status()} ${new URL(r.url()).pathname}`);
        });
        const { page, problems } = await instrumentedPage(context);
        await page.goto(`${site.base}/index.html`);
        await page.waitForSelector('liveness-check', { state: 'attached', timeout: 30_000 }).catch((e) => {
          throw new Error(`the app rendered no <liveness-check>: ${JSON.stringify(problems)} (${e.message.split('\n')[0]})`);
        });
        await page.evaluate(() => {
          const el = document.querySelector('liveness-check');
          el.setAttribute('challenge', 'none');
          el.addEventListener('result', (e) => {
            window.__result = e.detail;
          });
          el.addEventListener('error', (e) => {
            window.__error = e.detail;
          });
        });
        const result = await checkToResult(page);
        assert.equal(typeof result.live, 'boolean');
        assert.ok(Number.isFinite(result.logit), JSON.stringify(result));
        // The app saw the result through its own framework's binding.
        assert.equal(await page.locator('#outcome').getAttribute('data-live'), String(result.live), `the app's #outcome after ${JSON.stringify(result.live)}`);
        // The wasm module (its CPU build with relaxed SIMD: this browser's adapter is a software
        // one, and Chromium has relaxed SIMD), its glue and the worker came from the bundle's
        // hashed assets.
        for (const asset of [/^\/assets\/liveness_wasm_cpu_relaxed_bg-[\w-]+\.wasm$/, /^\/assets\/liveness_wasm_cpu_relaxed-[\w-]+\.js$/, /^\/assets\/liveness-worker-[\w-]+\.js$/]) {
          assert.ok(requests.some((r) => asset.test(r)), `${asset} among ${requests.join(', ')}`);
        }
        assert.ok(requests.includes('/models/default.onnx'), `the host's model: ${requests.join(', ')}`);
        assert.deepEqual(await page.evaluate(() => window.__cspViolations), [], 'no CSP violation');
        assert.deepEqual(missing, [], 'every request answered');
        assert.deepEqual(problems, [], 'no page error');
      } finally {
        await context.close();
        await site.close();
      }
    });
  }
});
