// <liveness-check>: the embeddable liveness widget.
//
// Embedding is one tag, `<liveness-check model="/models/default.onnx"></liveness-check>`, or one
// call, `mount(element, { model })`. The widget asks for the camera, shows a preview with live
// guidance from a face detector, asks for a short head-pose challenge (the session server's, or
// one drawn here), captures five frames, stops the camera, and runs the model on this device.
//
// The page's main thread never loads the wasm module: it shows the preview and grabs frames
// (capture.js). A Web Worker (liveness-worker.js, spoken to through worker-client.js) holds the
// module and runs the face detector, the challenge tracker, the trainer's own preprocessing and
// inference — wonnx on a hardware WebGPU adapter, tract on the CPU everywhere else. The states and
// texts are texts.js; the host's session server is spoken to through session-client.js. No frame
// leaves the device unless the host page asks for them (`share-frames`, or a `session` endpoint
// of the host's own server).
//
// Everything it loads is relative to this file (no CDN), and it needs no inline script or style,
// so it runs under `script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; worker-src 'self'`.

import { Camera } from './capture.js';
import { pngBase64, scaled, sessionCall } from './session-client.js';
import { DEFAULT_TEXTS, RTL, STATES, localeTable, mergeTexts, pickLocale } from './texts.js';
import { ask, framesForWorker, loadModel, look } from './worker-client.js';

export { DEFAULT_TEXTS, LOCALES, STATES, pickLocale } from './texts.js';

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

function errorCode(error) {
  return error && error.name === 'LivenessError' && typeof error.code === 'string' ? error.code : 'inference';
}

// ---------------------------------------------------------------------------------------------

// On a server (SSR) there is no HTMLElement: the module still imports, defines nothing, throws
// nothing.
const ElementBase = globalThis.HTMLElement ?? class {};

export class LivenessCheck extends ElementBase {
  static get observedAttributes() {
    return ['model', 'manifest', 'backend', 'lang'];
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
  /** The model spec (model, manifest, backend) whose load succeeded, as a key: `ready` then. */
  #loaded = null;
  #run = 0; // bumped on every start, stop and failure, so that a stale async step gives up
  #refocus = false; // the button had keyboard focus when it was hidden
  #detail = null; // the verdict in `result`, { code, message } in `error` and `refused`
  #guidance = null; // the last look of the face detector in `preview`
  #progress = null; // download progress of the wasm module and the model together, 0..1
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
   * Fetches and prepares the wasm module and the model now (what `preload` does on connect), so
   * that start() does not wait for them: `idle` → `loading` (with progress) → `ready`. Resolves
   * once both are loaded; a failure returns to `idle` and is reported when the check starts.
   */
  async preload() {
    const spec = this.#modelSpec;
    if (this.#state === 'idle') {
      this.#progress = 0;
      this.#set('loading');
    }
    const loading = loadModel(spec, (loaded, total) => {
      if (this.#state === 'loading') this.#showProgress(loaded, total);
    });
    this.#modelLoading ??= loading;
    const loaded = await loading.then(
      () => true,
      () => false,
    );
    if (loaded) this.#loaded = JSON.stringify(spec);
    if (this.#state === 'loading') {
      this.#progress = null;
      this.#set(this.#readyState);
    }
  }

  /** `ready` when the model of the current attributes is loaded, else `idle`. */
  get #readyState() {
    return this.#loaded === JSON.stringify(this.#modelSpec) ? 'ready' : 'idle';
  }

  /** What the worker loads: the model, its manifest and the backend asked for. */
  get #modelSpec() {
    return { model: this.#model, manifest: this.#manifest, backend: this.#backend };
  }

  disconnectedCallback() {
    this.stop();
  }

  attributeChangedCallback(name) {
    if (!this.isConnected) return;
    if (name === 'lang') this.#applyLocale();
    else {
      this.#showModelNote();
      // Another model is not loaded yet.
      if (this.#state === 'ready' && this.#readyState === 'idle') this.#set('idle');
    }
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
      // Before the camera: a forced WebGPU engine without an adapter leaves nothing to ask for.
      if (this.#backend === 'webgpu') await ask({ op: 'backend', backend: 'webgpu' });
      if (run !== this.#run) return;
      // With a session endpoint: a server nonce binds this capture (before the camera opens).
      this.#session = null;
      if (this.#sessionUrl) {
        const session = await sessionCall(this.#sessionUrl);
        if (run !== this.#run) return;
        this.#session = session;
      }
      this.#progress = 0;
      const spec = this.#modelSpec;
      this.#modelLoading = loadModel(spec, (loaded, total) => {
        if (run === this.#run) this.#showProgress(loaded, total);
      });
      this.#modelLoading.then(
        () => {
          this.#loaded = JSON.stringify(spec);
          this.#progress = null;
          if (run === this.#run) this.#render();
        },
        // A model that cannot load is reported at once, not after the user has posed for nothing.
        (error) => {
          if (run === this.#run && (this.#state === 'starting' || this.#state === 'preview')) this.#fail(error);
        },
      );
      const { ask: wanted, fallback } = this.#cameraConstraints();
      const camera = await Camera.open(this.#ui.video, wanted).catch((error) => {
        // A remembered camera that is gone (or busy) gives way to the default one.
        if (!fallback || run !== this.#run) throw error;
        return Camera.open(this.#ui.video, fallback);
      });
      if (run !== this.#run) {
        camera.stop();
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
        { op: 'check', ...this.#modelSpec, frames: plain },
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
          const looks = track.looks.concat(verdict.faces.map((face) => ({ face, width: frames[0].width })));
          const checked = await ask({ op: 'check-track', steps: track.steps, looks, times: track.times.concat(frameTimes) });
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
        const codes = (await ask({ op: 'codes' })).challenge;
        const code = confirmed.findings.find((f) => codes.includes(f)) ?? null;
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
   * Prompts the challenge's steps one by one and follows them look by look (the face detector and
   * liveness-core's tracker, both in the worker) until all are done, a step runs out of time, or the
   * track is full; the server (or checkTrack) decides on the track either way. Resolves to the
   * track: { steps, looks: [{ face, width }], times (ms since `origin`), uploads (frames scaled
   * for the server, with `session` only), origin }.
   */
  async #performChallenge(run, camera, steps) {
    const { tracker, steps: drawn } = await ask({ op: 'challenge', steps });
    const track = { steps: drawn, looks: [], times: [], uploads: [], origin: performance.now() };
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
        const seen = await look(frame, null, tracker);
        if (run !== this.#run) break;
        const { progress } = seen;
        // Only looks with one face join the track: the server's gate would refuse the others.
        if (seen.face) {
          track.looks.push({ face: seen.face, width: frame.width });
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
      this.#challenge = null;
      ask({ op: 'challenge-end', tracker }).catch(() => {}); // a dead worker took it with it
    }
    return track;
  }

  /** Stops the camera and any check under way, and returns to idle. */
  stop() {
    this.#run += 1;
    this.#releaseCamera();
    const rest = this.#readyState;
    if (this.#state !== rest) this.#set(rest);
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
        const seen = await look(frame, previous);
        if (run !== this.#run || this.#state !== 'preview') return;
        steadyLooks = seen.guidance === 'good' && seen.steady ? steadyLooks + 1 : 0;
        previous = seen.face;
        this.#guidance = seen;
        this.#render();
        this.dispatchEvent(new CustomEvent('guidance', { detail: seen, bubbles: true, composed: true }));
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

  /** Download progress of the wasm module and the model together. */
  #showProgress(loaded, total) {
    if (!total) return;
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
    this.#camera?.stop();
    this.#camera = null;
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
      case 'loading':
      case 'ready':
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
      (spec.busy || state === 'loading') && this.#progress !== null && this.#progress < 1
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
