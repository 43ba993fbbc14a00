// Types of web/liveness-check.js, the <liveness-check> widget. A browser test checks that the
// unions below list exactly the wasm module's codes (errorCodes(), guidanceCodes()) and the
// widget's STATES.

/** The number of frames the model takes. */
export const FRAMES: 5;

/** Milliseconds between captured frames unless the `interval` attribute says otherwise. */
export const DEFAULT_INTERVAL_MS: 200;

/** Milliseconds between two looks of the face detector at the preview. */
export const GUIDE_INTERVAL_MS: 250;

/** Milliseconds between two looks during the head-pose challenge. */
export const CHALLENGE_INTERVAL_MS: 200;

/** The most time one challenge step may take, ms. */
export const STEP_TIMEOUT_MS: 6000;

/** Most looks in one challenge's track. */
export const MAX_TRACK_FRAMES: 100;

/** Widest or tallest track frame sent to a session server, pixels. */
export const TRACK_SIDE: 240;

/** What the widget is doing. */
export type LivenessState =
  | 'idle'
  /** Fetching the wasm module and the model before a check (`preload`), start() still works. */
  | 'loading'
  /** The module and the model are loaded, nothing under way: start() opens the camera at once. */
  | 'ready'
  | 'starting'
  | 'preview'
  /** The head-pose challenge: one step after another (event `challenge`). */
  | 'challenge'
  | 'capturing'
  | 'analysing'
  | 'result'
  | 'refused'
  | 'error';

/** A row of STATES: whether a check is under way, the status text key, the button's text key. */
export interface LivenessStateSpec {
  readonly busy: boolean;
  readonly text: keyof LivenessTexts | null;
  readonly button: keyof LivenessTexts | null;
}

/** Every state and how it renders. */
export const STATES: Readonly<Record<LivenessState, LivenessStateSpec>>;

/** The face gate's refusals: the frames got no verdict (state `refused`, event `refused`). */
export type LivenessRefusalCode = 'no-face' | 'multiple-faces';

/** The `code` of a failure (state `error`, event `error`). */
export type LivenessErrorCode =
  | 'webgpu-unavailable'
  | 'model-fetch'
  | 'model-hash'
  | 'model-invalid'
  | 'frames'
  | 'device-lost'
  | 'inference'
  | 'camera-denied'
  | 'camera-missing'
  | 'camera-in-use'
  | 'camera-failed'
  /** The `session` server refused or could not confirm the check. */
  | 'session';

/** Advice from the face detector while the user frames their face. */
export type LivenessGuidanceCode =
  | 'no-face'
  | 'multiple-faces'
  | 'too-far'
  | 'too-close'
  | 'off-centre'
  | 'too-dark'
  | 'good';

/** A step of the head-pose challenge (`left` and `right` are the user's own). */
export type LivenessStepCode = 'centre' | 'left' | 'right' | 'up' | 'down';

/** Why a challenge failed (client-only check or the session server's verdict). */
export type LivenessChallengeCode =
  | 'challenge-failed'
  | 'flat'
  | 'discontinuous'
  | 'repeated-frames'
  | 'too-fast';

/** The engine that ran the model. */
export type LivenessBackend = 'webgpu' | 'cpu';

/** Milliseconds spent in each stage of one check. */
export interface LivenessTimings {
  /** Grabbing the five frames from the camera (includes the intervals between them). */
  captureMs: number;
  /** Waiting for the model to finish loading after the capture (0 when it was ready). */
  modelWaitMs: number;
  /** The face detector on the five frames (in the worker). */
  detectMs: number;
  /** Crop, resize and normalise (the trainer's preprocessing, in wasm, in the worker). */
  preprocessMs: number;
  /** Running the model on its engine (WebGPU upload and read-back included). */
  inferenceMs: number;
  /** The whole round trip to the worker (transfer, detection, preprocessing, inference). */
  workerMs: number;
  /** Loading the model, once per page: download of the model and its manifest, */
  modelFetchMs: number;
  /** its SHA-256 check against the manifest, */
  modelVerifyMs: number;
  /** and the engine (wonnx session or tract plan). */
  modelSessionMs: number;
  /** With `session`: encoding the frames as PNG and the server's verify. */
  sessionMs?: number;
  /** The head-pose challenge, from its first look to the five frames. */
  challengeMs?: number;
}

/** A face box in frame pixels. */
export interface LivenessFace {
  x: number;
  y: number;
  width: number;
  height: number;
  score: number;
  keypoints: [number, number][];
}

/** What the `session` server confirmed (only with the `session` attribute). */
export interface LivenessSessionResult {
  /** The server's session id. */
  id: string;
  /** The signed verdict for the host's backend (verify it there, or ask GET /v1/sessions/{id}). */
  token: string;
  /** The server's own verdict on the same frames. */
  live: boolean;
  /** The server's pSpoof for the same frames (null when its face gate refused them). */
  pSpoof: number | null;
  /**
   * The signal that decided: `live`, `refused` (face gate), a LivenessChallengeCode, `attack`
   * (passive model), `mismatch` (the client's score disagrees) or `timing`.
   */
  verdict: string;
  /** The codes of every check that failed. */
  findings: string[];
}

/** The detail of the `result` event. */
export interface LivenessResult {
  /** `true` when a live person was seen (`pSpoof < threshold`, and confirmed by the server with `session`). */
  live: boolean;
  /** The model's probability that the frames show a presentation attack. */
  pSpoof: number;
  /** The model's raw output. */
  logit: number;
  /** The decision threshold on `pSpoof`, from the model's manifest. */
  threshold: number;
  /** The engine that ran the model, and why it was chosen. */
  backend: LivenessBackend;
  backendReason: string;
  /** The one face of each frame. */
  faces: LivenessFace[];
  timings: LivenessTimings;
  /** The five captured RGBA frames, only with the `share-frames` attribute. */
  frames?: ImageData[];
  /** The server's confirmation, only with the `session` attribute. */
  session?: LivenessSessionResult;
  /** The head-pose challenge (absent with `challenge="none"`). */
  challenge?: LivenessChallengeResult;
}

/** How the head-pose challenge went. */
export interface LivenessChallengeResult {
  /** The steps asked for. */
  steps: LivenessStepCode[];
  /** Every step performed in order by one continuous, three-dimensional face. */
  passed: boolean;
  /** Why not. */
  code: LivenessChallengeCode | null;
  /** `server`: the session server drew and checked it; `client`: this page did (weaker). */
  drawnBy: 'server' | 'client';
}

/** The detail of the `challenge` event (every look during the challenge). */
export interface LivenessChallengeProgress {
  /** The step due (0-based); equal to `steps` when all are done. */
  step: number;
  steps: number;
  due: LivenessStepCode | null;
  /** The last look's pose against the user's centre (nose offsets), or null without a face. */
  pose: { yaw: number; pitch: number } | null;
  done: boolean;
  /** A turn held that was neither due nor just done: the challenge failed. */
  astray: LivenessStepCode | null;
  stepCodes: LivenessStepCode[];
}

/** The detail of the `error` and `refused` events. */
export interface LivenessErrorDetail<Code = LivenessErrorCode> {
  code: Code;
  /** A developer-facing message naming what failed (the user sees the widget's text). */
  message: string;
}

/** The detail of the `guidance` event (a few times a second during the preview). */
export interface LivenessGuidance {
  guidance: LivenessGuidanceCode;
  /** The one person's face, or null. */
  face: LivenessFace | null;
  /** Whether the face held still since the previous look. */
  steady: boolean;
  detectMs: number;
}

/** The detail of the `state` event. */
export interface LivenessStateDetail {
  state: LivenessState;
  previous: LivenessState;
  /** Present when `state` is `error` or `refused`. */
  code?: LivenessErrorCode | LivenessRefusalCode;
}

/** The camera in use, in a `camera-change` event (when the camera opens, and on every pick). */
export interface LivenessCameraDetail {
  /** The device's id (`camera` attribute value to ask for it again). */
  deviceId: string | null;
  label: string;
  /** `user`, `environment`, or null when the device does not say (laptop cameras). */
  facingMode: string | null;
}

/**
 * The detail of the `progress` event: bytes of the wasm module and the model together (the
 * model's size joins `total` once its download starts).
 */
export interface LivenessProgress {
  loaded: number;
  total: number;
}

/**
 * Every text the widget shows; `{p}`/`{t}` in `score`, `{data}`/`{terms}` in `modelNote`,
 * `{step}`/`{steps}`/`{instruction}` in `stepProgress` and `{percent}` in `loading` (with its
 * percent sign, in the locale's way: `42 %` in French) are filled in.
 */
export interface LivenessTexts {
  intro: string;
  /** The idle text with a `session` endpoint (the pictures go to the host's server). */
  introSession: string;
  start: string;
  starting: string;
  capture: string;
  capturing: string;
  analysing: string;
  live: string;
  spoof: string;
  retry: string;
  again: string;
  score: string;
  /** Under the check: the model's training data and terms, from its manifest. */
  modelNote: string;
  /** While the model downloads. */
  loading: string;
  /** The camera picker's label (and the name of an unlabelled camera, with its number). */
  camera: string;
  /** The challenge's status line: `{step}` of `{steps}`, then the step's `{instruction}`. */
  stepProgress: string;
  /** The instruction of each challenge step. */
  steps: Record<LivenessStepCode, string>;
  /** The result's status line when the challenge decided. */
  challengeFailed: Record<LivenessChallengeCode, string>;
  /** The preview's status line, by guidance. */
  guidance: Record<LivenessGuidanceCode, string>;
  /** The `refused` state's status line, by refusal. */
  refused: Record<LivenessRefusalCode, string>;
  /** The `error` state's status line, by error. */
  errors: Record<LivenessErrorCode, string>;
}

export type PartialLivenessTexts = Partial<
  Omit<LivenessTexts, 'errors' | 'guidance' | 'refused' | 'steps' | 'challengeFailed'>
> & {
  steps?: Partial<Record<LivenessStepCode, string>>;
  challengeFailed?: Partial<Record<LivenessChallengeCode, string>>;
  guidance?: Partial<Record<LivenessGuidanceCode, string>>;
  refused?: Partial<Record<LivenessRefusalCode, string>>;
  errors?: Partial<Record<LivenessErrorCode, string>>;
};

export const DEFAULT_TEXTS: Readonly<LivenessTexts>;

/**
 * `<liveness-check model="/models/default.onnx">`. Attributes: `model` (URL of the ONNX file,
 * served by the host; default `/models/default.onnx` on the page's origin), `manifest` (default: NAME.json next to
 * NAME.onnx), `backend` (`auto` | `webgpu` | `cpu`; default auto: WebGPU on a hardware adapter,
 * the CPU engine otherwise), `interval` (ms between frames, default 200), `auto-capture`
 * (capture by itself once the face is well placed and steady, no sooner than this many ms after
 * the preview appears), `share-frames` (put the frames in the result), `session` (the address of
 * the host's session endpoint, e.g. `/v1/sessions`: the check is bound to a server nonce and the
 * server's head-pose challenge, the frames go to that server, and the result carries its signed
 * token), `challenge` (without `session`: `none` for the passive model only, or fixed steps such
 * as `centre,left,right,centre` for fake-camera tests; absent: a challenge drawn on the page,
 * weaker than the server's), `preload` (fetch the wasm module and the model on connect; without
 * it they are fetched when a check starts), `camera` (a device id, or `user` / `environment`;
 * default: the camera last picked on this origin, else the user-facing one), `camera-picker`
 * (a list of the cameras in the preview, after permission, when there are several),
 * `remember-camera="off"` (do not keep the picked camera in localStorage). Only a user-facing
 * camera's preview is mirrored. `lang` (a language tag; default: the nearest ancestor's `lang`,
 * then `navigator.languages`): the texts come from the matching shipped locale, with the
 * `texts` property on top, numbers are written the locale's way, and Arabic and Hebrew are laid
 * out right to left (the challenge's arrows still point to screen sides).
 *
 * Events: `result` (LivenessResult), `refused` and `error` (LivenessErrorDetail; they do not
 * bubble), `state`, `guidance`, `challenge` (LivenessChallengeProgress), `progress`,
 * `camera-change` (LivenessCameraDetail).
 */
export class LivenessCheck extends HTMLElement {
  readonly state: LivenessState;
  get texts(): Readonly<LivenessTexts>;
  set texts(texts: PartialLivenessTexts);
  /** Asks for the camera and shows the preview; ignored while a check is under way. */
  start(): Promise<void>;
  /** From the preview: the head-pose challenge, then the five frames, then the check. */
  capture(): Promise<void>;
  /** Stops the camera and any check under way: back to `ready` when the model is loaded, else `idle`. */
  stop(): void;
  /** The shipped locale in use (one of LOCALES), once chosen; see the `lang` attribute. */
  readonly locale: LivenessLocale | null;
  /**
   * Fetches and prepares the wasm module and the model now, so that start() does not wait for
   * them (the `preload` attribute does this on connect; without either, nothing is fetched
   * before a check starts): `idle` → `loading` (with `progress` events) → `ready`. A failure
   * returns to `idle` and is reported when the check starts.
   */
  preload(): Promise<void>;

  addEventListener(type: 'result', listener: (e: CustomEvent<LivenessResult>) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: 'error', listener: (e: CustomEvent<LivenessErrorDetail>) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: 'refused', listener: (e: CustomEvent<LivenessErrorDetail<LivenessRefusalCode>>) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: 'state', listener: (e: CustomEvent<LivenessStateDetail>) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: 'guidance', listener: (e: CustomEvent<LivenessGuidance>) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: 'challenge', listener: (e: CustomEvent<LivenessChallengeProgress>) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: 'progress', listener: (e: CustomEvent<LivenessProgress>) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: 'camera-change', listener: (e: CustomEvent<LivenessCameraDetail>) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | AddEventListenerOptions): void;
}

export interface MountOptions {
  /** The element's tag (default `liveness-check`), defined first if it is not yet. */
  tag?: string;
  model?: string;
  manifest?: string;
  backend?: 'auto' | LivenessBackend;
  interval?: number;
  autoCapture?: number;
  shareFrames?: boolean;
  /** Fetch the wasm module and the model at once (the `preload` attribute). */
  preload?: boolean;
  /** A device id, or `user` / `environment` (the `camera` attribute). */
  camera?: string;
  /** Show a camera picker in the preview when there are several (the `camera-picker` attribute). */
  cameraPicker?: boolean;
  /** `false`: do not remember the picked camera for this origin (`remember-camera="off"`). */
  rememberCamera?: boolean;
  session?: string;
  /** `none`, or fixed steps (`centre,left,right,centre`); see the `challenge` attribute. */
  challenge?: string;
  texts?: PartialLivenessTexts;
  onResult?: (result: LivenessResult) => void;
  onError?: (error: LivenessErrorDetail) => void;
  onRefused?: (refusal: LivenessErrorDetail<LivenessRefusalCode>) => void;
  onState?: (state: LivenessStateDetail) => void;
  onGuidance?: (guidance: LivenessGuidance) => void;
  onChallenge?: (progress: LivenessChallengeProgress) => void;
  onCameraChange?: (camera: LivenessCameraDetail) => void;
}

/** The locales the widget ships (JSON tables in `locales/`; English is built in). */
export type LivenessLocale = 'en' | 'ar' | 'de' | 'es' | 'fr' | 'he' | 'ja' | 'pt-BR' | 'ru' | 'zh-CN';
export const LOCALES: readonly LivenessLocale[];

/**
 * The shipped locale for language tags in order of preference: the first with a table of its
 * own, or of its language (`pt-PT` → `pt-BR`); else `en`.
 */
export function pickLocale(tags: readonly (string | null | undefined)[]): LivenessLocale;

/** The manifest's address for a model's address: `NAME.onnx` → `NAME.json`, query kept. */
export function manifestUrl(modelUrl: string): string;

/** Creates a `<liveness-check>` (or `options.tag`) inside `container` and returns it. */
export function mount(container: Element, options?: MountOptions): LivenessCheck;

/** The tag the module defines on import in a browser: `liveness-check`. */
export const DEFAULT_TAG: 'liveness-check';

/**
 * Defines the element under `tag` (default `liveness-check`; another tag gets a subclass of its
 * own) and returns its class, or the class already registered under `tag`. `null` where there is
 * no `customElements` (server-side rendering: importing the module there defines nothing).
 */
export function define(tag?: string): typeof LivenessCheck | null;

declare global {
  interface HTMLElementTagNameMap {
    'liveness-check': LivenessCheck;
  }
}
