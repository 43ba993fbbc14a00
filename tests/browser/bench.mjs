// Browser benchmark, one run, side by side in one Chromium (headless; WebGPU on its software
// adapter, SwiftShader; a fake camera showing a drawn face):
//
// 1. Engines on the same model file and the same five 640×480 frames, in one page, alternating
//    rounds: the widget's CPU engine (tract in wasm: the build with relaxed SIMD, as the worker
//    loads it here, and the plain-SIMD build beside it), its WebGPU engine (wonnx), and
//    onnxruntime-web's wasm backend with one thread (the reference; a dev dependency of this
//    benchmark only). Model load (fetch, verify, session) once per engine, then the medians of
//    detection, preprocessing and inference, and the ratio CPU engine / onnxruntime-web.
// 2. The widget as a page uses it (the demo page, auto engine, worker): per-stage timings, the
//    guidance loop's cost while the preview waits (looks per second, the share of wall time the
//    worker spends detecting) and the longest main-thread task during checks (Long Tasks API).
// 3. The main thread from the click on Start to the preview and over a whole check, on fresh
//    pages (main-thread.mjs): long tasks and the time to the preview.
//
//   node tests/browser/bench.mjs [--runs 5] [--model /models/default.onnx]
//
// Absolute times on these shared machines are noise: compare the figures of one run.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { measureMainThread } from './main-thread.mjs';
import {
  ROOT,
  clickWidgetButton,
  launch,
  openDemoPage,
  startSite,
  tempDir,
  waitForGuidance,
  waitForState,
  writeY4m,
} from './harness.mjs';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    model: { type: 'string', default: '/models/default.onnx' },
  },
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`error: --runs must be a positive integer, got ${values.runs}`);
  process.exit(2);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round = (x) => Math.round(x * 10) / 10;

const ORT = path.join(ROOT, 'tests', 'browser', 'node_modules', 'onnxruntime-web', 'dist');

const site = await startSite();
const camera = path.join(await tempDir(), 'camera.y4m');
await writeY4m(camera, { width: 640, height: 480 });
const browser = await launch({ camera });
try {
  // --- 1. Engines side by side on the same frames and model file.
  const { context, page } = await openDemoPage(browser, site.base);
  // onnxruntime-web's files, served to this page only.
  await page.route('**/ort/**', async (route) => {
    const file = path.join(ORT, path.basename(new URL(route.request().url()).pathname));
    const body = await readFile(file);
    const type = file.endsWith('.wasm') ? 'application/wasm' : 'text/javascript';
    await route.fulfill({ body, contentType: type });
  });
  const engines = await page.evaluate(
    async ({ model, runs }) => {
      // The CPU engine as the widget's worker loads it in Chromium (the CPU build with relaxed
      // SIMD) and, side by side, with plain SIMD (the full build's); WebGPU from the full build.
      const full = await import('/pkg/liveness_wasm.js');
      await full.default();
      const relaxed = await import('/pkg/liveness_wasm_cpu_relaxed.js');
      await relaxed.default();
      const builds = { cpu: [relaxed, 'cpu'], cpuPlainSimd: [full, 'cpu'], webgpu: [full, 'webgpu'] };
      const { Camera } = await import('/capture.js');
      const video = document.createElement('video');
      const cam = await Camera.open(video, { width: { ideal: 640 }, height: { ideal: 480 } });
      const frames = await cam.capture(5, 100);
      cam.stop();
      const copy = () => frames.map((f) => new ImageData(new Uint8ClampedArray(f.data), f.width, f.height));
      const ours = {};
      for (const [name, [rt, backend]] of Object.entries(builds)) {
        const m = await rt.LivenessModel.load(model, undefined, { backend });
        ours[name] = { model: m, load: m.loadTimings, checks: [] };
      }
      const ort = await import('/ort/ort.wasm.min.mjs');
      ort.env.wasm.numThreads = 1;
      ort.env.wasm.wasmPaths = '/ort/';
      const t0 = performance.now();
      const bytes = new Uint8Array(await (await fetch(model)).arrayBuffer());
      const t1 = performance.now();
      const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
      const t2 = performance.now();
      const manifest = ours.cpu.model.manifest;
      const size = manifest.input.size;
      // 3 channels per view (the fused model takes three views of each frame).
      const channels = 3 * Math.max(1, (manifest.input.views ?? []).length);
      const input = new ort.Tensor('float32', new Float32Array(5 * channels * size * size).fill(0.1), [1, 5, channels, size, size]);
      const ortRuns = [];
      let ortP = null;
      for (let i = 0; i < runs + 1; i++) {
        for (const name of Object.keys(builds)) ours[name].checks.push((await ours[name].model.check(copy())).timings);
        const s = performance.now();
        const out = await session.run({ frames: input });
        ortRuns.push(performance.now() - s);
        ortP = out.p_spoof.data[0];
      }
      const cpuP = (await ours.cpu.model.check(copy())).pSpoof;
      const gpuP = (await ours.webgpu.model.check(copy())).pSpoof;
      return {
        size,
        modelBytes: bytes.length,
        pSpoof: { cpu: cpuP, webgpu: gpuP, ortOnFixedInput: ortP },
        ours: Object.fromEntries(
          Object.entries(ours).map(([k, v]) => [k, { load: v.load, checks: v.checks.slice(1), reason: v.model.backendReason }]),
        ),
        ort: { fetchMs: t1 - t0, sessionMs: t2 - t1, inferenceMs: ortRuns.slice(1) },
      };
    },
    { model: values.model, runs },
  );
  await context.close();

  // --- 2. The widget on the demo page: auto engine, worker, long tasks on the main thread.
  const demo = await openDemoPage(browser, site.base);
  await demo.page.evaluate((model) => {
    const el = document.getElementById('liveness');
    el.setAttribute('model', model);
    el.removeAttribute('session');
    window.__results = [];
    window.__longTasks = [];
    window.__allLongTasks = [];
    window.__checking = false;
    new PerformanceObserver((list) => {
      for (const t of list.getEntries()) {
        window.__allLongTasks.push(t.duration);
        if (window.__checking) window.__longTasks.push(t.duration);
      }
    }).observe({ type: 'longtask', buffered: true });
    el.addEventListener('state', (e) => {
      window.__checking = e.detail.state === 'capturing' || e.detail.state === 'analysing';
    });
    el.addEventListener('result', (e) => window.__results.push(e.detail));
    window.__looks = [];
    el.addEventListener('guidance', (e) => window.__looks.push({ at: performance.now(), detectMs: e.detail.detectMs }));
  }, values.model);
  // The guidance loop's cost: over a window of the preview, the worker's detection time per
  // second of wall time (its CPU share) and the looks per second.
  const GUIDE_WINDOW_MS = 3000;
  const guideWindows = [];
  for (let i = 0; i < runs; i++) {
    await clickWidgetButton(demo.page);
    await waitForGuidance(demo.page, 'good');
    guideWindows.push(
      await demo.page.evaluate(async (windowMs) => {
        const from = performance.now();
        await new Promise((r) => setTimeout(r, windowMs));
        const looks = window.__looks.filter((l) => l.at >= from && l.at < from + windowMs);
        return { looksPerS: (looks.length * 1000) / windowMs, detectShare: looks.reduce((a, l) => a + l.detectMs, 0) / windowMs };
      }, GUIDE_WINDOW_MS),
    );
    await clickWidgetButton(demo.page);
    await demo.page.waitForFunction((n) => window.__results.length === n, i + 1, { timeout: 300_000 });
    await waitForState(demo.page, 'result');
  }
  const widget = await demo.page.evaluate(() => ({
    results: window.__results,
    longTasks: window.__longTasks,
    allLongTasks: window.__allLongTasks,
  }));
  await demo.context.close();
  const mainThread = await measureMainThread(browser, site.base, runs);

  const stage = (checks, key) => round(median(checks.map((t) => t[key])));
  const cpuInference = median(engines.ours.cpu.checks.map((t) => t.inferenceMs));
  const plainInference = median(engines.ours.cpuPlainSimd.checks.map((t) => t.inferenceMs));
  const ortInference = median(engines.ort.inferenceMs);
  const report = {
    runs,
    frames: '5 x 640x480 RGBA',
    model: values.model,
    model_bytes: engines.modelBytes,
    input_size: engines.size,
    engines: {
      cpu: {
        why: engines.ours.cpu.reason,
        load_ms: Object.fromEntries(Object.entries(engines.ours.cpu.load).map(([k, v]) => [k, round(v)])),
        detect_ms: stage(engines.ours.cpu.checks, 'detectMs'),
        preprocess_ms: stage(engines.ours.cpu.checks, 'preprocessMs'),
        inference_ms: round(cpuInference),
      },
      cpu_plain_simd: {
        detect_ms: stage(engines.ours.cpuPlainSimd.checks, 'detectMs'),
        inference_ms: round(plainInference),
      },
      webgpu_swiftshader: {
        load_ms: Object.fromEntries(Object.entries(engines.ours.webgpu.load).map(([k, v]) => [k, round(v)])),
        inference_ms: stage(engines.ours.webgpu.checks, 'inferenceMs'),
      },
      onnxruntime_web_wasm_1_thread: {
        fetch_ms: round(engines.ort.fetchMs),
        session_ms: round(engines.ort.sessionMs),
        inference_ms: round(ortInference),
      },
    },
    cpu_engine_over_onnxruntime_web: round((cpuInference / ortInference) * 100) / 100,
    cpu_plain_simd_over_onnxruntime_web: round((plainInference / ortInference) * 100) / 100,
    p_spoof_cpu_vs_webgpu: Math.abs(engines.pSpoof.cpu - engines.pSpoof.webgpu),
    widget: {
      backend: widget.results[0]?.backend,
      median_ms: Object.fromEntries(
        ['captureMs', 'detectMs', 'preprocessMs', 'inferenceMs', 'workerMs'].map((k) => [k, stage(widget.results.map((r) => r.timings), k)]),
      ),
      guidance_loop: {
        looks_per_s: round(median(guideWindows.map((w) => w.looksPerS))),
        worker_detect_share_percent: round(100 * median(guideWindows.map((w) => w.detectShare))),
      },
      main_thread_long_tasks_during_checks: {
        count: widget.longTasks.length,
        longest_ms: Math.max(0, ...widget.longTasks),
      },
      main_thread_long_tasks_whole_page: {
        count: widget.allLongTasks.length,
        longest_ms: Math.max(0, ...widget.allLongTasks),
      },
    },
    main_thread_fresh_pages: mainThread,
  };
  console.log(JSON.stringify(report, null, 2));
} finally {
  await browser.close();
  await site.close();
}
