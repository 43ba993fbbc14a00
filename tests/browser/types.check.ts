// Compiled (not run) by `tsc --noEmit` in scripts/test.sh: a host page's use of the widget must
// type-check against web/liveness-check.d.ts, and misuse must not.
import { DEFAULT_TEXTS, FRAMES, mount, type LivenessResult } from '../../web/liveness-check.js';

const el = document.querySelector('liveness-check');
if (el) {
  el.addEventListener('result', (e) => {
    const r: LivenessResult = e.detail;
    const live: boolean = r.live;
    const ms: number = r.timings.inferenceMs + r.timings.captureMs;
    console.log(live, ms, r.pSpoof < r.threshold, r.frames?.length);
  });
  el.addEventListener('error', (e) => {
    if (e.detail.code === 'camera-denied') console.log(e.detail.message);
    // @ts-expect-error: not an error code
    if (e.detail.code === 'camera-broken') console.log('never');
  });
  el.addEventListener('state', (e) => console.log(e.detail.state, e.detail.previous));
  el.addEventListener('guidance', (e) => {
    if (e.detail.guidance === 'too-dark') console.log(e.detail.face?.width);
    // @ts-expect-error: not a guidance code
    if (e.detail.guidance === 'too-bright') console.log('never');
  });
  el.addEventListener('refused', (e) => {
    const code: 'no-face' | 'multiple-faces' = e.detail.code;
    console.log(code);
  });
  el.addEventListener('challenge', (e) => {
    if (e.detail.due === 'left') console.log(e.detail.pose?.yaw, e.detail.step, e.detail.steps);
    // @ts-expect-error: not a step
    if (e.detail.due === 'sideways') console.log('never');
  });
  el.addEventListener('result', (e) => {
    const code = e.detail.challenge?.code;
    if (code === 'flat' || e.detail.session?.verdict === 'too-fast') console.log(e.detail.challenge?.steps);
    // @ts-expect-error: not a challenge code
    if (code === 'wobbly') console.log('never');
  });
  el.texts = {
    start: 'Prüfung starten',
    errors: { 'camera-denied': 'Kamera blockiert.' },
    steps: { left: 'Drehen Sie den Kopf langsam nach links.' },
    challengeFailed: { flat: 'Das Gesicht bewegte sich wie ein Foto.' },
  };
  void el.start();
}

const widget = mount(document.body, {
  model: '/models/default.onnx',
  interval: 150,
  onResult: (r) => console.log(r.live),
  backend: 'cpu',
  onError: (e) => console.log(e.code),
  onGuidance: (g) => console.log(g.steady),
  challenge: 'none',
  onChallenge: (c) => console.log(c.done),
});
widget.stop();
const five: 5 = FRAMES;
console.log(five, DEFAULT_TEXTS.errors['webgpu-unavailable'], DEFAULT_TEXTS.guidance.good);
// @ts-expect-error: the state is read-only
widget.state = 'idle';
