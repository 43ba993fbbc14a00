// The page's main thread while the widget starts and checks (the benchmark's part 3): from the
// click on Start to the first preview frame, and over a whole check (challenge off, no session),
// the long tasks (Long Tasks API: > 50 ms) and the time to the preview. Each run is a fresh
// browser context, so the wasm module and the model load every time.
//
//   node tests/browser/main-thread.mjs [--runs 5]     (also part of bench.mjs)

import { parseArgs } from 'node:util';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { clickWidgetButton, launch, openDemoPage, startSite, tempDir, waitForGuidance, waitForState, writeY4m } from './harness.mjs';

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? null : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Medians over `runs` fresh pages of the demo at `base`. */
export async function measureMainThread(browser, base, runs) {
  const samples = [];
  for (let i = 0; i < runs; i++) {
    const { context, page } = await openDemoPage(browser, base, {
      prepare: (ctx) =>
        ctx.addInitScript(() => {
          window.__longTasks = [];
          new PerformanceObserver((list) => {
            for (const t of list.getEntries()) window.__longTasks.push({ start: t.startTime, ms: t.duration });
          }).observe({ type: 'longtask', buffered: true });
        }),
    });
    await page.evaluate(() => {
      const el = document.getElementById('liveness');
      for (const [k, v] of Object.entries({ challenge: 'none', 'share-frames': '' })) el.setAttribute(k, v);
      el.removeAttribute('session');
      el.addEventListener('state', (e) => {
        if (e.detail.state === 'preview') window.__previewAt ??= performance.now();
      });
      el.addEventListener('result', () => (window.__resultAt = performance.now()));
    });
    const clicked = await page.evaluate(() => performance.now());
    await clickWidgetButton(page);
    await waitForState(page, 'preview');
    await waitForGuidance(page, 'good');
    await clickWidgetButton(page);
    await waitForState(page, 'result');
    const seen = await page.evaluate(() => ({ tasks: window.__longTasks, preview: window.__previewAt, result: window.__resultAt }));
    const within = (from, to) => seen.tasks.filter((t) => t.start >= from && t.start < to).map((t) => t.ms);
    const start = within(clicked, seen.preview);
    const check = within(clicked, seen.result);
    samples.push({
      previewMs: seen.preview - clicked,
      startTasks: start.length,
      startLongestMs: Math.max(0, ...start),
      startBlockedMs: start.reduce((a, b) => a + b, 0),
      checkTasks: check.length,
      checkLongestMs: Math.max(0, ...check),
    });
    await context.close();
  }
  const round = (x) => Math.round(x * 10) / 10;
  return Object.fromEntries(Object.keys(samples[0]).map((k) => [`${k}_median`, round(median(samples.map((s) => s[k])))]));
}

// Run on its own.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
  const site = await startSite();
  const camera = path.join(await tempDir(), 'camera.y4m');
  await writeY4m(camera, { width: 640, height: 480 });
  const browser = await launch({ camera });
  try {
    console.log(JSON.stringify(await measureMainThread(browser, site.base, Number(values.runs)), null, 2));
  } finally {
    await browser.close();
    await site.close();
  }
}
