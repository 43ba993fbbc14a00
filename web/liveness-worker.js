// The widget's Web Worker: it holds the wasm module's models (the face guide and the liveness
// model) and runs the face detector, preprocessing and inference, so the page's main thread only
// shows the preview and grabs frames. Frames arrive transferred, not copied.
//
// Messages in:  { id, op: 'guide', frame, previous }          → { id, ok, value: guidance }
//               { id, op: 'load', model, manifest, backend }  → { id, ok, value: model info }
//                                                                 (and { op: 'progress', loaded, total })
//               { id, op: 'check', frames }                   → { id, ok, value: verdict }
// Failures answer { id, ok: false, error: { name, code, message } }. A panic inside the module
// (wonnx panics on GPU errors) posts { op: 'fatal', error }; the next message gets a fresh module.

let runtime = null; // Promise of { rt, guide, models: Map<key, Promise<LivenessModel>> }
let generation = 0;

function loadRuntime() {
  if (!runtime) {
    generation += 1;
    // Literal `new URL('…', import.meta.url)`s: bundlers find the files. A fresh instance is the
    // same file under another query.
    const url = new URL('./pkg/liveness_wasm.js', import.meta.url);
    if (generation > 1) url.search = `?instance=${generation}`;
    const loading = import(url.href).then(async (rt) => {
      await rt.default({ module_or_path: new URL('./pkg/liveness_wasm_bg.wasm', import.meta.url) });
      rt.setFatalListener((error) => {
        if (runtime === loading) runtime = null;
        self.postMessage({ op: 'fatal', error: plain(error) });
      });
      return { rt, guide: null, models: new Map() };
    });
    runtime = loading;
    loading.catch(() => {
      if (runtime === loading) runtime = null;
    });
  }
  return runtime;
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
    const onProgress = (loaded, total) => self.postMessage({ op: 'progress', id, loaded, total });
    loading = state.rt.LivenessModel.load(model, manifest ?? undefined, { backend, onProgress });
    state.models.set(key, loading);
    // A failed load is retried next time rather than remembered.
    loading.catch(() => state.models.delete(key));
  }
  return loading;
}

const ops = {
  async guide(state, msg) {
    state.guide ??= new state.rt.FaceGuide();
    return state.guide.look(msg.frame, msg.previous ?? undefined);
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
};

self.onmessage = async (event) => {
  const msg = event.data;
  try {
    const state = await loadRuntime();
    const op = ops[msg.op];
    if (!op) throw new Error(`unknown operation ${msg.op}`);
    self.postMessage({ id: msg.id, ok: true, value: await op(state, msg) });
  } catch (error) {
    self.postMessage({ id: msg.id, ok: false, error: plain(error) });
  }
};
