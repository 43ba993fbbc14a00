// The widget, its wasm module and the demo page in Debian's Chromium: WebGPU on its software
// adapter, the camera faked from a Y4M file this test writes. Run by scripts/test.sh after the
// wasm build (scripts/build-web.sh) and the Rust tests (which build liveness-trainer).

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  ROOT,
  clickWidgetButton,
  launch,
  nativeScore,
  openDemoPage,
  startSite,
  tempDir,
  waitForState,
  writeY4m,
} from './harness.mjs';

const MODEL = path.join(ROOT, 'models', 'default.onnx');

let site;
let browser;
let camera;

before(async () => {
  site = await startSite();
  camera = path.join(await tempDir(), 'camera.y4m');
  await writeY4m(camera);
  browser = await launch({ camera });
});

after(async () => {
  await browser?.close();
  await site?.close();
});

/** The demo page in a new context of `from` (default: the shared browser), camera granted or not. */
const demoPage = ({ grant = true, from = browser } = {}) => openDemoPage(from, site.base, { grant });

const streamStates = (page) =>
  page.evaluate(() => window.__streams.map((s) => s.getTracks().map((t) => t.readyState)));

describe('the widget in Chromium', () => {
  test('five captured frames give the score the native runtime gives them', async () => {
    const { context, page, problems } = await demoPage();
    await page.evaluate(() => {
      const el = document.getElementById('liveness');
      el.setAttribute('share-frames', '');
      el.addEventListener('result', (e) => {
        window.__result = e.detail;
      });
      window.__states = [];
      el.addEventListener('state', (e) => window.__states.push(e.detail.state));
    });
    assert.equal(await page.locator('#submit').isDisabled(), true, 'submit starts locked');

    // Keyboard: the start button works with Enter.
    await page.locator('liveness-check button.action').focus();
    await page.keyboard.press('Enter');
    await waitForState(page, 'preview');
    // Starting again while the preview runs must not open a second stream.
    await page.evaluate(() => document.getElementById('liveness').start());
    assert.equal((await streamStates(page)).length, 1, 'one getUserMedia call');
    assert.deepEqual(await streamStates(page), [['live']]);

    // The button kept keyboard focus through 'starting': Enter again captures.
    await page.keyboard.press('Enter');
    await waitForState(page, 'result', { timeout: 240_000 });

    const result = await page.evaluate(async () => {
      const r = window.__result;
      const pngs = [];
      for (const frame of r.frames) {
        const canvas = document.createElement('canvas');
        canvas.width = frame.width;
        canvas.height = frame.height;
        canvas.getContext('2d').putImageData(frame, 0, 0);
        pngs.push(canvas.toDataURL('image/png'));
      }
      const { frames, ...rest } = r;
      return { ...rest, pngs, sizes: frames.map((f) => [f.width, f.height]), states: window.__states };
    });
    console.log(
      `browser: pSpoof ${result.pSpoof}, logit ${result.logit}, live ${result.live}, frames ${JSON.stringify(result.sizes)}`,
    );
    console.log(`timings (ms): ${JSON.stringify(result.timings)}`);

    assert.deepEqual(result.states, ['starting', 'preview', 'capturing', 'analysing', 'result']);
    assert.equal(result.pngs.length, 5);
    assert.equal(result.live, result.pSpoof < result.threshold);
    for (const key of ['captureMs', 'preprocessMs', 'inferenceMs', 'modelFetchMs', 'modelVerifyMs', 'modelSessionMs']) {
      assert.ok(result.timings[key] >= 0, `timings.${key}`);
    }
    // Five frames at the default 200 ms interval span at least four intervals.
    assert.ok(result.timings.captureMs >= 4 * 200 - 5, `capture took ${result.timings.captureMs} ms`);

    // The same five frames, losslessly as PNG, through the native tract path.
    const pngs = result.pngs.map((url) => Buffer.from(url.split(',')[1], 'base64'));
    const native = await nativeScore(pngs, MODEL);
    const diff = Math.abs(native.spoof - result.pSpoof);
    console.log(`native (tract): spoof ${native.spoof}; |browser - native| = ${diff.toExponential(2)}`);
    assert.ok(diff <= 1e-3, `browser pSpoof ${result.pSpoof} vs native ${native.spoof}`);

    // The camera light is off after the result, and the demo form follows the verdict.
    assert.deepEqual(await streamStates(page), [['ended']]);
    assert.equal(await page.locator('#submit').isDisabled(), !result.live);
    const violations = await page.evaluate(() => window.__cspViolations);
    assert.deepEqual(violations, [], 'no CSP violation');
    assert.deepEqual(problems, [], 'no page error');
    await context.close();
  });

  test('refused camera permission shows the denied state with its message', async () => {
    const { context, page } = await demoPage({ grant: false });
    await clickWidgetButton(page);
    await waitForState(page, 'error');
    const widget = page.locator('liveness-check');
    assert.equal(await widget.getAttribute('data-error'), 'camera-denied');
    const expected = await page.evaluate(() => document.getElementById('liveness').texts.errors['camera-denied']);
    assert.equal(await page.locator('liveness-check .status').textContent(), expected);
    assert.equal(await page.locator('liveness-check [role=status]').getAttribute('aria-live'), 'polite');
    assert.equal(await page.locator('liveness-check button.action').textContent(), 'Try again');
    assert.deepEqual(await streamStates(page), [], 'no stream was opened');

    // Texts are replaceable (here for German), and retry works once the user allows the camera.
    await page.evaluate(() => {
      document.getElementById('liveness').texts = { retry: 'Erneut versuchen', preview: 'Gesicht ins Oval.' };
    });
    assert.equal(await page.locator('liveness-check button.action').textContent(), 'Erneut versuchen');
    await context.grantPermissions(['camera'], { origin: site.base });
    await clickWidgetButton(page);
    await waitForState(page, 'preview');
    assert.equal(await page.locator('liveness-check .status').textContent(), 'Gesicht ins Oval.');
    assert.deepEqual(await streamStates(page), [['live']]);
    await context.close();
  });

  test('a model whose bytes do not match its manifest is refused', async () => {
    const { context, page } = await demoPage();
    const bytes = await readFile(MODEL);
    bytes[bytes.length >> 1] ^= 0x01; // one flipped bit in the weights
    await page.route('**/models/default.onnx', (route) =>
      route.fulfill({ body: bytes, contentType: 'application/octet-stream' }),
    );
    const failure = page.evaluate(
      () =>
        new Promise((resolve) =>
          document.getElementById('liveness').addEventListener('error', (e) => resolve(e.detail), { once: true }),
        ),
    );
    await clickWidgetButton(page);
    // Reported while the user is still in the preview, without a capture.
    const detail = await failure;
    console.log(`hash error: ${detail.message}`);
    assert.equal(detail.code, 'model-hash');
    assert.match(detail.message, /default\.onnx/);
    assert.equal(await page.locator('liveness-check').getAttribute('data-error'), 'model-hash');
    // The camera, if it had opened by then, is released (a late one is stopped on arrival).
    await page.waitForFunction(() => window.__streams.every((s) => s.getTracks().every((t) => t.readyState === 'ended')));
    assert.ok((await streamStates(page)).length <= 1);
    await context.close();
  });

  test('the wasm API rejects bad input with typed errors that name the thing at fault', async () => {
    const { context, page } = await demoPage();
    const errors = await page.evaluate(async () => {
      const rt = await import('/pkg/liveness_wasm.js');
      await rt.default();
      const caught = async (promise) => {
        try {
          await promise;
          return null;
        } catch (e) {
          return { name: e.name, code: e.code, message: e.message };
        }
      };
      const missing = await caught(rt.LivenessModel.load('/models/missing.onnx'));
      const model = await rt.LivenessModel.load('/models/default.onnx');
      const frame = (w, h) => new ImageData(w, h);
      const four = await caught(model.check([1, 2, 3, 4].map(() => frame(64, 48))));
      const mixed = await caught(model.check([frame(64, 48), frame(64, 48), frame(64, 48), frame(32, 48), frame(64, 48)]));
      const notFrames = await caught(model.check([1, 2, 3, 4, 5]));
      return { missing, four, mixed, notFrames };
    });
    assert.equal(errors.missing.name, 'LivenessError');
    assert.equal(errors.missing.code, 'model-fetch');
    assert.match(errors.missing.message, /missing\.(json|onnx).*404/);
    assert.equal(errors.four.code, 'frames');
    assert.match(errors.four.message, /5 frames, got 4/);
    assert.equal(errors.mixed.code, 'frames');
    assert.match(errors.mixed.message, /frame 3 is 32x48/);
    assert.equal(errors.notFrames.code, 'frames');
    assert.match(errors.notFrames.message, /frame 0/);
    await context.close();
  });

  test('removing the widget during the preview turns the camera off', async () => {
    const { context, page } = await demoPage();
    await clickWidgetButton(page);
    await waitForState(page, 'preview');
    await page.evaluate(() => document.getElementById('liveness').remove());
    assert.deepEqual(await streamStates(page), [['ended']]);
    await context.close();
  });
});

describe('a browser without a camera', () => {
  test('shows the no-camera state', async () => {
    const cameraless = await launch();
    try {
      const { page } = await demoPage({ from: cameraless });
      await clickWidgetButton(page);
      await waitForState(page, 'error');
      assert.equal(await page.locator('liveness-check').getAttribute('data-error'), 'camera-missing');
      assert.match(await page.locator('liveness-check .status').textContent(), /No camera was found/);
    } finally {
      await cameraless.close();
    }
  });
});

describe('a browser without WebGPU', () => {
  test('shows the unavailable state without asking for the camera', async () => {
    const plain = await launch({ webgpu: false, camera });
    try {
      const { page } = await demoPage({ from: plain });
      await clickWidgetButton(page);
      await waitForState(page, 'error');
      assert.equal(await page.locator('liveness-check').getAttribute('data-error'), 'webgpu-unavailable');
      assert.match(await page.locator('liveness-check .status').textContent(), /WebGPU is unavailable/);
      assert.deepEqual(await streamStates(page), []);
    } finally {
      await plain.close();
    }
  });
});
