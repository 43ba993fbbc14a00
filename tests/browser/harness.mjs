// What the browser tests share: the site server, a fake camera made from the test's own frames,
// Debian's Chromium launched the way these machines need, and the native scorer.

import { execFile } from 'node:child_process';
import { mkdtemp, writeFile, mkdir, access } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { chromium } from 'playwright-core';

import { CSP, createSiteServer } from '../../web/serve.mjs';

export { CSP };
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Serves web/ and models/ on a free localhost port; resolves to { base, close }. */
export async function startSite() {
  await access(path.join(ROOT, 'web', 'pkg', 'liveness_wasm_bg.wasm')).catch(() => {
    throw new Error('web/pkg is missing: run scripts/build-web.sh first');
  });
  const server = createSiteServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/**
 * Writes a Y4M (4:2:0) file that Chromium's fake camera plays in a loop: `count` frames of a
 * moving, face-sized bright ellipse on a textured background, so frames differ from each other.
 */
export async function writeY4m(file, { width = 320, height = 240, count = 10 } = {}) {
  const header = Buffer.from(`YUV4MPEG2 W${width} H${height} F30:1 Ip A1:1 C420jpeg\n`);
  const parts = [header];
  const cw = width / 2;
  const ch = height / 2;
  for (let f = 0; f < count; f++) {
    const y = Buffer.alloc(width * height);
    const u = Buffer.alloc(cw * ch);
    const v = Buffer.alloc(cw * ch);
    const cx = width / 2 + 12 * Math.sin(f / 2);
    const cy = height / 2 + 6 * Math.cos(f / 3);
    for (let j = 0; j < height; j++) {
      for (let i = 0; i < width; i++) {
        const dx = (i - cx) / (width * 0.18);
        const dy = (j - cy) / (height * 0.32);
        const inside = dx * dx + dy * dy < 1;
        const texture = ((i * 7 + j * 13 + f * 5) % 31) - 15;
        y[j * width + i] = Math.max(16, Math.min(235, (inside ? 170 : 70) + texture));
      }
    }
    for (let j = 0; j < ch; j++) {
      for (let i = 0; i < cw; i++) {
        u[j * cw + i] = 110 + ((i + f) % 20);
        v[j * cw + i] = 150 - ((j + f) % 20);
      }
    }
    parts.push(Buffer.from('FRAME\n'), y, u, v);
  }
  await writeFile(file, Buffer.concat(parts));
}

/** A fresh temporary folder. */
export function tempDir(prefix = 'liveness-browser-') {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/**
 * Launches Debian's Chromium headless. `webgpu` adds the one flag that gives it a (software)
 * WebGPU adapter here; `camera` is a Y4M file for the fake camera. Camera permission is not
 * granted by a flag: contexts grant it (or not) themselves, so one browser tests both.
 */
export async function launch({ webgpu = true, camera } = {}) {
  // Playwright gives each launch a fresh profile folder of its own.
  const args = [
    '--no-sandbox',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-quic',
  ];
  if (webgpu) args.push('--enable-unsafe-webgpu');
  if (camera) args.push('--use-fake-device-for-media-stream', `--use-file-for-fake-video-capture=${camera}`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args });
}

/**
 * A page whose getUserMedia calls are recorded in `window.__streams`, and whose console errors
 * and CSP violations are collected in `problems`.
 */
export async function instrumentedPage(context) {
  await context.addInitScript(() => {
    window.__streams = [];
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`),
    );
    const original = MediaDevices.prototype.getUserMedia;
    MediaDevices.prototype.getUserMedia = async function (constraints) {
      const stream = await original.call(this, constraints);
      window.__streams.push(stream);
      return stream;
    };
  });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  return { page, problems };
}

/**
 * The demo page (`base`/demo/) in a new instrumented context of `browser`, with the camera
 * granted or not, once its widget is idle. Resolves to { context, page, problems }.
 */
export async function openDemoPage(browser, base, { grant = true } = {}) {
  const context = await browser.newContext();
  if (grant) await context.grantPermissions(['camera'], { origin: base });
  const { page, problems } = await instrumentedPage(context);
  await page.goto(`${base}/demo/`);
  await waitForState(page, 'idle');
  return { context, page, problems };
}

/** Waits until the widget `selector` reaches `state` (or fails after `timeout` ms). */
export function waitForState(page, state, { selector = 'liveness-check', timeout = 120_000 } = {}) {
  return page.waitForFunction(
    ([sel, st]) => document.querySelector(sel)?.state === st,
    [selector, state],
    { timeout },
  );
}

/** Clicks the widget's one button (inside its shadow root; Playwright pierces it). */
export function clickWidgetButton(page, selector = 'liveness-check') {
  return page.locator(`${selector} button.action`).click();
}

const run = promisify(execFile);

/**
 * Scores one sample of PNG frames with the native tract path (`liveness-trainer score-onnx`) on
 * `model`; resolves to its JSON line.
 */
export async function nativeScore(pngFrames, model) {
  const binary =
    process.env.LIVENESS_TRAINER ??
    path.join(process.env.CARGO_TARGET_DIR ?? path.join(ROOT, 'target'), 'debug', 'liveness-trainer');
  await access(binary).catch(() => {
    throw new Error(`${binary} is missing: build it first (cargo build -p liveness-trainer)`);
  });
  const data = await tempDir('liveness-native-');
  const sample = path.join(data, 'real', 'capture_0');
  await mkdir(sample, { recursive: true });
  await Promise.all(pngFrames.map((png, i) => writeFile(path.join(sample, `frame${i}.png`), png)));
  const { stdout } = await run(binary, ['score-onnx', '--model', model, '--data', data], {
    maxBuffer: 1 << 20,
  });
  const lines = stdout.trim().split('\n').filter(Boolean);
  if (lines.length !== 1) throw new Error(`score-onnx printed ${lines.length} lines:\n${stdout}`);
  return JSON.parse(lines[0]);
}
