// The widget's Web Worker: the only place the wasm module is loaded. It holds the models (the face
// guide, the liveness model, the challenge tracker) and runs the face detector, preprocessing and
// inference, so the page's main thread only shows the preview and grabs frames (capture.js).
// Frames arrive transferred, not copied.
//
// The protocol, in one place (worker-client.js is the other end). Every request carries an `id`;
// the answer is { id, ok: true, value } or { id, ok: false, error: { name, code, message } }.
//   { op: 'backend', backend }                 → { backend, reason } (the policy on this
//                                                 browser's adapter, probed once), or
//                                                 webgpu-unavailable
//   { op: 'load', model, manifest, backend }   → { backend, backendReason, loadTimings, manifest },
//                                                 with { id, op: 'progress', part: 'runtime' |
//                                                 'model', loaded, total } on the way
//   { op: 'check', model, manifest, backend, frames } → the verdict
//   { op: 'guide', frame, previous, tracker }  → { guidance, face, steady, detectMs }, and with
//                                                 `tracker` that tracker's `progress` after it
//   { op: 'challenge', steps }                 → { tracker, steps } (a new tracker, one per
//                                                 widget's challenge; null steps: drawn here)
//   { op: 'challenge-end', tracker }           → null (the tracker is freed)
//   { op: 'check-track', steps, looks, times } → { passed, code, message, depth }
//   { op: 'codes' }                            → { challenge: [...] } (the failure codes)
// A panic inside the module (wonnx panics on GPU errors) posts { op: 'fatal', error }; the next
// message gets a fresh module.

import WASM_BYTES from './pkg/liveness_wasm_size.js';

// The module comes in two builds (scripts/build-web.sh): `cpu`, the CPU engine only, and
// `webgpu`, both engines (wonnx and wgpu: 0.6 MB more gzipped). The WebGPU build is fetched only
// when WebGPU may run: `backend: 'webgpu'`, or `auto` with an adapter the browser does not call a
// fallback (software) adapter; the module's own policy (chooseBackend) still has the last word.
// The CPU build comes twice: where the browser has WebAssembly relaxed SIMD (Chrome and Edge
// 114+), the one built with it (fused multiply-add in tract's matrix kernel: the default model
// 17 % faster; models/README.md), elsewhere the one with plain SIMD.
// Literal `new URL('…', import.meta.url)`s: bundlers find the files.
const RELAXED_SIMD = hasRelaxedSimd();
const MODULES = {
  cpu: () =>
    RELAXED_SIMD
      ? { glue: new URL('./pkg/liveness_wasm_cpu_relaxed.js', import.meta.url), wasm: new URL('./pkg/liveness_wasm_cpu_relaxed_bg.wasm', import.meta.url), bytes: WASM_BYTES.cpuRelaxed }
      : { glue: new URL('./pkg/liveness_wasm_cpu.js', import.meta.url), wasm: new URL('./pkg/liveness_wasm_cpu_bg.wasm', import.meta.url), bytes: WASM_BYTES.cpu },
  webgpu: () => ({ glue: new URL('./pkg/liveness_wasm.js', import.meta.url), wasm: new URL('./pkg/liveness_wasm_bg.wasm', import.meta.url), bytes: WASM_BYTES.webgpu }),
};

/**
 * Whether this browser validates a module that uses one relaxed SIMD instruction
 * (`i8x16.relaxed_swizzle`; the bytes of wasm-feature-detect's `relaxedSimd` check).
 */
function hasRelaxedSimd() {
  try {
    return WebAssembly.validate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 1, 253, 15, 65, 2, 253, 15, 253, 128, 2, 11]));
  } catch {
    return false;
  }
}

/** Per build: a Promise of { kind, bytes, rt, guide, trackers: Map<id, ChallengeTracker>, models: Map<key, Promise<LivenessModel>> }. */
const runtimes = { cpu: null, webgpu: null };
const generations = { cpu: 0, webgpu: 0 };
/** Who hears the runtime's download progress while it loads: (loaded, total) callbacks. */
const runtimeListeners = new Set();
/** The backend preference of the latest request that named one (for requests that do not). */
let lastPreference = 'auto';
let adapterProbe = null;

/** The browser's WebGPU adapter or null, asked once; handed to every module (useWebgpuAdapter). */
function probeAdapter() {
  adapterProbe ??= (async () => {
    try {
      return (await self.navigator.gpu?.requestAdapter()) ?? null;
    } catch {
      return null;
    }
  })();
  return adapterProbe;
}

/** The build a backend preference needs. */
async function kindFor(preference) {
  if (preference === 'cpu') return 'cpu';
  if (preference === 'webgpu') return 'webgpu';
  const adapter = await probeAdapter();
  return adapter && !(adapter.isFallbackAdapter || adapter.info?.isFallbackAdapter) ? 'webgpu' : 'cpu';
}

/** The runtime that holds the face guide and the challenge trackers, while it lives. */
let home = null;

/**
 * The runtime for a request with this backend preference (undefined: the request runs no model
 * and goes to the home runtime, which keeps its trackers however many builds get loaded). A
 * module already loaded serves whatever it can: the WebGPU build runs the CPU engine too.
 */
async function runtimeFor(preference) {
  if (preference === undefined) {
    if (!home || (home !== runtimes.cpu && home !== runtimes.webgpu)) {
      home = runtimes.webgpu ?? runtimes.cpu ?? loadRuntime(await kindFor(lastPreference));
    }
    return home;
  }
  const kind = await kindFor(preference);
  if (kind === 'webgpu') return loadRuntime('webgpu');
  return runtimes.webgpu ?? runtimes.cpu ?? loadRuntime('cpu');
}

function loadRuntime(kind) {
  if (!runtimes[kind]) {
    generations[kind] += 1;
    const files = MODULES[kind]();
    // A fresh instance is the same file under another query.
    if (generations[kind] > 1) files.glue.search = `?instance=${generations[kind]}`;
    const loading = import(files.glue.href).then(async (rt) => {
      await rt.default({ module_or_path: counted(await fetchWasm(files.wasm), files.bytes) });
      if (adapterProbe) rt.useWebgpuAdapter(await adapterProbe);
      rt.setFatalListener((error) => {
        if (runtimes[kind] === loading) runtimes[kind] = null;
        self.postMessage({ op: 'fatal', error: plain(error) });
      });
      return { kind, bytes: files.bytes, rt, guide: null, trackers: new Map(), models: new Map() };
    });
    runtimes[kind] = loading;
    loading
      .catch(() => {
        if (runtimes[kind] === loading) runtimes[kind] = null;
      })
      .finally(() => runtimeListeners.clear());
  }
  return runtimes[kind];
}

async function fetchWasm(url) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw failure('model-fetch', `${url}: ${e?.message ?? e}`);
  }
  if (!response.ok) throw failure('model-fetch', `${url}: HTTP ${response.status} ${response.statusText}`);
  return response;
}

/**
 * The wasm response with its bytes counted as they arrive (still compiled while streaming). The
 * total is the file's size from the build: a compressed response's Content-Length is not.
 */
function counted(response, size) {
  let loaded = 0;
  const total = Math.max(size, 1);
  const body = response.body.pipeThrough(
    new TransformStream({
      transform(chunk, controller) {
        loaded += chunk.byteLength;
        for (const listener of runtimeListeners) listener(Math.min(loaded, total), total);
        controller.enqueue(chunk);
      },
    }),
  );
  return new Response(body, { headers: { 'content-type': 'application/wasm' } });
}

function failure(code, message) {
  const error = new Error(message);
  error.name = 'LivenessError';
  error.code = code;
  return error;
}

function plain(error) {
  return {
    name: error?.name ?? 'Error',
    code: typeof error?.code === 'string' ? error.code : 'inference',
    message: error?.message ?? String(error),
  };
}

async function model(state, { model, manifest, backend }, id) {
  const key = `${model}\n${manifest ?? ''}\n${backend}`;
  let loading = state.models.get(key);
  if (!loading) {
    const onProgress = (loaded, total) => self.postMessage({ op: 'progress', id, part: 'model', loaded, total });
    loading = state.rt.LivenessModel.load(model, manifest ?? undefined, { backend, onProgress });
    state.models.set(key, loading);
    // A failed load is retried next time rather than remembered.
    loading.catch(() => state.models.delete(key));
  }
  return loading;
}

/** Requests whose `backend` picks the build (the others run in the home runtime). */
const MODEL_OPS = new Set(['backend', 'load', 'check']);

const ops = {
  async backend(state, msg) {
    return state.rt.chooseBackend(msg.backend);
  },
  async load(state, msg) {
    const m = await model(state, msg, msg.id);
    return { backend: m.backend, backendReason: m.backendReason, loadTimings: m.loadTimings, manifest: m.manifest };
  },
  async check(state, msg) {
    const m = await model(state, msg, msg.id);
    const verdict = await m.check(msg.frames);
    return { ...verdict, backendReason: m.backendReason };
  },
  async guide(state, msg) {
    state.guide ??= new state.rt.FaceGuide();
    const look = state.guide.look(msg.frame, msg.previous ?? undefined);
    if (msg.tracker != null) {
      const tracker = state.trackers.get(msg.tracker);
      if (!tracker) throw failure('inference', `no challenge ${msg.tracker} under way`);
      look.progress = tracker.push(look.face ?? null);
    }
    return look;
  },
  async challenge(state, msg) {
    // The request's id names the tracker: each widget of the page follows its own challenge.
    const tracker = new state.rt.ChallengeTracker(msg.steps ?? undefined);
    state.trackers.set(msg.id, tracker);
    return { tracker: msg.id, steps: tracker.steps };
  },
  async 'challenge-end'(state, msg) {
    state.trackers.get(msg.tracker)?.free();
    state.trackers.delete(msg.tracker);
    return null;
  },
  async 'check-track'(state, msg) {
    return state.rt.checkTrack(msg.steps, msg.looks, msg.times);
  },
  async codes(state) {
    return { challenge: state.rt.challengeCodes() };
  },
};

self.onmessage = async (event) => {
  const msg = event.data;
  if (typeof msg.backend === 'string') lastPreference = msg.backend;
  // The runtime's download is part of what a `load` reports.
  const listener = msg.op === 'load' ? (loaded, total) => self.postMessage({ op: 'progress', id: msg.id, part: 'runtime', loaded, total }) : null;
  try {
    if (listener) runtimeListeners.add(listener);
    const state = await runtimeFor(MODEL_OPS.has(msg.op) ? msg.backend : undefined);
    if (listener) {
      runtimeListeners.delete(listener);
      listener(state.bytes, state.bytes); // loaded (now, or before this request)
    }
    const op = ops[msg.op];
    if (!op) throw new Error(`unknown operation ${msg.op}`);
    self.postMessage({ id: msg.id, ok: true, value: await op(state, msg) });
  } catch (error) {
    self.postMessage({ id: msg.id, ok: false, error: plain(error) });
  }
};
