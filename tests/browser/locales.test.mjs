// The shipped locales (web/locales/*.json): every table has every text of the built-in English
// one and nothing else, with the same placeholders; machine translations say so; the English
// table is the built-in one; the locale choice follows the language tags.

import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';

import { ROOT } from './harness.mjs';

const DIR = path.join(ROOT, 'web', 'locales');
// The widget imports without a DOM (it is SSR-safe), so Node reads its tables and rules.
const widget = await import(pathToFileURL(path.join(ROOT, 'web', 'liveness-check.js')).href);

/** Every text of a table as `group.code` → string (`_meta` left out). */
function flatten(table, prefix = '') {
  return Object.entries(table)
    .filter(([k]) => k !== '_meta')
    .flatMap(([k, v]) => (typeof v === 'object' ? flatten(v, `${prefix}${k}.`) : [[`${prefix}${k}`, v]]));
}

const placeholders = (text) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

const files = (await readdir(DIR)).filter((f) => f.endsWith('.json')).sort();

test('the shipped locales are the files in web/locales', () => {
  assert.deepEqual(files.map((f) => f.replace(/\.json$/, '')).sort(), [...widget.LOCALES].sort());
  for (const locale of ['en', 'de', 'fr', 'es', 'pt-BR', 'ar', 'he', 'zh-CN', 'ja', 'ru']) {
    assert.ok(widget.LOCALES.includes(locale), locale);
  }
});

for (const file of files) {
  test(`${file}: every text, no other, the same placeholders, its origin stated`, async () => {
    const table = JSON.parse(await readFile(path.join(DIR, file), 'utf8'));
    const english = new Map(flatten(widget.DEFAULT_TEXTS));
    const texts = new Map(flatten(table));
    assert.deepEqual([...texts.keys()].sort(), [...english.keys()].sort(), 'the same keys as English');
    for (const [key, text] of texts) {
      assert.equal(typeof text, 'string', key);
      assert.ok(text.trim().length > 0, `${key} is empty`);
      assert.deepEqual(placeholders(text), placeholders(english.get(key)), `${key}: ${text}`);
    }
    assert.equal(typeof table._meta?.machineTranslated, 'boolean', '_meta.machineTranslated');
    assert.ok(table._meta.language, '_meta.language');
    if (file === 'en.json') {
      assert.equal(table._meta.machineTranslated, false);
      assert.deepEqual(Object.fromEntries(texts), Object.fromEntries(english), 'en.json is the built-in table');
    } else {
      // Until a native speaker has read them, the tables say they are machine translations.
      assert.equal(table._meta.machineTranslated, true, file);
      assert.match(table._meta.note, /native speaker/);
    }
  });
}

test('the locale follows the first tag with a table of its own or of its language, else English', () => {
  assert.equal(widget.pickLocale(['de-AT', 'fr']), 'de');
  assert.equal(widget.pickLocale(['pt-PT']), 'pt-BR');
  assert.equal(widget.pickLocale(['PT-br']), 'pt-BR');
  assert.equal(widget.pickLocale(['zh-Hans-CN']), 'zh-CN');
  assert.equal(widget.pickLocale([null, '', 'ar-EG']), 'ar');
  assert.equal(widget.pickLocale(['nl', 'sv']), 'en');
  assert.equal(widget.pickLocale(['nl', 'he-IL']), 'he');
  assert.equal(widget.pickLocale([]), 'en');
});
