// The capture module's camera errors (web/capture.js, plain JS on the main thread): every
// getUserMedia rejection maps to a code the widget has a text for, and the mapping is the one
// the widget documents.

import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';

import { ROOT } from './harness.mjs';

const capture = await import(pathToFileURL(path.join(ROOT, 'web', 'capture.js')).href);
const widget = await import(pathToFileURL(path.join(ROOT, 'web', 'liveness-check.js')).href);

test('camera errors map to the states the widget shows, each with a text', () => {
  const cases = {
    NotAllowedError: 'camera-denied',
    SecurityError: 'camera-denied',
    NotFoundError: 'camera-missing',
    OverconstrainedError: 'camera-missing',
    NotReadableError: 'camera-in-use',
    AbortError: 'camera-in-use',
    TypeError: 'camera-failed',
    [undefined]: 'camera-failed',
  };
  for (const [name, code] of Object.entries(cases)) {
    assert.equal(capture.mediaErrorCode(name === 'undefined' ? undefined : name), code, name);
    assert.ok(widget.DEFAULT_TEXTS.errors[code], `a text for ${code}`);
  }
  const error = capture.livenessError('camera-denied', 'camera: NotAllowedError: no');
  assert.equal(error.name, 'LivenessError');
  assert.equal(error.code, 'camera-denied');
});
