import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { errorCatalog, KoboldError } from '../../src/errors.js';
// @ts-expect-error -- a plain .mjs script without types
import { renderErrorsDoc } from '../../scripts/errors-doc.mjs';

test('docs/errors.md lists every error code as src/errors.ts defines it', () => {
  const expected = (renderErrorsDoc as (c: ReturnType<typeof errorCatalog>) => string)(errorCatalog());
  const actual = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  assert.equal(actual, expected, 'docs/errors.md is out of date: npm run build && node scripts/errors-doc.mjs');
});

test('a KoboldError fills its template and carries its status', () => {
  const error = new KoboldError('KOBOLD_ERR_BODY_TOO_LARGE', { limit: 10 });
  assert.equal(error.message, 'request body exceeds 10 bytes');
  assert.equal(error.status, 413);
  assert.deepEqual(error.toJSON(), { code: 'KOBOLD_ERR_BODY_TOO_LARGE', message: 'request body exceeds 10 bytes' });
});
