// The page's end of the worker protocol (documented in liveness-worker.js): one worker shared by
// every widget of the page, requests answered by id, download progress joined across the wasm
// module and the model.

import { livenessError } from './capture.js';

let worker = null;
let nextId = 1;
const pending = new Map(); // id → { resolve, reject, onProgress }

function failAll(error) {
  for (const p of pending.values()) p.reject(error);
  pending.clear();
}

function fromWorker(detail) {
  return livenessError(detail.code, detail.message);
}

function getWorker() {
  if (!worker) {
    worker = new Worker(new URL('./liveness-worker.js', import.meta.url), { type: 'module' });
    worker.onmessage = ({ data }) => {
      if (data.op === 'fatal') {
        // The worker's module died (a panic, e.g. a lost GPU device); it loads a fresh one.
        failAll(fromWorker(data.error));
        return;
      }
      const p = pending.get(data.id);
      if (!p) return;
      if (data.op === 'progress') {
        p.onProgress?.(data);
        return;
      }
      pending.delete(data.id);
      if (data.ok) p.resolve(data.value);
      else p.reject(fromWorker(data.error));
    };
    worker.onerror = (e) => {
      failAll(livenessError('inference', `the worker failed: ${e.message ?? e}`));
      worker?.terminate();
      worker = null;
    };
  }
  return worker;
}

/** Sends `msg` to the worker (moving `transfer`) and resolves with its answer. */
export function ask(msg, { transfer = [], onProgress } = {}) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, onProgress });
    getWorker().postMessage({ ...msg, id }, transfer);
  });
}

/**
 * Loads the wasm module (once per page) and the model `spec` ({ model, manifest, backend }) in
 * the worker; `onProgress(loaded, total)` hears both downloads as one. The model's size is known
 * once its download starts, so until then the total is the module's alone.
 */
export function loadModel(spec, onProgress) {
  const parts = { runtime: { loaded: 0, total: 0 }, model: { loaded: 0, total: 0 } };
  return ask(
    { op: 'load', ...spec },
    {
      onProgress: ({ part, loaded, total }) => {
        if (!parts[part]) return;
        parts[part] = { loaded, total: Math.max(total, loaded) };
        const sum = (key) => parts.runtime[key] + parts.model[key];
        onProgress?.(sum('loaded'), sum('total'));
      },
    },
  );
}

/** Plain frames for the worker; `keep` copies them so the caller keeps its own. */
export function framesForWorker(frames, keep) {
  const plain = frames.map((f) => ({
    data: keep ? new Uint8ClampedArray(f.data) : f.data,
    width: f.width,
    height: f.height,
  }));
  return { plain, transfer: plain.map((f) => f.data.buffer) };
}

/**
 * One look of the face detector at `frame` (moved to the worker); with `tracker` (a `challenge`
 * operation's), its face is pushed to that challenge's tracker. See the `guide` operation.
 */
export function look(frame, previous, tracker = null) {
  const { plain, transfer } = framesForWorker([frame], false);
  return ask({ op: 'guide', frame: plain[0], previous, tracker }, { transfer });
}
