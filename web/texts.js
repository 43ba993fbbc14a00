// The widget's states and texts: the state table every part follows, the English texts (built
// in), and the shipped locales (JSON tables next to this module, fetched when chosen).

/**
 * Every state of the widget: whether a check is under way (`busy`: start() does nothing), the
 * text key of its status line (null: chosen from the detail), and the text key of its one button
 * (null: hidden). Rendering, busy checks and the `.d.ts` all follow this table.
 */
export const STATES = Object.freeze({
  idle: Object.freeze({ busy: false, text: 'intro', button: 'start' }),
  // Fetching the wasm module and the model before a check (preload), with progress; start() works.
  loading: Object.freeze({ busy: false, text: 'intro', button: 'start' }),
  // Both are loaded: start() goes straight to the camera.
  ready: Object.freeze({ busy: false, text: 'intro', button: 'start' }),
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
export const RTL = new Set(['ar', 'he']);

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

export function localeTable(locale) {
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
export function mergeTexts(base, over) {
  const merged = { ...base, ...over };
  delete merged._meta;
  for (const group of TEXT_GROUPS) merged[group] = { ...base[group], ...(over?.[group] ?? {}) };
  return merged;
}
