import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findLinks, TextFilter } from '../../../src/apps/chat/filters.js';

const filter = (options: Partial<ConstructorParameters<typeof TextFilter>[0]> = {}) =>
  new TextFilter({ maxMessageLength: 10, filter: { words: ['darn', 'a.b'], mode: 'mask' }, links: 'allow', ...options });

test('masks whole filtered words only, case-insensitively, keeping the text plain', () => {
  assert.equal(filter({ maxMessageLength: 100 }).apply('Darn, darned <b>darn</b>').text, '****, darned <b>****</b>');
  assert.equal(filter({ maxMessageLength: 100 }).apply('a.b axb').text, '*.* axb', 'words are literal, not patterns');
});

test('reject mode refuses, naming why', () => {
  const reject = filter({ filter: { words: ['darn'], mode: 'reject' } });
  assert.throws(() => reject.apply('oh darn'), { code: 'KOBOLD_ERR_CHAT_REJECTED' });
  assert.equal(reject.apply('darned').text, 'darned');
});

test('length counts characters (not UTF-16 units); empty and control-only text is refused', () => {
  assert.equal(filter().apply('😀'.repeat(10)).text, '😀'.repeat(10));
  assert.throws(() => filter().apply('x'.repeat(11)), { code: 'KOBOLD_ERR_CHAT_TOO_LONG', message: /11 characters; the limit is 10/ });
  assert.throws(() => filter().apply(' \u0000\u202e '), { code: 'KOBOLD_ERR_CHAT_EMPTY' });
  assert.equal(filter().apply('a\u202eb\nc').text, 'a b c', 'bidi overrides and newlines become spaces');
});

test('links: spans without trailing punctuation; www. gets https; plain and reject modes', () => {
  assert.deepEqual(findLinks('go to www.example.org/x, or http://a.io!'), [
    { start: 6, end: 23, url: 'https://www.example.org/x' },
    { start: 28, end: 39, url: 'http://a.io' },
  ]);
  assert.deepEqual(findLinks('javascript:alert(1) ftp://x'), []);
  assert.equal(filter({ maxMessageLength: 100, links: 'plain' }).apply('see http://a.io').links, undefined);
  assert.throws(() => filter({ maxMessageLength: 100, links: 'reject' }).apply('see http://a.io'), { code: 'KOBOLD_ERR_CHAT_REJECTED' });
});
