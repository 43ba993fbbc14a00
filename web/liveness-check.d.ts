// Types of web/liveness-check.js, the <liveness-check> widget.

/** The number of frames the model takes. */
export const FRAMES: 5;

/** Milliseconds between captured frames unless the `interval` attribute says otherwise. */
export const DEFAULT_INTERVAL_MS: 200;

/** What the widget is doing. */
export type LivenessState =
  | 'idle'
  | 'starting'
  | 'preview'
  | 'capturing'
  | 'analysing'
  | 'result'
  | 'error';

/** The `code` of a failure (the `code` of a `LivenessError` from the wasm module). */
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
  | 'camera-failed';

/** Milliseconds spent in each stage of one check. */
export interface LivenessTimings {
  /** Grabbing the five frames from the camera (includes the intervals between them). */
  captureMs: number;
  /** Waiting for the model to finish loading after the capture (0 when it was ready). */
  modelWaitMs: number;
  /** Crop, resize and normalise (the trainer's preprocessing, in wasm). */
  preprocessMs: number;
  /** Running the model on WebGPU, upload and read-back included. */
  inferenceMs: number;
  /** Loading the model, once per page: download of the model and its manifest, */
  modelFetchMs: number;
  /** its SHA-256 check against the manifest, */
  modelVerifyMs: number;
  /** and the wonnx session (graph, weight upload, shaders). */
  modelSessionMs: number;
}

/** The detail of the `result` event. */
export interface LivenessResult {
  /** `true` when a live person was seen (`pSpoof < threshold`). */
  live: boolean;
  /** The model's probability that the frames show a presentation attack. */
  pSpoof: number;
  /** The model's raw output. */
  logit: number;
  /** The decision threshold on `pSpoof`, from the model's manifest. */
  threshold: number;
  timings: LivenessTimings;
  /** The five captured RGBA frames, only with the `share-frames` attribute. */
  frames?: ImageData[];
}

/** The detail of the `error` event. */
export interface LivenessErrorDetail {
  code: LivenessErrorCode;
  /** A developer-facing message naming what failed (the user sees `texts.errors[code]`). */
  message: string;
}

/** The detail of the `state` event. */
export interface LivenessStateDetail {
  state: LivenessState;
  previous: LivenessState;
  /** Present when `state` is `error`. */
  code?: LivenessErrorCode;
}

/** Every text the widget shows; `{p}`/`{t}` in `score` and `{data}`/`{terms}` in `modelNote` are filled in. */
export interface LivenessTexts {
  intro: string;
  start: string;
  starting: string;
  preview: string;
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
  errors: Record<LivenessErrorCode, string>;
}

export type PartialLivenessTexts = Partial<Omit<LivenessTexts, 'errors'>> & {
  errors?: Partial<Record<LivenessErrorCode, string>>;
};

export const DEFAULT_TEXTS: Readonly<LivenessTexts>;

/**
 * `<liveness-check model="/models/default.onnx">`. Attributes: `model` (URL of the ONNX file;
 * default `../models/default.onnx` relative to the widget), `manifest` (default: NAME.json next to
 * NAME.onnx), `interval` (ms between frames, default 200), `auto-capture` (ms after the preview
 * appears; without it the user presses Capture), `share-frames` (put the frames in the result).
 *
 * Events: `result` (LivenessResult), `error` (LivenessErrorDetail; does not bubble), `state`.
 */
export class LivenessCheck extends HTMLElement {
  readonly state: LivenessState;
  get texts(): Readonly<LivenessTexts>;
  set texts(texts: PartialLivenessTexts);
  /** Asks for the camera and shows the preview; ignored while a check is under way. */
  start(): Promise<void>;
  /** From the preview: captures the frames and runs the check. */
  capture(): Promise<void>;
  /** Stops the camera and any check under way; back to idle. */
  stop(): void;

  addEventListener(type: 'result', listener: (e: CustomEvent<LivenessResult>) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: 'error', listener: (e: CustomEvent<LivenessErrorDetail>) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: 'state', listener: (e: CustomEvent<LivenessStateDetail>) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | AddEventListenerOptions): void;
}

export interface MountOptions {
  model?: string;
  manifest?: string;
  interval?: number;
  autoCapture?: number;
  shareFrames?: boolean;
  texts?: PartialLivenessTexts;
  onResult?: (result: LivenessResult) => void;
  onError?: (error: LivenessErrorDetail) => void;
  onState?: (state: LivenessStateDetail) => void;
}

/** Creates a `<liveness-check>` inside `container` and returns it. */
export function mount(container: Element, options?: MountOptions): LivenessCheck;

declare global {
  interface HTMLElementTagNameMap {
    'liveness-check': LivenessCheck;
  }
}
