// The client of the host's session server (the `session` attribute): a nonce before the camera
// opens, and the frames (lossless PNG) with the challenge's track for the server's own check.

import { livenessError } from './capture.js';

/** Base64 of a lossless PNG of one RGBA frame (for the session server). */
export async function pngBase64(frame) {
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
export async function scaled(frame, side) {
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
  return livenessError('session', message);
}

/** POSTs JSON to the host's session endpoint; resolves to the answer or rejects with `session`. */
export async function sessionCall(url, body) {
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
