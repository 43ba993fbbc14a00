// <liveness-check>: the embeddable liveness widget.
//
// Embedding is one tag, `<liveness-check model="/models/default.onnx"></liveness-check>`, or one
// call, `mount(element, { model })`. The widget asks for the camera, shows a preview with a face
// guide, captures five frames, stops the camera, and runs the model on this device through the
// wasm module in ./pkg (camera capture, the trainer's own preprocessing, wonnx on WebGPU). No frame
// leaves the device unless the host page asks for them (`share-frames`).
//
// Everything it loads is relative to this file (no CDN), and it needs no inline script or style,
// so it runs under `script-src 'self' 'wasm-unsafe-eval'; style-src 'self'`.

/** The number of frames the model takes (liveness_core::FRAMES). */
export const FRAMES = 5;

/** Milliseconds between captured frames unless the `interval` attribute says otherwise. */
export const DEFAULT_INTERVAL_MS = 200;

const BASE = new URL('./', import.meta.url);

/** Texts shown to the user; replace any of them through `element.texts` or `mount(…, {texts})`. */
export const DEFAULT_TEXTS = Object.freeze({
  intro: 'Show that you are a live person. The camera pictures stay on this device.',
  start: 'Start check',
  starting: 'Asking for camera access…',
  preview: 'Centre your face in the oval, then press Capture.',
  capture: 'Capture',
  capturing: 'Hold still…',
  analysing: 'Checking…',
  live: 'Live person confirmed.',
  spoof: 'We could not confirm a live person. Face the camera in good light and try again.',
  retry: 'Try again',
  again: 'Check again',
  score: 'Spoof probability {p} (threshold {t})',
  modelNote: 'Model trained on {data}. Terms: {terms}.',
  errors: Object.freeze({
    'camera-denied':
      'Camera access was blocked. Allow the camera for this site in your browser settings, then try again.',
    'camera-missing': 'No camera was found. Connect a camera, then try again.',
    'camera-in-use': 'The camera is in use by another application. Close it, then try again.',
    'camera-failed': 'The camera could not be started.',
    'webgpu-unavailable':
      'This browser cannot run the check on this device: WebGPU is unavailable. Try a current Chrome or Edge.',
    'model-fetch': 'The liveness model could not be downloaded. Check your connection, then try again.',
    'model-hash': 'The liveness model failed its integrity check and was not used.',
    'model-invalid': 'The liveness model could not be loaded.',
    frames: 'The captured pictures could not be used.',
    'device-lost': 'The graphics device stopped working. Try again.',
    inference: 'The check could not run. Try again.',
  }),
});

const BUSY = new Set(['starting', 'preview', 'capturing', 'analysing']);

// ---------------------------------------------------------------------------------------------
// The wasm runtime, shared by every widget of the page. A panic inside it (wonnx panics on GPU
// errors) leaves the instance unusable: the fatal listener rejects what is pending and the next
// use imports a fresh instance.

let runtime = null;
let generation = 0;
const fatalWaiters = new Set();

function loadRuntime() {
  if (!runtime) {
    generation += 1;
    const url = new URL(`pkg/liveness_wasm.js${generation > 1 ? `?instance=${generation}` : ''}`, BASE);
    const loading = import(url.href).then(async (rt) => {
      await rt.default({ module_or_path: new URL('pkg/liveness_wasm_bg.wasm', BASE) });
      rt.setFatalListener((error) => {
        if (runtime === loading) runtime = null;
        for (const reject of fatalWaiters) reject(error);
      });
      return { rt, models: new Map() };
    });
    runtime = loading;
    loading.catch(() => {
      if (runtime === loading) runtime = null;
    });
  }
  return runtime;
}

/** Resolves or rejects like `promise`, or rejects when the runtime dies first. */
function guard(promise) {
  let reject;
  const fatal = new Promise((_, r) => {
    reject = r;
    fatalWaiters.add(r);
  });
  return Promise.race([promise, fatal]).finally(() => fatalWaiters.delete(reject));
}

function modelFor(state, model, manifest) {
  const key = `${model}\n${manifest}`;
  let loading = state.models.get(key);
  if (!loading) {
    loading = state.rt.LivenessModel.load(model, manifest);
    state.models.set(key, loading);
    // A failed load is retried next time rather than remembered.
    loading.catch(() => state.models.delete(key));
  }
  return loading;
}

function errorCode(error) {
  return error && error.name === 'LivenessError' && typeof error.code === 'string' ? error.code : 'inference';
}

function manifestUrlOf(model) {
  const url = new URL(model, document.baseURI);
  url.pathname = url.pathname.replace(/\.onnx$/, '') + '.json';
  return url.href;
}

// ---------------------------------------------------------------------------------------------

export class LivenessCheck extends HTMLElement {
  static get observedAttributes() {
    return ['model'];
  }

  #texts = DEFAULT_TEXTS;
  #state = 'idle';
  #camera = null;
  #modelLoading = null;
  #run = 0; // bumped on every start, stop and failure, so that a stale async step gives up
  #refocus = false; // the button had keyboard focus when it was hidden
  #detail = null; // the verdict in `result`, { code, message } in `error`
  #ui;

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = new URL('liveness-check.css', BASE).href;
    const box = document.createElement('div');
    box.className = 'box';
    box.setAttribute('part', 'box');
    box.innerHTML = `
      <div class="stage" part="stage">
        <video muted playsinline aria-hidden="true"></video>
        <div class="guide" aria-hidden="true"></div>
      </div>
      <p class="status" role="status" aria-live="polite"></p>
      <p class="score" part="score"></p>
      <div class="actions"><button type="button" class="action" part="button"></button></div>
      <p class="note" part="note"></p>`;
    root.append(link, box);
    this.#ui = {
      video: box.querySelector('video'),
      status: box.querySelector('.status'),
      score: box.querySelector('.score'),
      button: box.querySelector('button'),
      note: box.querySelector('.note'),
    };
    this.#ui.button.addEventListener('click', () => this.#onButton());
  }

  connectedCallback() {
    this.#render();
    this.#showModelNote();
  }

  disconnectedCallback() {
    this.stop();
  }

  attributeChangedCallback() {
    if (this.isConnected) this.#showModelNote();
  }

  /** The current state: idle, starting, preview, capturing, analysing, result or error. */
  get state() {
    return this.#state;
  }

  /** The texts in use (defaults merged with what was set). */
  get texts() {
    return this.#texts;
  }

  /** Replaces some or all texts; `errors` is merged per code. */
  set texts(texts) {
    this.#texts = {
      ...DEFAULT_TEXTS,
      ...texts,
      errors: { ...DEFAULT_TEXTS.errors, ...(texts?.errors ?? {}) },
    };
    this.#render();
  }

  get #model() {
    return this.getAttribute('model') || new URL('../models/default.onnx', BASE).href;
  }

  /** The manifest's address: the note under the check and the model load read the same one. */
  get #manifest() {
    return this.getAttribute('manifest') || manifestUrlOf(this.#model);
  }

  get #interval() {
    const v = Number(this.getAttribute('interval') ?? NaN);
    return Number.isFinite(v) && v >= 0 ? v : DEFAULT_INTERVAL_MS;
  }

  /** Asks for the camera and shows the preview. Does nothing while a check is under way. */
  async start() {
    if (BUSY.has(this.#state)) return;
    const run = ++this.#run;
    this.#set('starting');
    try {
      const state = await guard(loadRuntime());
      if (run !== this.#run) return;
      // Before the camera: without WebGPU there is nothing to ask the user for.
      await guard(state.rt.webgpuAvailable());
      if (run !== this.#run) return;
      this.#modelLoading = modelFor(state, this.#model, this.#manifest);
      // A model that cannot load is reported at once, not after the user has posed for nothing.
      this.#modelLoading.catch((error) => {
        if (run === this.#run && (this.#state === 'starting' || this.#state === 'preview')) this.#fail(error);
      });
      const constraints = { facingMode: 'user', width: { ideal: 640 }, height: { ideal: 480 } };
      const camera = await guard(state.rt.Camera.open(this.#ui.video, constraints));
      if (run !== this.#run) {
        camera.stop();
        camera.free();
        return;
      }
      this.#camera = camera;
      this.#set('preview');
      const auto = this.getAttribute('auto-capture');
      if (auto !== null) {
        const delay = Number(auto) || 0;
        setTimeout(() => {
          if (run === this.#run && this.#state === 'preview') this.capture();
        }, delay);
      }
    } catch (error) {
      if (run === this.#run) this.#fail(error);
    }
  }

  /** Captures the frames (from the preview state) and runs the check. */
  async capture() {
    if (this.#state !== 'preview' || !this.#camera) return;
    const run = this.#run;
    const camera = this.#camera;
    this.#set('capturing');
    try {
      const started = performance.now();
      const frames = await guard(camera.capture(FRAMES, this.#interval));
      const captureMs = performance.now() - started;
      this.#releaseCamera();
      if (run !== this.#run) return;
      this.#set('analysing');
      const waited = performance.now();
      const model = await guard(this.#modelLoading);
      const modelWaitMs = performance.now() - waited;
      if (run !== this.#run) return;
      const verdict = await guard(model.check(frames));
      if (run !== this.#run) return;
      const load = model.loadTimings;
      verdict.timings = {
        captureMs,
        modelWaitMs,
        ...verdict.timings,
        modelFetchMs: load.fetchMs,
        modelVerifyMs: load.verifyMs,
        modelSessionMs: load.sessionMs,
      };
      if (this.hasAttribute('share-frames')) verdict.frames = frames;
      this.#set('result', verdict);
      this.dispatchEvent(new CustomEvent('result', { detail: verdict, bubbles: true, composed: true }));
    } catch (error) {
      if (run === this.#run) this.#fail(error);
    }
  }

  /** Stops the camera and any check under way, and returns to idle. */
  stop() {
    this.#run += 1;
    this.#releaseCamera();
    if (this.#state !== 'idle') this.#set('idle');
  }

  #onButton() {
    if (this.#state === 'preview') this.capture();
    else this.start();
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
    this.#set('error', { code, message });
    // Not bubbling: an `error` event reaching window would look like a script error to the page.
    this.dispatchEvent(new CustomEvent('error', { detail: { code, message } }));
  }

  #set(state, detail) {
    const previous = this.#state;
    this.#state = state;
    this.#detail = detail;
    this.#render();
    this.dispatchEvent(
      new CustomEvent('state', { detail: { state, previous, ...(detail?.code ? { code: detail.code } : {}) }, bubbles: true, composed: true }),
    );
  }

  #render() {
    const t = this.#texts;
    const { status, score, button } = this.#ui;
    const state = this.#state;
    this.dataset.state = state;
    let text;
    let label = null;
    score.textContent = '';
    switch (state) {
      case 'idle':
        text = t.intro;
        label = t.start;
        break;
      case 'preview':
        text = t.preview;
        label = t.capture;
        break;
      case 'result': {
        const v = this.#detail;
        this.dataset.verdict = v.live ? 'live' : 'spoof';
        text = v.live ? t.live : t.spoof;
        score.textContent = t.score.replace('{p}', v.pSpoof.toFixed(4)).replace('{t}', v.threshold.toFixed(4));
        label = t.again;
        break;
      }
      case 'error':
        text = t.errors[this.#detail.code] ?? t.errors.inference;
        label = t.retry;
        break;
      default:
        text = t[state];
    }
    if (state !== 'result') delete this.dataset.verdict;
    if (state === 'error') this.dataset.error = this.#detail.code;
    else delete this.dataset.error;
    status.textContent = text;
    if (label === null) {
      if (this.shadowRoot.activeElement === button) this.#refocus = true;
      button.hidden = true;
    } else {
      button.textContent = label;
      button.hidden = false;
      // Keyboard users keep their place across the states in which the button is hidden.
      if (this.#refocus) button.focus();
      this.#refocus = false;
    }
  }

  async #showModelNote() {
    // The model's data terms travel with it: a research-use model says so wherever it is shown.
    const url = this.#manifest;
    try {
      const response = await fetch(url);
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

if (!customElements.get('liveness-check')) customElements.define('liveness-check', LivenessCheck);

/**
 * Mounts a widget inside `container` and returns it.
 * Options: model, manifest, interval, autoCapture, shareFrames, texts, and on{Result,Error,State}.
 */
export function mount(container, options = {}) {
  const el = document.createElement('liveness-check');
  if (options.model) el.setAttribute('model', options.model);
  if (options.manifest) el.setAttribute('manifest', options.manifest);
  if (options.interval !== undefined) el.setAttribute('interval', String(options.interval));
  if (options.autoCapture !== undefined) el.setAttribute('auto-capture', String(options.autoCapture));
  if (options.shareFrames) el.setAttribute('share-frames', '');
  if (options.texts) el.texts = options.texts;
  if (options.onResult) el.addEventListener('result', (e) => options.onResult(e.detail));
  if (options.onError) el.addEventListener('error', (e) => options.onError(e.detail));
  if (options.onState) el.addEventListener('state', (e) => options.onState(e.detail));
  container.append(el);
  return el;
}
