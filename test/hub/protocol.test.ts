// The long-poll / refresh request check (parsePollRequest): what it accepts as it is, and
// the field each refusal names.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isKoboldError } from '../../src/errors.js';
import { parsePollRequest } from '../../src/hub/protocol.js';

function refusal(value: unknown): string {
  try {
    parsePollRequest(value);
  } catch (error) {
    assert.ok(isKoboldError(error, 'KOBOLD_ERR_HUB_BAD_COMMAND'), `a BAD_COMMAND error, got ${String(error)}`);
    assert.equal(error.status, 400);
    return error.message;
  }
  assert.fail(`accepted ${JSON.stringify(value)}`);
}

describe('parsePollRequest', () => {
  test('accepts positions, null, a token and a timeout, and returns the request as it is', () => {
    const request = { token: 't', channels: { 'room:a': { offset: 0, epoch: '' }, 'room:b': { offset: 7, epoch: 'Zk3abc' }, 'room:c': null }, timeoutMs: 0 };
    assert.equal(parsePollRequest(request), request);
    assert.deepEqual(parsePollRequest({ channels: {} }), { channels: {} });
  });

  test('refuses what is not an object, or has no channels', () => {
    for (const value of [null, 1, 'x', [], true]) assert.match(refusal(value), /expected an object/);
    assert.match(refusal({}), /field "channels": required/);
    assert.match(refusal({ channels: [] }), /field "channels": expected an object/);
    assert.match(refusal({ channels: null }), /field "channels": expected an object/);
  });

  test('names an unknown or wrong top-level field', () => {
    assert.match(refusal({ channels: {}, extra: 1 }), /field "extra": unknown field/);
    assert.match(refusal({ channels: {}, token: 5 }), /field "token": expected a string/);
    assert.match(refusal({ channels: {}, token: 'x'.repeat(8193) }), /field "token"/);
    for (const timeoutMs of [-1, 1.5, '100', Number.NaN, 2 ** 53]) assert.match(refusal({ channels: {}, timeoutMs }), /field "timeoutMs": expected an integer >= 0/);
  });

  test('names the channel and the field of a bad position', () => {
    assert.match(refusal({ channels: { '': null } }), /field "channels\.": a channel name has 1 to 255 characters/);
    assert.match(refusal({ channels: { ['x'.repeat(256)]: null } }), /a channel name has 1 to 255 characters/);
    assert.match(refusal({ channels: { 'room:a': 5 } }), /field "channels\.room:a": expected \{offset, epoch\} or null/);
    assert.match(refusal({ channels: { 'room:a': [] } }), /field "channels\.room:a": expected/);
    assert.match(refusal({ channels: { 'room:a': { offset: -1, epoch: 'e' } } }), /field "channels\.room:a\.offset": expected an integer >= 0/);
    assert.match(refusal({ channels: { 'room:a': { offset: '1', epoch: 'e' } } }), /field "channels\.room:a\.offset"/);
    assert.match(refusal({ channels: { 'room:a': { epoch: 'e' } } }), /field "channels\.room:a\.offset": required/);
    assert.match(refusal({ channels: { 'room:a': { offset: 1 } } }), /field "channels\.room:a\.epoch": required/);
    assert.match(refusal({ channels: { 'room:a': { offset: 1, epoch: 2 } } }), /field "channels\.room:a\.epoch": expected a string/);
    assert.match(refusal({ channels: { 'room:a': { offset: 1, epoch: 'e'.repeat(65) } } }), /at most 64 characters/);
    assert.match(refusal({ channels: { 'room:a': { offset: 1, epoch: 'e', more: true } } }), /field "channels\.room:a\.more": unknown field/);
  });

  test('JSON text with a "__proto__" key is checked like any other field', () => {
    assert.match(refusal(JSON.parse('{"channels":{},"__proto__":{}}')), /field "__proto__": unknown field/);
    assert.match(refusal(JSON.parse('{"channels":{"room:a":{"offset":1,"epoch":"e","__proto__":1}}}')), /field "channels\.room:a\.__proto__": unknown field/);
  });
});
