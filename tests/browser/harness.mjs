// What the browser tests share: the site server, a fake camera made from the test's own frames,
// Debian's Chromium launched the way these machines need, and the native scorer.

import { execFile, spawn } from 'node:child_process';
import { mkdtemp, writeFile, mkdir, access, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** A binary of this workspace, as `cargo test` / `cargo build` left it (debug). */
async function binary(name, env) {
  const file =
    process.env[env] ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(ROOT, 'target'), 'debug', name);
  await access(file).catch(() => {
    throw new Error(`${file} is missing: build it first (cargo build -p ${name})`);
  });
  return file;
}

/**
 * Starts the demo's server (`liveness-server serve`: web/, models/, the session API, the demo
 * signup) on a free localhost port with a fresh data folder (audit log, keys); resolves to
 * { base, close }.
 * `model` (with its manifest next to it) replaces the default model; its folder is then served
 * as /models/. `web` replaces the site folder (an example app's build).
 */
export async function startSite({ model, challenge, web } = {}) {
  // The size file is the build script's last word: without it web/pkg is missing or older than
  // the worker that reads it.
  await Promise.all(['liveness_wasm_size.js', 'liveness_wasm_cpu.js', 'liveness_wasm_cpu_relaxed.js'].map((f) => access(path.join(ROOT, 'web', 'pkg', f)))).catch(() => {
    throw new Error('web/pkg is missing or stale: run scripts/build-web.sh first');
  });
  const dir = await tempDir('liveness-server-');
  const server = spawn(
    await binary('liveness-server', 'LIVENESS_SERVER'),
    [
      'serve',
      '--port',
      '0',
      '--data-dir',
      dir,
      ...(model ? ['--model', model, '--models', path.dirname(model)] : []),
      ...(challenge ? ['--fixed-challenge', challenge] : []),
      ...(web ? ['--web', web] : []),
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  // A server that does not start or stop in time is killed, and the wait fails with why.
  const killed = (error) => {
    server.kill('SIGKILL');
    throw error;
  };
  const base = await within(
    60_000,
    'liveness-server to print its address',
    new Promise((resolve, reject) => {
      let out = '';
      server.stdout.on('data', (chunk) => {
        out += chunk;
        const m = out.match(/http:\/\/127\.0\.0\.1:(\d+)\//);
        if (m) resolve(`http://127.0.0.1:${m[1]}`);
      });
      server.once('exit', (code) => reject(new Error(`liveness-server exited (${code}) before serving:\n${out}`)));
    }),
  ).catch(killed);
  return {
    base,
    // Ctrl+C, then a kill if it has not exited within 30 s (the server's own drain limit).
    close: () =>
      within(
        35_000,
        'liveness-server to exit after SIGINT',
        new Promise((resolve) => {
          if (server.exitCode !== null || server.signalCode !== null) return resolve();
          server.once('exit', resolve);
          server.kill('SIGINT');
        }),
      ).catch(killed),
  };
}

/** `promise`, or a rejection naming `what` once `ms` have passed without it settling. */
export function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up waiting for ${what} after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * RGB pixels (`width × height × 3`) of a wall with cartoon faces that the face detector finds
 * (the same drawing as liveness_core::testing::draw_faces): `faces` is a list of `{ cx, cy,
 * width }` in pixels.
 */
export function drawFaces(width, height, faces, wall = [70, 90, 110]) {
  const img = new Float32Array(width * height * 3);
  for (let i = 0; i < width * height; i++) img.set(wall, i * 3);
  const ellipse = (x0, y0, x1, y1, colour) => {
    const [cx, cy, rx, ry] = [(x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2];
    for (let y = Math.max(0, Math.floor(y0)); y < Math.min(height, Math.ceil(y1)); y++) {
      for (let x = Math.max(0, Math.floor(x0)); x < Math.min(width, Math.ceil(x1)); x++) {
        const dx = (x + 0.5 - cx) / rx;
        const dy = (y + 0.5 - cy) / ry;
        if (dx * dx + dy * dy <= 1) img.set(colour, (y * width + x) * 3);
      }
    }
  };
  for (const { cx, cy, width: fw } of faces) {
    const fh = fw * 1.3;
    ellipse(cx - fw / 2 - 8, cy - fh / 2 - 14, cx + fw / 2 + 8, cy + fh / 2 - 20, [60, 40, 30]);
    ellipse(cx - fw / 2, cy - fh / 2, cx + fw / 2, cy + fh / 2, [220, 180, 150]);
    const [ey, ex] = [cy - fh * 0.1, fw * 0.2];
    for (const side of [-1, 1]) {
      const x = cx + side * ex;
      ellipse(x - fw * 0.09, ey - fw * 0.045, x + fw * 0.09, ey + fw * 0.045, [250, 250, 250]);
      ellipse(x - fw * 0.04, ey - fw * 0.04, x + fw * 0.04, ey + fw * 0.04, [40, 30, 30]);
      ellipse(x - fw * 0.1, ey - fw * 0.13, x + fw * 0.1, ey - fw * 0.09, [60, 40, 30]);
    }
    ellipse(cx - fw * 0.06, ey + fw * 0.05, cx + fw * 0.06, cy + fh * 0.12, [200, 150, 125]);
    ellipse(cx - fw * 0.18, cy + fh * 0.2, cx + fw * 0.18, cy + fh * 0.28, [170, 70, 70]);
  }
  // Two passes of a 3×3 box blur, as a camera softens edges.
  for (let pass = 0; pass < 2; pass++) {
    const src = img.slice();
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let r = 0;
        let g = 0;
        let b = 0;
        let n = 0;
        for (let yy = Math.max(0, y - 1); yy < Math.min(height, y + 2); yy++) {
          for (let xx = Math.max(0, x - 1); xx < Math.min(width, x + 2); xx++) {
            const at = (yy * width + xx) * 3;
            r += src[at];
            g += src[at + 1];
            b += src[at + 2];
            n++;
          }
        }
        img.set([r / n, g / n, b / n], (y * width + x) * 3);
      }
    }
  }
  return img;
}

/** The faces a fake camera shows: one person, nobody, or two people. */
export const SCENES = {
  face: (w, h, f) => [{ cx: w / 2 + 2 * Math.sin(f / 2), cy: h / 2 + h * 0.05, width: Math.min(w, h) * 0.42 }],
  none: () => [],
  two: (w, h) => [
    { cx: w * 0.3, cy: h / 2 + h * 0.05, width: Math.min(w, h) * 0.3 },
    { cx: w * 0.72, cy: h / 2 + h * 0.05, width: Math.min(w, h) * 0.3 },
  ],
};

/**
 * Writes a Y4M (4:2:0) file that Chromium's fake camera plays in a loop: `count` frames of the
 * `scene` (see SCENES), the face moving slightly from frame to frame.
 */
export async function writeY4m(file, { width = 320, height = 240, count = 10, scene = 'face' } = {}) {
  const header = Buffer.from(`YUV4MPEG2 W${width} H${height} F30:1 Ip A1:1 C420jpeg\n`);
  const parts = [header];
  const cw = width / 2;
  const ch = height / 2;
  for (let f = 0; f < count; f++) {
    const rgb = drawFaces(width, height, SCENES[scene](width, height, f));
    const y = Buffer.alloc(width * height);
    const u = Buffer.alloc(cw * ch);
    const v = Buffer.alloc(cw * ch);
    const clamp = (x) => Math.max(0, Math.min(255, Math.round(x)));
    for (let i = 0; i < width * height; i++) {
      const [r, g, b] = [rgb[i * 3], rgb[i * 3 + 1], rgb[i * 3 + 2]];
      y[i] = clamp(0.299 * r + 0.587 * g + 0.114 * b);
    }
    for (let j = 0; j < ch; j++) {
      for (let i = 0; i < cw; i++) {
        const at = ((2 * j) * width + 2 * i) * 3;
        const [r, g, b] = [rgb[at], rgb[at + 1], rgb[at + 2]];
        u[j * cw + i] = clamp(128 - 0.168736 * r - 0.331264 * g + 0.5 * b);
        v[j * cw + i] = clamp(128 + 0.5 * r - 0.418688 * g - 0.081312 * b);
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
export async function launch({ webgpu = true, camera, devices } = {}) {
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
  // Several fake cameras (Chromium's test pattern; a file feeds one camera only).
  else if (devices) args.push(`--use-fake-device-for-media-stream=device-count=${devices}`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args });
}

/**
 * A page whose getUserMedia calls are recorded in `window.__streams`, and whose console errors
 * and CSP violations are collected in `problems`.
 */
export async function instrumentedPage(context) {
  await context.addInitScript(() => {
    window.__streams = [];
    window.__workers = [];
    const NativeWorker = window.Worker;
    window.Worker = class extends NativeWorker {
      constructor(url, options) {
        super(url, options);
        window.__workers.push(String(url));
      }
    };
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
export async function openDemoPage(browser, base, { grant = true, clip, prepare } = {}) {
  const context = await browser.newContext();
  if (grant) await context.grantPermissions(['camera'], { origin: base });
  if (clip) await clipCamera(context, clip);
  // Routes and scripts a test sets up before the page loads anything.
  if (prepare) await prepare(context);
  const { page, problems } = await instrumentedPage(context);
  await page.goto(`${base}/demo/`);
  await waitForState(page, 'idle');
  return { context, page, problems };
}

/** What the widget `selector` shows: its state, status text, data attributes and last error. */
function widgetSeen(page, selector) {
  return page
    .evaluate((sel) => {
      const el = document.querySelector(sel);
      return el
        ? {
            state: el.state,
            status: el.shadowRoot?.querySelector('.status')?.textContent,
            data: { ...el.dataset },
            error: window.__error,
          }
        : 'no widget';
    }, selector)
    .catch((e) => `unreadable: ${e.message}`);
}

/** States after which the widget waits for the user: nothing else comes by itself. */
const ENDED = ['error', 'refused', 'result'];

/**
 * Waits until the widget shows `want` — `{ state }` or `{ guidance }` — or fails at once when it
 * ends in another state; either failure says what the widget showed (state, status text,
 * guidance, error), not a bare timeout.
 */
async function waitForWidget(page, want, { selector, timeout }) {
  const what = want.state !== undefined ? `state '${want.state}'` : `guidance '${want.guidance}'`;
  let failure = null;
  try {
    const reached = await page.waitForFunction(
      ([sel, ends, w]) => {
        const el = document.querySelector(sel);
        const ok = w.state !== undefined ? el?.state === w.state : el?.dataset.guidance === w.guidance;
        if (ok) return 'reached';
        return ends.includes(el?.state) ? 'ended' : false;
      },
      [selector, ENDED, want],
      { timeout },
    );
    if ((await reached.jsonValue()) !== 'reached') failure = new Error('it ended first');
  } catch (error) {
    failure = error;
  }
  if (failure) {
    const seen = await widgetSeen(page, selector);
    throw new Error(`the widget did not reach ${what} (waited up to ${timeout} ms); it showed ${JSON.stringify(seen)} (${failure.message.split('\n')[0]})`);
  }
}

/** Returns once the widget's face guidance is `want` (fails at once if the widget ends first). */
export function waitForGuidance(page, want, { selector = 'liveness-check', timeout = 60_000 } = {}) {
  return waitForWidget(page, { guidance: want }, { selector, timeout });
}

/**
 * Waits until the widget `selector` reaches `state`; a widget that ends in another state fails
 * the wait at once, and every failure says what the widget showed.
 */
export function waitForState(page, state, { selector = 'liveness-check', timeout = 120_000 } = {}) {
  return waitForWidget(page, { state }, { selector, timeout });
}

/**
 * From idle: start, wait for a well-placed face, capture, and resolve to the `result` event's
 * detail once the widget shows it (the page must record it in `window.__result`).
 */
export async function checkToResult(page, { timeout = 240_000 } = {}) {
  await clickWidgetButton(page);
  await waitForGuidance(page, 'good');
  await clickWidgetButton(page);
  await waitForState(page, 'result', { timeout });
  return page.evaluate(() => window.__result);
}

/** Clicks the widget's one button (inside its shadow root; Playwright pierces it). */
export function clickWidgetButton(page, selector = 'liveness-check') {
  return page.locator(`${selector} button.action`).click();
}

const run = promisify(execFile);

/**
 * A challenge clip from `liveness-trainer synth-challenge` (320 × 240 PNGs): a drawn head
 * performing `steps`, or with `picture` a print of it turned to imitate them. Resolves to
 * { dir, count, tail }.
 */
export async function challengeClip(steps, { picture = false, tail = 8 } = {}) {
  const trainer = await binary('liveness-trainer', 'LIVENESS_TRAINER');
  const dir = path.join(await tempDir('liveness-clip-'), 'clip');
  await run(trainer, ['synth-challenge', '--out', dir, '--steps', steps, '--tail', String(tail), ...(picture ? ['--picture'] : [])]);
  const count = (await readdir(dir)).filter((f) => f.endsWith('.png')).length;
  return { dir, count, tail };
}

/**
 * Makes `context`'s camera a fake that plays `clip` (challengeClip): its first frame until the
 * widget enters the `challenge` state, then one frame every `interval` ms, then its last `tail`
 * frames in a loop. Each repaint adds fresh sensor noise, as a camera does (the server refuses
 * repeated frames). The frames are served to the page from /__clip/N.png.
 */
export async function clipCamera(context, { dir, count, tail }, interval = 300) {
  await context.route('**/__clip/*.png', async (route) => {
    const n = Number(new URL(route.request().url()).pathname.split('/').pop().replace('.png', ''));
    await route.fulfill({ path: path.join(dir, `${String(n).padStart(3, '0')}.png`), contentType: 'image/png' });
  });
  await context.addInitScript(
    ([count, tail, interval]) => {
      // Loaded on the first call (the init script also runs in about:blank, which cannot fetch).
      let bitmaps = null;
      MediaDevices.prototype.getUserMedia = async function () {
        bitmaps ??= Promise.all(
          Array.from({ length: count }, (_, i) =>
            fetch(`/__clip/${i}.png`).then((r) => r.blob()).then((b) => createImageBitmap(b)),
          ),
        );
        const frames = await bitmaps;
        const canvas = document.createElement('canvas');
        [canvas.width, canvas.height] = [frames[0].width, frames[0].height];
        const ctx = canvas.getContext('2d', { willReadFrequently: true });
        const stream = canvas.captureStream(30);
        let startedAt = null;
        const paint = () => {
          if (stream.getVideoTracks().every((t) => t.readyState === 'ended')) return;
          if (startedAt === null && document.querySelector('liveness-check')?.state === 'challenge') {
            startedAt = performance.now();
          }
          let i = startedAt === null ? 0 : Math.floor((performance.now() - startedAt) / interval);
          if (i >= count) i = count - tail + ((i - count) % tail);
          window.__clipFrame = i;
          ctx.drawImage(frames[i], 0, 0);
          const img = ctx.getImageData(0, 0, canvas.width, canvas.height);
          const d = img.data;
          for (let k = 0; k < d.length; k += 4) {
            const n = Math.floor(Math.random() * 7) - 3;
            d[k] += n;
            d[k + 1] += n;
            d[k + 2] += n;
          }
          ctx.putImageData(img, 0, 0);
          setTimeout(paint, 33);
        };
        paint();
        return stream;
      };
    },
    [count, tail, interval],
  );
}

/**
 * A model trained by the trainer on generated data (drawn 3-D heads; attacks look printed), in
 * which the challenge clip's drawn head is a live person by construction: for testing the session flow
 * end to end with a model that says "live" for it. Resolves to the path of `test.onnx`.
 */
export async function trainTestModel() {
  const trainer = await binary('liveness-trainer', 'LIVENESS_TRAINER');
  const dir = await tempDir('liveness-test-model-');
  const data = path.join(dir, 'data');
  const opts = { maxBuffer: 1 << 24, env: { ...process.env, OMP_NUM_THREADS: '2' } };
  // 3-D heads, as the challenge clips show (challengeClip).
  await run(trainer, ['synth', '--out', data, '--subjects', '4', '--per-class', '3', '--heads', '--width', '320', '--height', '240'], opts);
  const out = path.join(dir, 'run');
  await run(trainer, ['train', '--device', 'cpu', '--data', data, '--out', out, '--arch', 'cnn4', '--input-size', '32',
    '--epochs', '6', '--batch-size', '8', '--optimizer', 'adamw', '--lr', '3e-3', '--seed', '1'], opts);
  const model = path.join(dir, 'models', 'test.onnx');
  await mkdir(path.dirname(model), { recursive: true });
  await run(trainer, ['export', '--checkpoint', path.join(out, 'last.safetensors'), '--out', model,
    '--data-name', 'generated test data', '--data-terms', 'test only', '--threshold', '0.5'], opts);
  return model;
}

/**
 * Scores one sample of PNG frames with the native tract path (`liveness-trainer score-onnx`) on
 * `model`; resolves to its JSON line.
 */
export async function nativeScore(pngFrames, model) {
  return native(['score-onnx', '--model', model], pngFrames);
}

/** The native face detector (`liveness-trainer faces`) on one sample of PNG frames: its JSON line. */
export async function nativeFaces(pngFrames) {
  return native(['faces'], pngFrames);
}

/** Runs a `liveness-trainer` subcommand on a one-sample data folder of `pngFrames`. */
async function native(args, pngFrames) {
  const trainer = await binary('liveness-trainer', 'LIVENESS_TRAINER');
  const data = await tempDir('liveness-native-');
  const sample = path.join(data, 'real', 'capture_0');
  await mkdir(sample, { recursive: true });
  await Promise.all(pngFrames.map((png, i) => writeFile(path.join(sample, `frame${i}.png`), png)));
  const { stdout } = await run(trainer, [...args, '--data', data], { maxBuffer: 1 << 20 });
  const lines = stdout.trim().split('\n').filter(Boolean);
  if (lines.length !== 1) throw new Error(`${args[0]} printed ${lines.length} lines:\n${stdout}`);
  return JSON.parse(lines[0]);
}
