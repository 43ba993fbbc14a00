// Capture on the page's main thread: getUserMedia → a <video> → a canvas → RGBA ImageData frames
// at a set interval. Plain JS (no wasm): the widget's page never loads the wasm module, which
// lives in the worker only (liveness-worker.js).

/** How long to wait for the first decoded frame before calling the camera broken, ms. */
const FIRST_FRAME_TIMEOUT_MS = 10_000;

/** A `LivenessError` (the error type every part of the widget rejects with). */
export function livenessError(code, message) {
  const error = new Error(message);
  error.name = 'LivenessError';
  error.code = code;
  return error;
}

/** The widget's error code for a getUserMedia rejection, from its DOMException name. */
export function mediaErrorCode(name) {
  switch (name) {
    case 'NotAllowedError':
    case 'SecurityError':
    case 'PermissionDeniedError':
      return 'camera-denied';
    case 'NotFoundError':
    case 'OverconstrainedError':
    case 'DevicesNotFoundError':
      return 'camera-missing';
    case 'NotReadableError':
    case 'TrackStartError':
    case 'AbortError':
      return 'camera-in-use';
    default:
      return 'camera-failed';
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves at the video's next presented frame (or animation frame), or after `timeoutMs`. */
function nextFrame(video, timeoutMs) {
  return new Promise((resolve) => {
    setTimeout(resolve, timeoutMs);
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(() => resolve());
    else requestAnimationFrame(() => resolve());
  });
}

/** An open camera playing into a `<video>` element. */
export class Camera {
  #video;
  #stream;
  #canvas = null;

  constructor(video, stream) {
    this.#video = video;
    this.#stream = stream;
  }

  /**
   * Asks for the camera with `constraints` (MediaTrackConstraints, or true), plays it into
   * `video` and resolves once a first frame is decoded. Rejects with a LivenessError whose code
   * is camera-denied, camera-missing, camera-in-use or camera-failed.
   */
  static async open(video, constraints) {
    if (!navigator.mediaDevices?.getUserMedia) {
      throw livenessError('camera-failed', 'navigator.mediaDevices is missing (the page must be served over https or from localhost)');
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: constraints ?? true, audio: false });
    } catch (e) {
      throw livenessError(mediaErrorCode(e?.name), `camera: ${e?.name}: ${e?.message ?? e}`);
    }
    const camera = new Camera(video, stream);
    try {
      await camera.#play();
    } catch (e) {
      // A camera that opened but does not play is released again.
      camera.stop();
      throw e;
    }
    return camera;
  }

  async #play() {
    const video = this.#video;
    video.muted = true;
    video.setAttribute('playsinline', '');
    video.srcObject = this.#stream;
    try {
      await video.play();
    } catch (e) {
      throw livenessError('camera-failed', `the video would not play: ${e?.message ?? e}`);
    }
    // Right after playback starts the first grab can be black: wait for a presented frame.
    await nextFrame(video, FIRST_FRAME_TIMEOUT_MS);
    if (!video.videoWidth || !video.videoHeight) throw livenessError('camera-failed', 'the camera delivered no picture');
  }

  /** Whether any track is still live. */
  get active() {
    return this.#stream.getTracks().some((t) => t.readyState === 'live');
  }

  /** The resolution the camera delivers, [width, height]. */
  get resolution() {
    return [this.#video.videoWidth, this.#video.videoHeight];
  }

  /** Grabs `count` frames, `intervalMs` apart, as RGBA ImageData at the camera's resolution. */
  async capture(count, intervalMs) {
    if (!this.active) throw livenessError('camera-failed', 'the camera is stopped');
    const [width, height] = this.resolution;
    if (!this.#canvas || this.#canvas.width !== width || this.#canvas.height !== height) {
      this.#canvas = Object.assign(document.createElement('canvas'), { width, height });
    }
    const context = this.#canvas.getContext('2d', { willReadFrequently: true });
    const frames = [];
    for (let i = 0; i < count; i += 1) {
      if (i > 0) await sleep(intervalMs);
      const [w, h] = this.resolution;
      if (w !== width || h !== height) throw livenessError('camera-failed', `frame ${i}: the camera changed resolution during capture`);
      try {
        context.drawImage(this.#video, 0, 0);
        frames.push(context.getImageData(0, 0, width, height));
      } catch (e) {
        throw livenessError('camera-failed', `frame ${i}: ${e?.message ?? e}`);
      }
    }
    return frames;
  }

  /** Stops every track (the camera light goes off) and detaches the video. Safe to call twice. */
  stop() {
    for (const track of this.#stream.getTracks()) track.stop();
    this.#video.srcObject = null;
  }
}
