// Browser-side benchmark: runs the demo page's check N times in one page (Debian's Chromium,
// WebGPU on its software adapter, the fake camera) and prints the median of each stage.
//
//   node tests/browser/bench.mjs [--runs 5] [--model /models/default.onnx]
//
// Absolute times on a software GPU say little about a real one; compare stages and runs made
// side by side. The first check also pays the model load (download, SHA-256, WebGPU set-up).

import path from 'node:path';
import { parseArgs } from 'node:util';

import {
  clickWidgetButton,
  launch,
  openDemoPage,
  startSite,
  tempDir,
  waitForState,
  writeY4m,
} from './harness.mjs';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    model: { type: 'string', default: '../models/default.onnx' },
  },
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`error: --runs must be a positive integer, got ${values.runs}`);
  process.exit(2);
}

const site = await startSite();
const camera = path.join(await tempDir(), 'camera.y4m');
await writeY4m(camera, { width: 640, height: 480 });
const browser = await launch({ camera });
try {
  const { page } = await openDemoPage(browser, site.base);
  await page.evaluate((model) => {
    const el = document.getElementById('liveness');
    el.setAttribute('model', model);
    el.setAttribute('auto-capture', '0');
    window.__results = [];
    // The page's responsiveness: every main-thread task over 50 ms (the Long Tasks API).
    window.__longTasks = [];
    new PerformanceObserver((list) => {
      for (const t of list.getEntries()) window.__longTasks.push(t.duration);
    }).observe({ type: 'longtask', buffered: true });
    el.addEventListener('result', (e) => window.__results.push(e.detail.timings));
  }, values.model);
  for (let i = 0; i < runs; i++) {
    await clickWidgetButton(page);
    await page.waitForFunction((n) => window.__results.length === n, i + 1, { timeout: 300_000 });
    await waitForState(page, 'result');
  }
  const all = await page.evaluate(() => window.__results);
  const longTasks = await page.evaluate(() => window.__longTasks);
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  };
  const stages = ['captureMs', 'preprocessMs', 'inferenceMs'];
  const later = all.length > 1 ? all.slice(1) : all;
  const report = {
    runs,
    frames: '640x480 RGBA x 5',
    model: values.model,
    model_load_ms: Object.fromEntries(['modelFetchMs', 'modelVerifyMs', 'modelSessionMs'].map((k) => [k, all[0][k]])),
    first_check: Object.fromEntries(stages.map((k) => [k, all[0][k]])),
    median_later_checks: Object.fromEntries(stages.map((k) => [k, median(later.map((t) => t[k]))])),
    main_thread_long_tasks: { count: longTasks.length, longest_ms: Math.max(0, ...longTasks) },
  };
  console.log(JSON.stringify(report));
} finally {
  await browser.close();
  await site.close();
}
