// <liveness-check>: the embeddable liveness widget.
//
// Embedding is one tag, `<liveness-check model="/models/default.onnx"></liveness-check>`, or one
// call, `mount(element, { model })`. The widget asks for the camera, shows a preview with live
// guidance from a face detector, asks for a short head-pose challenge (the session server's, or
// one drawn here), captures five frames, stops the camera, and runs the model on this device. The main thread only shows the preview and grabs frames (through the wasm module's
// Camera); a Web Worker (liveness-worker.js) holds the models and runs the face detector, the
// trainer's own preprocessing and inference — wonnx on a hardware WebGPU adapter, tract on the CPU
// everywhere else. No frame leaves the device unless the host page asks for them (`share-frames`,
// or a `session` endpoint of the host's own server).
//
// Everything it loads is relative to this file (no CDN), and it needs no inline script or style,
// so it runs under `script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; worker-src 'self'`.

/** The number of frames the model takes (liveness_core::FRAMES; the wasm module's frameCount()). */
export const FRAMES = 5;

/** Milliseconds between captured frames unless the `interval` attribute says otherwise. */
export const DEFAULT_INTERVAL_MS = 200;

/** Milliseconds between two looks of the face detector at the preview. */
export const GUIDE_INTERVAL_MS = 250;

/** Milliseconds between two looks during the head-pose challenge. */
export const CHALLENGE_INTERVAL_MS = 200;

/** The most time one challenge step may take, ms (liveness_core::challenge::STEP_TIMEOUT_MS). */
export const STEP_TIMEOUT_MS = 6000;

/** Most looks in one challenge's track (liveness_core::challenge::MAX_TRACK_FRAMES). */
export const MAX_TRACK_FRAMES = 100;

/** Widest or tallest frame of the track sent to a session server (at most MAX_TRACK_SIDE, 320;
 * the detector sees 128 × 128, so 240 loses nothing it uses and keeps the upload small). */
export const TRACK_SIDE = 240;

/**
 * Every state of the widget: whether a check is under way (`busy`: start() does nothing), the
 * text key of its status line (null: chosen from the detail), and the text key of its one button
 * (null: hidden). Rendering, busy checks and the `.d.ts` all follow this table.
 */
export const STATES = Object.freeze({
  idle: Object.freeze({ busy: false, text: 'intro', button: 'start' }),
  starting: Object.freeze({ busy: true, text: 'starting', button: null }),
  preview: Object.freeze({ busy: true, text: null, button: 'capture' }),
  challenge: Object.freeze({ busy: true, text: null, button: null }),
  capturing: Object.freeze({ busy: true, text: 'capturing', button: null }),
  analysing: Object.freeze({ busy: true, text: 'analysing', button: null }),
  result: Object.freeze({ busy: false, text: null, button: 'again' }),
  refused: Object.freeze({ busy: false, text: null, button: 'retry' }),
  error: Object.freeze({ busy: false, text: null, button: 'retry' }),
});

/** Texts shown to the user; replace any of them through `element.texts` or `mount(…, {texts})`. */
export const DEFAULT_TEXTS = Object.freeze({
  intro: 'Show that you are a live person. The camera pictures stay on this device.',
  introSession: "Show that you are a live person. The pictures go only to this site's server, to confirm the check.",
  start: 'Start check',
  starting: 'Asking for camera access…',
  capture: 'Capture',
  capturing: 'Hold still…',
  analysing: 'Checking…',
  live: 'Live person confirmed.',
  spoof: 'We could not confirm a live person. Face the camera in good light and try again.',
  stepProgress: 'Step {step} of {steps}: {instruction}',
  steps: Object.freeze({
    centre: 'Look straight at the camera.',
    left: 'Turn your head slowly to the left.',
    right: 'Turn your head slowly to the right.',
    up: 'Tilt your head slowly up.',
    down: 'Tilt your head slowly down.',
  }),
  challengeFailed: Object.freeze({
    'challenge-failed': 'We could not see the head movement we asked for. Try again, turning slowly.',
    flat: 'The face moved like a flat picture. Use your own face in front of the camera.',
    discontinuous: 'We lost track of your face. Stay in view and try again.',
    'repeated-frames': 'The camera sent the same picture twice. Try again.',
    'too-fast': 'That was faster than a person can turn. Try again.',
  }),
  retry: 'Try again',
  again: 'Check again',
  score: 'Spoof probability {p} (threshold {t})',
  modelNote: 'Model trained on {data}. Terms: {terms}.',
  loading: 'Downloading the check… {percent}',
  camera: 'Camera',
  guidance: Object.freeze({
    'no-face': 'Move into view: no face is visible.',
    'multiple-faces': 'Only one person, please.',
    'too-far': 'Come a little closer.',
    'too-close': 'Move back a little.',
    'off-centre': 'Centre your face in the oval.',
    'too-dark': 'More light, please: your face is too dark.',
    good: 'Good. Hold still and press Capture.',
  }),
  refused: Object.freeze({
    'no-face': 'Your face was not visible in every picture. Face the camera and try again.',
    'multiple-faces': 'More than one person was in the pictures. Make sure you are alone and try again.',
  }),
  errors: Object.freeze({
    'camera-denied':
      'Camera access was blocked. Allow the camera for this site in your browser settings, then try again.',
    'camera-missing': 'No camera was found. Connect a camera, then try again.',
    'camera-in-use': 'The camera is in use by another application. Close it, then try again.',
    'camera-failed': 'The camera could not be started.',
    'webgpu-unavailable': 'This browser cannot run the check on the graphics processor (WebGPU is unavailable).',
    'model-fetch': 'The liveness model could not be downloaded. Check your connection, then try again.',
    'model-hash': 'The liveness model failed its integrity check and was not used.',
    'model-invalid': 'The liveness model could not be loaded.',
    frames: 'The captured pictures could not be used.',
    'device-lost': 'The graphics device stopped working. Try again.',
    inference: 'The check could not run. Try again.',
    session: 'The check could not be confirmed with the server. Try again.',
  }),
});

// ---------------------------------------------------------------------------------------------
// The wasm runtime on the main thread (the camera and the shared rules), and the worker that
// holds the models. Both are shared by every widget of the page.

let runtime = null;

/** Where the last picked camera is remembered (localStorage, per origin). */
const CAMERA_KEY = 'liveness-check:camera';

/**
 * The manifest's address for a model's address: NAME.onnx → NAME.json, keeping a query or
 * fragment (liveness-core's `manifest_url`, written here so that showing the model's note needs
 * no wasm; a browser test holds the two to the same answers).
 */
export function manifestUrl(modelUrl) {
  const cut = modelUrl.search(/[?#]/);
  const [path, rest] = cut < 0 ? [modelUrl, ''] : [modelUrl.slice(0, cut), modelUrl.slice(cut)];
  return `${path.endsWith('.onnx') ? path.slice(0, -'.onnx'.length) : path}.json${rest}`;
}

function loadRuntime() {
  if (!runtime) {
    // Literal `new URL('…', import.meta.url)`: bundlers (Vite, webpack, Rollup) find the files.
    const loading = import(new URL('./pkg/liveness_wasm.js', import.meta.url).href).then(async (rt) => {
      await rt.default({ module_or_path: new URL('./pkg/liveness_wasm_bg.wasm', import.meta.url) });
      return rt;
    });
    runtime = loading;
    loading.catch(() => {
      if (runtime === loading) runtime = null;
    });
  }
  return runtime;
}

let worker = null;
let nextId = 1;
const pending = new Map(); // id → { resolve, reject, onProgress }

function failAll(error) {
  for (const p of pending.values()) p.reject(error);
  pending.clear();
}

function livenessError(detail) {
  const error = new Error(detail.message);
  error.name = 'LivenessError';
  error.code = detail.code;
  return error;
}

function getWorker() {
  if (!worker) {
    worker = new Worker(new URL('./liveness-worker.js', import.meta.url), { type: 'module' });
    worker.onmessage = ({ data }) => {
      if (data.op === 'fatal') {
        // The worker's module died (a panic, e.g. a lost GPU device); it loads a fresh one.
        failAll(livenessError(data.error));
        return;
      }
      const p = pending.get(data.id);
      if (!p) return;
      if (data.op === 'progress') {
        p.onProgress?.(data.loaded, data.total);
        return;
      }
      pending.delete(data.id);
      if (data.ok) p.resolve(data.value);
      else p.reject(livenessError(data.error));
    };
    worker.onerror = (e) => {
      failAll(livenessError({ code: 'inference', message: `the worker failed: ${e.message ?? e}` }));
      worker?.terminate();
      worker = null;
    };
  }
  return worker;
}

/** Sends `msg` to the worker (moving `transfer`) and resolves with its answer. */
function ask(msg, { transfer = [], onProgress } = {}) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, onProgress });
    getWorker().postMessage({ ...msg, id }, transfer);
  });
}

/** Plain frames for the worker; `keep` copies them so the caller keeps its own. */
function framesForWorker(frames, keep) {
  const plain = frames.map((f) => ({
    data: keep ? new Uint8ClampedArray(f.data) : f.data,
    width: f.width,
    height: f.height,
  }));
  return { plain, transfer: plain.map((f) => f.data.buffer) };
}

/** Base64 of a lossless PNG of one RGBA frame (for the session server). */
async function pngBase64(frame) {
  const canvas = new OffscreenCanvas(frame.width, frame.height);
  canvas.getContext('2d').putImageData(frame, 0, 0);
  const blob = await canvas.convertToBlob({ type: 'image/png' });
  const url = await new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
  return String(url).slice(String(url).indexOf(',') + 1);
}

/** `frame` (ImageData) scaled so that its longer side is at most `side` pixels, as ImageData. */
async function scaled(frame, side) {
  const k = Math.min(1, side / Math.max(frame.width, frame.height));
  const [w, h] = [Math.max(1, Math.round(frame.width * k)), Math.max(1, Math.round(frame.height * k))];
  const bitmap = await createImageBitmap(frame, { resizeWidth: w, resizeHeight: h, resizeQuality: 'high' });
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return ctx.getImageData(0, 0, w, h);
}

/** A `session` error: the host's server refused or could not confirm the check. */
function sessionError(message) {
  return livenessError({ code: 'session', message });
}

/** POSTs JSON to the host's session endpoint; resolves to the answer or rejects with `session`. */
async function sessionCall(url, body) {
  let response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw sessionError(`${url}: ${e.message ?? e}`);
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw sessionError(`${url}: HTTP ${response.status}: ${answer.message ?? answer.error ?? ''}`);
  return answer;
}

// ---------------------------------------------------------------------------------------------
// Locales: JSON text tables next to this module (English is DEFAULT_TEXTS, built in). Each URL is
// a literal, so that bundlers copy the tables.

const LOCALE_URLS = Object.freeze({
  en: null,
  ar: new URL('./locales/ar.json', import.meta.url),
  de: new URL('./locales/de.json', import.meta.url),
  es: new URL('./locales/es.json', import.meta.url),
  fr: new URL('./locales/fr.json', import.meta.url),
  he: new URL('./locales/he.json', import.meta.url),
  ja: new URL('./locales/ja.json', import.meta.url),
  'pt-BR': new URL('./locales/pt-BR.json', import.meta.url),
  ru: new URL('./locales/ru.json', import.meta.url),
  'zh-CN': new URL('./locales/zh-CN.json', import.meta.url),
});

/** The locales the widget ships. */
export const LOCALES = Object.freeze(Object.keys(LOCALE_URLS));

/** The shipped locales written right to left. */
const RTL = new Set(['ar', 'he']);

/**
 * The shipped locale for language tags in order of preference: the first tag with a table of
 * its own (`pt-BR`), or of its language (`pt-PT` → `pt-BR`, `zh` → `zh-CN`); else English.
 */
export function pickLocale(tags) {
  for (const tag of tags) {
    if (typeof tag !== 'string' || !tag) continue;
    const lower = tag.toLowerCase();
    const language = lower.split('-')[0];
    const found =
      LOCALES.find((l) => l.toLowerCase() === lower) ?? LOCALES.find((l) => l.toLowerCase().split('-')[0] === language);
    if (found) return found;
  }
  return 'en';
}

const localeTables = new Map(); // locale → Promise of its table

function localeTable(locale) {
  const url = LOCALE_URLS[locale];
  if (!url) return Promise.resolve({});
  if (!localeTables.has(locale)) {
    const loading = fetch(url).then((r) => {
      if (!r.ok) throw new Error(`${url}: ${r.status}`);
      return r.json();
    });
    // A table that failed to load is fetched again next time.
    loading.catch(() => localeTables.delete(locale));
    localeTables.set(locale, loading);
  }
  return localeTables.get(locale);
}

const TEXT_GROUPS = ['guidance', 'refused', 'errors', 'steps', 'challengeFailed'];

/** `base` with `over`'s texts on top, per code within the groups. */
function mergeTexts(base, over) {
  const merged = { ...base, ...over };
  delete merged._meta;
  for (const group of TEXT_GROUPS) merged[group] = { ...base[group], ...(over?.[group] ?? {}) };
  return merged;
}

function errorCode(error) {
  return error && error.name === 'LivenessError' && typeof error.code === 'string' ? error.code : 'inference';
}

// ---------------------------------------------------------------------------------------------

// On a server (SSR) there is no HTMLElement: the module still imports, defines nothing, throws
// nothing.
const ElementBase = globalThis.HTMLElement ?? class {};

export class LivenessCheck extends ElementBase {
  static get observedAttributes() {
    return ['model', 'manifest', 'lang'];
  }

  #texts = DEFAULT_TEXTS;
  /** The page's own texts (`texts`), over the locale's. */
  #overrides = {};
  /** The locale's table, over English. */
  #localeTexts = {};
  #locale = null;
  #box = null;
  #state = 'idle';
  #camera = null;
  /** The device the user picked in this page (null: none picked). */
  #chosenCamera = null;
  #modelLoading = null;
  #run = 0; // bumped on every start, stop and failure, so that a stale async step gives up
  #refocus = false; // the button had keyboard focus when it was hidden
  #detail = null; // the verdict in `result`, { code, message } in `error` and `refused`
  #guidance = null; // the last look of the face detector in `preview`
  #progress = null; // download progress of the model, 0..1, while it loads
  #session = null; // the host server's session of this check ({ id, nonce, challenge, … }), with `session`
  #challenge = null; // during `challenge`: { steps, progress } (the step due, the last pose)
  #ui;

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = new URL('./liveness-check.css', import.meta.url).href;
    const box = document.createElement('div');
    box.className = 'box';
    this.#box = box;
    box.setAttribute('part', 'box');
    box.innerHTML = `
      <div class="stage" part="stage">
        <video muted playsinline aria-hidden="true"></video>
        <div class="guide" aria-hidden="true"></div>
        <div class="arrow" aria-hidden="true"></div>
      </div>
      <p class="status" part="status" role="status" aria-live="polite"></p>
      <p class="progress" part="progress"></p>
      <p class="score" part="score"></p>
      <label class="camera-choice" part="camera-choice" hidden><span></span>
        <select class="camera-picker" part="camera-picker"></select></label>
      <div class="actions"><button type="button" class="action" part="button"></button></div>
      <p class="note" part="note"></p>`;
    root.append(link, box);
    this.#ui = {
      video: box.querySelector('video'),
      arrow: box.querySelector('.arrow'),
      status: box.querySelector('.status'),
      progress: box.querySelector('.progress'),
      score: box.querySelector('.score'),
      button: box.querySelector('button'),
      note: box.querySelector('.note'),
      cameraChoice: box.querySelector('.camera-choice'),
      cameraPicker: box.querySelector('.camera-picker'),
    };
    this.#ui.button.addEventListener('click', () => this.#onButton());
    this.#ui.cameraPicker.addEventListener('change', () => this.#chooseCamera(this.#ui.cameraPicker.value));
  }

  connectedCallback() {
    this.#applyLocale();
    this.#render();
    this.#showModelNote();
    // The wasm module (3.6 MB gzip) is fetched when a check starts, or now with `preload`.
    if (this.hasAttribute('preload')) this.preload();
  }

  /**
   * Fetches and prepares the wasm module and the model now (what `preload` does on connect),
   * so that start() does not wait for them. Resolves once both are ready; a failure is reported
   * when the check starts.
   */
  async preload() {
    const loading = ask({ op: 'load', model: this.#model, manifest: this.#manifest, backend: this.#backend });
    await Promise.allSettled([loadRuntime(), loading]);
  }

  disconnectedCallback() {
    this.stop();
  }

  attributeChangedCallback(name) {
    if (!this.isConnected) return;
    if (name === 'lang') this.#applyLocale();
    else this.#showModelNote();
  }

  /** The current state: one of the keys of STATES. */
  get state() {
    return this.#state;
  }

  /** The texts in use (defaults merged with what was set). */
  get texts() {
    return this.#texts;
  }

  /** Replaces some or all texts; `guidance`, `refused` and `errors` are merged per code. */
  set texts(texts) {
    this.#overrides = texts ?? {};
    this.#texts = mergeTexts(mergeTexts(DEFAULT_TEXTS, this.#localeTexts), this.#overrides);
    this.#render();
  }

  /** The shipped locale in use (see `lang`). */
  get locale() {
    return this.#locale;
  }

  /**
   * The `lang` attribute, else the nearest ancestor's (the page's), else the browser's
   * languages; its table is fetched (English is built in), then the page's `texts` on top.
   */
  async #applyLocale() {
    const own = this.closest('[lang]')?.getAttribute('lang');
    const locale = pickLocale([own, document.documentElement.lang, ...(navigator.languages ?? [])]);
    if (locale === this.#locale) return;
    this.#locale = locale;
    let table = {};
    try {
      table = await localeTable(locale);
    } catch {
      // A table that cannot load leaves English: the check still works.
    }
    if (locale !== this.#locale) return;
    this.#localeTexts = table;
    this.#box.dir = RTL.has(locale) ? 'rtl' : 'ltr';
    this.#box.lang = locale;
    this.dataset.locale = locale;
    this.texts = this.#overrides;
    this.#showModelNote();
  }

  /** A number in the locale's way of writing it. */
  #number(value, options) {
    // Before the locale is chosen: the browser's default (Intl refuses a null locale).
    return new Intl.NumberFormat(this.#locale ?? undefined, options).format(value);
  }

  get #model() {
    // The model is the host's to serve (it is not in the npm package): by default at
    // /models/default.onnx on the page's origin, next to its manifest.
    return this.getAttribute('model') || new URL('/models/default.onnx', location.href).href;
  }

  /** The manifest's address (null: the wasm module's rule, NAME.json next to NAME.onnx). */
  get #manifest() {
    return this.getAttribute('manifest');
  }

  get #backend() {
    const b = this.getAttribute('backend');
    return b === 'webgpu' || b === 'cpu' ? b : 'auto';
  }

  get #interval() {
    const v = Number(this.getAttribute('interval') ?? NaN);
    const interval = Number.isFinite(v) && v >= 0 ? v : DEFAULT_INTERVAL_MS;
    // A session server sets the least interval it accepts.
    return Math.max(interval, this.#session?.minIntervalMs ?? 0);
  }

  /** The host's session endpoint (`session` attribute), or null: then nothing leaves the device. */
  get #sessionUrl() {
    const url = this.getAttribute('session');
    return url ? new URL(url, document.baseURI).href : null;
  }

  /**
   * The challenge's steps: the session server's (it holds the widget to them); else the
   * `challenge` attribute's fixed steps (`centre,left,right,centre`: for fake-camera tests), none
   * with `challenge="none"` (passive model only), or null: drawn here at random (client-only
   * mode: weaker, nobody but this page holds the user to it).
   */
  get #challengeSteps() {
    if (this.#session?.challenge) return this.#session.challenge.steps;
    const attr = this.getAttribute('challenge');
    if (attr === 'none') return [];
    return attr ? attr.split(',').map((s) => s.trim()) : null;
  }

  /** Asks for the camera and shows the preview. Does nothing while a check is under way. */
  async start() {
    if (STATES[this.#state].busy) return;
    const run = ++this.#run;
    this.#set('starting');
    try {
      const rt = await loadRuntime();
      if (run !== this.#run) return;
      // Before the camera: a forced WebGPU engine without an adapter leaves nothing to ask for.
      if (this.#backend === 'webgpu') rt.chooseBackend('webgpu', await rt.webgpuAdapter());
      if (run !== this.#run) return;
      // With a session endpoint: a server nonce binds this capture (before the camera opens).
      this.#session = null;
      if (this.#sessionUrl) {
        const session = await sessionCall(this.#sessionUrl);
        if (run !== this.#run) return;
        this.#session = session;
      }
      this.#progress = 0;
      this.#modelLoading = ask(
        { op: 'load', model: this.#model, manifest: this.#manifest, backend: this.#backend },
        { onProgress: (loaded, total) => this.#onProgress(run, loaded, total) },
      );
      this.#modelLoading.then(
        () => {
          this.#progress = null;
          if (run === this.#run) this.#render();
        },
        // A model that cannot load is reported at once, not after the user has posed for nothing.
        (error) => {
          if (run === this.#run && (this.#state === 'starting' || this.#state === 'preview')) this.#fail(error);
        },
      );
      const { ask: wanted, fallback } = this.#cameraConstraints();
      const camera = await rt.Camera.open(this.#ui.video, wanted).catch((error) => {
        // A remembered camera that is gone (or busy) gives way to the default one.
        if (!fallback || run !== this.#run) throw error;
        return rt.Camera.open(this.#ui.video, fallback);
      });
      if (run !== this.#run) {
        camera.stop();
        camera.free();
        return;
      }
      this.#camera = camera;
      this.#cameraOpened(run);
      this.#guidance = null;
      this.#set('preview');
      this.#guide(run);
    } catch (error) {
      if (run === this.#run) this.#fail(error);
    }
  }

  /** From the preview: the head-pose challenge, then the five frames, then the check. */
  async capture() {
    if (this.#state !== 'preview' || !this.#camera) return;
    const run = this.#run;
    const camera = this.#camera;
    try {
      const steps = this.#challengeSteps;
      let track = null;
      if (steps === null || steps.length > 0) {
        this.#set('challenge');
        track = await this.#performChallenge(run, camera, steps);
        if (run !== this.#run) return;
        // A camera's next picture, not the one the last look saw (the server refuses repeats).
        await new Promise((r) => setTimeout(r, this.#interval));
        if (run !== this.#run) return;
      }
      this.#set('capturing');
      const started = performance.now();
      const frames = await camera.capture(FRAMES, this.#interval);
      const captureMs = performance.now() - started;
      this.#releaseCamera();
      if (run !== this.#run) return;
      this.#set('analysing');
      const waited = performance.now();
      const loaded = await this.#modelLoading;
      const modelWaitMs = performance.now() - waited;
      if (run !== this.#run) return;
      const share = this.hasAttribute('share-frames');
      const session = this.#session;
      const { plain, transfer } = framesForWorker(frames, share || session !== null);
      const sent = performance.now();
      const verdict = await ask(
        { op: 'check', model: this.#model, manifest: this.#manifest, backend: this.#backend, frames: plain },
        { transfer },
      );
      const workerMs = performance.now() - sent;
      if (run !== this.#run) return;
      const load = loaded.loadTimings;
      verdict.timings = {
        captureMs,
        modelWaitMs,
        ...verdict.timings,
        workerMs,
        modelFetchMs: load.fetchMs,
        modelVerifyMs: load.verifyMs,
        modelSessionMs: load.sessionMs,
      };
      // The five frames' times on the track's clock (the camera keeps the interval).
      const frameTimes = track
        ? frames.map((_, k) => started - track.origin + k * this.#interval)
        : [];
      if (track) {
        verdict.timings.challengeMs = started - track.origin;
        if (!session) {
          // Client-only: the server's rules, run here on the looks and the five frames' faces.
          const rt = await loadRuntime();
          const looks = track.looks.concat(verdict.faces.map((face) => ({ face, width: frames[0].width })));
          const checked = rt.checkTrack(track.steps, looks, track.times.concat(frameTimes));
          verdict.challenge = { steps: track.steps, passed: checked.passed, code: checked.code ?? null, drawnBy: 'client' };
          verdict.live = verdict.live && checked.passed;
        }
      }
      if (session) {
        // The frames go to the host's own server (only now, only with `session`): it re-runs the
        // same model and the challenge's checks and signs its verdict; the page's verdict is
        // never more than the server's.
        const sent = performance.now();
        const [pngs, trackPngs] = await Promise.all([
          Promise.all(frames.map(pngBase64)),
          Promise.all(track.uploads.map(pngBase64)),
        ]);
        const confirmed = await sessionCall(`${this.#sessionUrl}/${session.id}/verify`, {
          nonce: session.nonce,
          frames: pngs,
          challenge: { frames: trackPngs, times: track.times.concat(frameTimes) },
          client: { pSpoof: verdict.pSpoof, live: verdict.live, captureMs },
        });
        if (run !== this.#run) return;
        verdict.timings.sessionMs = performance.now() - sent;
        verdict.session = { id: confirmed.id, token: confirmed.token, live: confirmed.live, pSpoof: confirmed.pSpoof, verdict: confirmed.verdict, findings: confirmed.findings };
        const rt = await loadRuntime();
        const code = confirmed.findings.find((f) => rt.challengeCodes().includes(f)) ?? null;
        verdict.challenge = { steps: track.steps, passed: code === null, code, drawnBy: 'server' };
        verdict.live = verdict.live && confirmed.live;
      }
      if (share) verdict.frames = frames;
      this.#set('result', verdict);
      this.dispatchEvent(new CustomEvent('result', { detail: verdict, bubbles: true, composed: true }));
    } catch (error) {
      if (run === this.#run) this.#fail(error);
    }
  }

  /**
   * Prompts the challenge's steps one by one and follows them look by look (the face detector in
   * the worker, liveness-core's tracker here) until all are done, a step runs out of time, or the
   * track is full; the server (or checkTrack) decides on the track either way. Resolves to the
   * track: { steps, looks: [{ face, width }], times (ms since `origin`), uploads (frames scaled
   * for the server, with `session` only), origin }.
   */
  async #performChallenge(run, camera, steps) {
    const rt = await loadRuntime();
    const tracker = new rt.ChallengeTracker(steps ?? undefined);
    const track = { steps: tracker.steps, looks: [], times: [], uploads: [], origin: performance.now() };
    const upload = this.#session !== null;
    let due = 0;
    let dueSince = track.origin;
    try {
      this.#challenge = { steps: track.steps, progress: { step: 0, steps: track.steps.length, due: track.steps[0], pose: null, done: false, astray: null } };
      this.#render();
      while (run === this.#run && track.looks.length < MAX_TRACK_FRAMES) {
        const looked = performance.now();
        const [frame] = await camera.capture(1, 0);
        if (run !== this.#run) break;
        const at = performance.now() - track.origin;
        const small = upload ? await scaled(frame, TRACK_SIDE) : null;
        const { plain, transfer } = framesForWorker([frame], false);
        const look = await ask({ op: 'guide', frame: plain[0], previous: null }, { transfer });
        if (run !== this.#run) break;
        const progress = tracker.push(look.face ?? null);
        // Only looks with one face join the track: the server's gate would refuse the others.
        if (look.face) {
          track.looks.push({ face: look.face, width: frame.width });
          track.times.push(at);
          if (small) track.uploads.push(small);
        }
        this.#challenge = { steps: track.steps, progress };
        this.#render();
        this.dispatchEvent(new CustomEvent('challenge', { detail: { ...progress, stepCodes: track.steps }, bubbles: true, composed: true }));
        // Done, or a turn held that was not asked for: the challenge failed (checkTrack says so).
        if (progress.done || progress.astray) break;
        if (progress.step !== due) {
          due = progress.step;
          dueSince = performance.now();
        } else if (performance.now() - dueSince > STEP_TIMEOUT_MS) {
          break;
        }
        const wait = CHALLENGE_INTERVAL_MS - (performance.now() - looked);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    } finally {
      tracker.free();
      this.#challenge = null;
    }
    return track;
  }

  /** Stops the camera and any check under way, and returns to idle. */
  stop() {
    this.#run += 1;
    this.#releaseCamera();
    if (this.#state !== 'idle') this.#set('idle');
  }

  /** Looks at the preview a few times a second and tells the user how to place their face. */
  async #guide(run) {
    let previous = null;
    let steadyLooks = 0;
    const autoAfter = this.hasAttribute('auto-capture') ? Number(this.getAttribute('auto-capture')) || 0 : null;
    const since = performance.now();
    while (run === this.#run && this.#state === 'preview' && this.#camera) {
      const looked = performance.now();
      try {
        const [frame] = await this.#camera.capture(1, 0);
        if (run !== this.#run || this.#state !== 'preview') return;
        const { plain, transfer } = framesForWorker([frame], false);
        const look = await ask({ op: 'guide', frame: plain[0], previous }, { transfer });
        if (run !== this.#run || this.#state !== 'preview') return;
        steadyLooks = look.guidance === 'good' && look.steady ? steadyLooks + 1 : 0;
        previous = look.face;
        this.#guidance = look;
        this.#render();
        this.dispatchEvent(new CustomEvent('guidance', { detail: look, bubbles: true, composed: true }));
        // Auto-capture: a well-placed face that held still for two looks in a row.
        if (autoAfter !== null && steadyLooks >= 2 && performance.now() - since >= autoAfter) {
          this.capture();
          return;
        }
      } catch {
        // Guidance is advice: a failed look leaves the last advice up, and capture still works.
      }
      const wait = GUIDE_INTERVAL_MS - (performance.now() - looked);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }

  #onProgress(run, loaded, total) {
    if (run !== this.#run || !total) return;
    this.#progress = Math.min(1, loaded / total);
    this.#render();
    this.dispatchEvent(new CustomEvent('progress', { detail: { loaded, total }, bubbles: true, composed: true }));
  }

  #onButton() {
    if (this.#state === 'preview') this.capture();
    else this.start();
  }

  /**
   * Which camera to ask for (`ask`): the user's choice in the picker; else the `camera` attribute
   * (a device id, or `user` / `environment`); else the choice remembered for this origin, with the
   * user-facing camera as `fallback` should it be gone; else the user-facing camera.
   */
  #cameraConstraints() {
    const size = { width: { ideal: 640 }, height: { ideal: 480 } };
    const facing = (mode) => ({ facingMode: mode, ...size });
    const device = (id) => ({ deviceId: { exact: id }, ...size });
    const asked = this.#chosenCamera ?? this.getAttribute('camera');
    if (asked === 'user' || asked === 'environment') return { ask: facing(asked) };
    if (asked) return { ask: device(asked) };
    const remembered = this.#rememberedCamera();
    return remembered ? { ask: device(remembered), fallback: facing('user') } : { ask: facing('user') };
  }

  /** Whether the last choice is kept for this origin (`remember-camera="off"` opts out). */
  get #remembers() {
    return this.getAttribute('remember-camera') !== 'off';
  }

  #rememberedCamera() {
    if (!this.#remembers) return null;
    try {
      return localStorage.getItem(CAMERA_KEY);
    } catch {
      return null; // storage blocked (private mode, sandboxed frame): nothing remembered
    }
  }

  /** After the camera opened: mirror only a user-facing camera, tell the page, fill the picker. */
  async #cameraOpened(run) {
    const track = this.#ui.video.srcObject?.getVideoTracks?.()[0];
    const settings = track?.getSettings?.() ?? {};
    // Laptop cameras say no facing mode: they face the user.
    this.dataset.mirrored = String(settings.facingMode !== 'environment');
    const device = { deviceId: settings.deviceId ?? null, label: track?.label ?? '', facingMode: settings.facingMode ?? null };
    this.dispatchEvent(new CustomEvent('camera-change', { detail: device, bubbles: true, composed: true }));
    if (!this.hasAttribute('camera-picker')) return;
    // Device labels are only given once the camera is allowed, i.e. now.
    const inputs = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'videoinput');
    if (run !== this.#run) return;
    const picker = this.#ui.cameraPicker;
    picker.replaceChildren(
      ...inputs.map((d, i) => {
        const option = document.createElement('option');
        option.value = d.deviceId;
        option.textContent = d.label || `${this.#texts.camera} ${i + 1}`;
        option.selected = d.deviceId === device.deviceId;
        return option;
      }),
    );
    this.#ui.cameraChoice.hidden = inputs.length < 2;
  }

  /** The user picked another camera: remember it (unless opted out) and restart the preview. */
  #chooseCamera(deviceId) {
    // In the preview (or before a check); never in the middle of one.
    if (!deviceId || (STATES[this.#state].busy && this.#state !== 'preview')) return;
    this.#chosenCamera = deviceId;
    if (this.#remembers) {
      try {
        localStorage.setItem(CAMERA_KEY, deviceId);
      } catch {
        // storage blocked: the choice holds for this page only
      }
    }
    this.stop();
    this.start();
  }

  #releaseCamera() {
    if (this.#camera) {
      this.#camera.stop();
      this.#camera.free();
      this.#camera = null;
    }
  }

  #fail(error) {
    this.#run += 1; // whatever is still pending for this check gives up
    this.#releaseCamera();
    const code = errorCode(error);
    const message = error?.message ?? String(error);
    const refused = code in DEFAULT_TEXTS.refused;
    this.#set(refused ? 'refused' : 'error', { code, message });
    // Not bubbling: an `error` event reaching window would look like a script error to the page.
    this.dispatchEvent(new CustomEvent(refused ? 'refused' : 'error', { detail: { code, message } }));
  }

  #set(state, detail) {
    const previous = this.#state;
    this.#state = state;
    this.#detail = detail;
    this.#render();
    this.dispatchEvent(
      new CustomEvent('state', {
        detail: { state, previous, ...(detail?.code ? { code: detail.code } : {}) },
        bubbles: true,
        composed: true,
      }),
    );
  }

  /** The status text of the current state (STATES[state].text, or one chosen by its detail). */
  #statusText() {
    const t = this.#texts;
    const d = this.#detail;
    switch (this.#state) {
      case 'idle':
        return this.#sessionUrl ? t.introSession : t.intro;
      case 'preview':
        return t.guidance[this.#guidance?.guidance] ?? t.guidance['off-centre'];
      case 'challenge': {
        const p = this.#challenge?.progress;
        if (!p || p.done) return t.capturing;
        return t.stepProgress
          .replace('{step}', this.#number(p.step + 1))
          .replace('{steps}', this.#number(p.steps))
          .replace('{instruction}', t.steps[p.due] ?? p.due);
      }
      case 'result':
        if (d.live) return t.live;
        return (d.challenge?.code && t.challengeFailed[d.challenge.code]) || t.spoof;
      case 'refused':
        return t.refused[d.code] ?? t.refused['no-face'];
      case 'error':
        return t.errors[d.code] ?? t.errors.inference;
      default:
        return t[STATES[this.#state].text];
    }
  }

  #render() {
    const t = this.#texts;
    const { status, progress, score, button } = this.#ui;
    const state = this.#state;
    const spec = STATES[state];
    this.dataset.state = state;
    status.textContent = this.#statusText();
    this.#ui.cameraChoice.querySelector('span').textContent = t.camera;
    const verdict = state === 'result' ? this.#detail : null;
    if (verdict) this.dataset.verdict = verdict.live ? 'live' : 'spoof';
    else delete this.dataset.verdict;
    score.textContent = verdict
      ? t.score
          .replace('{p}', this.#number(verdict.pSpoof, { minimumFractionDigits: 4, maximumFractionDigits: 4 }))
          .replace('{t}', this.#number(verdict.threshold, { minimumFractionDigits: 4, maximumFractionDigits: 4 }))
      : '';
    const code = state === 'error' || state === 'refused' ? this.#detail.code : null;
    if (code) this.dataset.error = code;
    else delete this.dataset.error;
    const due = state === 'challenge' && !this.#challenge?.progress?.done ? this.#challenge?.progress?.due : null;
    if (due) this.dataset.step = due;
    else delete this.dataset.step;
    const guidance = state === 'preview' ? this.#guidance?.guidance : null;
    if (guidance) this.dataset.guidance = guidance;
    else delete this.dataset.guidance;
    progress.textContent =
      spec.busy && this.#progress !== null && this.#progress < 1
        ? t.loading.replace('{percent}', this.#number(this.#progress, { style: 'percent' }))
        : '';
    if (spec.button === null) {
      if (this.shadowRoot.activeElement === button) this.#refocus = true;
      button.hidden = true;
    } else {
      button.textContent = t[spec.button];
      button.hidden = false;
      // Keyboard users keep their place across the states in which the button is hidden.
      if (this.#refocus) button.focus();
      this.#refocus = false;
    }
  }

  async #showModelNote() {
    // The model's data terms travel with it: a research-use model says so wherever it is shown.
    try {
      const response = await fetch(this.#manifest ?? manifestUrl(this.#model));
      if (!response.ok) return;
      const manifest = await response.json();
      const data = manifest?.data;
      if (data?.name) {
        this.#ui.note.textContent = this.#texts.modelNote.replace('{data}', data.name).replace('{terms}', data.terms);
      }
    } catch {
      // The note is informative only; a broken manifest surfaces when the check starts.
    }
  }
}

/** The tag this module defines on import in a browser. */
export const DEFAULT_TAG = 'liveness-check';

/**
 * Defines the element under `tag` (default `liveness-check`) and returns its class; the class
 * already registered under `tag` if there is one. Another tag gets a subclass of its own (a
 * class can be registered once). Returns `null` where there is no `customElements` (a server).
 */
export function define(tag = DEFAULT_TAG) {
  if (typeof customElements === 'undefined') return null;
  const existing = customElements.get(tag);
  if (existing) return existing;
  const element = tag === DEFAULT_TAG ? LivenessCheck : class extends LivenessCheck {};
  customElements.define(tag, element);
  return element;
}

define();

/**
 * Mounts a widget inside `container` and returns it. Options: tag (defined if need be), model,
 * manifest, backend, interval, autoCapture, shareFrames, preload, camera, cameraPicker,
 * rememberCamera, session, challenge, texts, and on{Result,Error,State,Guidance,Refused,Challenge,
 * CameraChange}.
 */
export function mount(container, options = {}) {
  const tag = options.tag ?? DEFAULT_TAG;
  define(tag);
  const el = document.createElement(tag);
  for (const [option, attribute] of [
    ['model', 'model'],
    ['manifest', 'manifest'],
    ['backend', 'backend'],
    ['session', 'session'],
    ['challenge', 'challenge'],
  ]) {
    if (options[option]) el.setAttribute(attribute, options[option]);
  }
  if (options.interval !== undefined) el.setAttribute('interval', String(options.interval));
  if (options.autoCapture !== undefined) el.setAttribute('auto-capture', String(options.autoCapture));
  if (options.shareFrames) el.setAttribute('share-frames', '');
  if (options.preload) el.setAttribute('preload', '');
  if (options.camera) el.setAttribute('camera', options.camera);
  if (options.cameraPicker) el.setAttribute('camera-picker', '');
  if (options.rememberCamera === false) el.setAttribute('remember-camera', 'off');
  if (options.texts) el.texts = options.texts;
  for (const [option, event] of [
    ['onResult', 'result'],
    ['onError', 'error'],
    ['onState', 'state'],
    ['onGuidance', 'guidance'],
    ['onRefused', 'refused'],
    ['onChallenge', 'challenge'],
    ['onCameraChange', 'camera-change'],
  ]) {
    if (options[option]) el.addEventListener(event, (e) => options[option](e.detail));
  }
  container.append(el);
  return el;
}
