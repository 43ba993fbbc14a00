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

let runtime = null; // Promise of { rt, guide, trackers: Map<id, ChallengeTracker>, models: Map<key, Promise<LivenessModel>> }
let generation = 0;
/** Who hears the runtime's download progress while it loads: (loaded, total) callbacks. */
const runtimeListeners = new Set();

function loadRuntime() {
  if (!runtime) {
    generation += 1;
    // Literal `new URL('…', import.meta.url)`s: bundlers find the files. A fresh instance is the
    // same file under another query.
    const url = new URL('./pkg/liveness_wasm.js', import.meta.url);
    if (generation > 1) url.search = `?instance=${generation}`;
    const loading = import(url.href).then(async (rt) => {
      await rt.default({ module_or_path: counted(await fetchWasm(new URL('./pkg/liveness_wasm_bg.wasm', import.meta.url))) });
      rt.setFatalListener((error) => {
        if (runtime === loading) runtime = null;
        self.postMessage({ op: 'fatal', error: plain(error) });
      });
      return { rt, guide: null, trackers: new Map(), models: new Map() };
    });
    runtime = loading;
    loading
      .catch(() => {
        if (runtime === loading) runtime = null;
      })
      .finally(() => runtimeListeners.clear());
  }
  return runtime;
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
function counted(response) {
  let loaded = 0;
  const total = Math.max(WASM_BYTES, 1);
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
  // The runtime's download is part of what a `load` reports.
  const listener = msg.op === 'load' ? (loaded, total) => self.postMessage({ op: 'progress', id: msg.id, part: 'runtime', loaded, total }) : null;
  try {
    if (listener) runtimeListeners.add(listener);
    const state = await loadRuntime();
    if (listener) {
      runtimeListeners.delete(listener);
      listener(WASM_BYTES, WASM_BYTES); // loaded (now, or before this request)
    }
    const op = ops[msg.op];
    if (!op) throw new Error(`unknown operation ${msg.op}`);
    self.postMessage({ id: msg.id, ok: true, value: await op(state, msg) });
  } catch (error) {
    self.postMessage({ id: msg.id, ok: false, error: plain(error) });
  }
};
