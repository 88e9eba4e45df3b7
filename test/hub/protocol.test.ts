// The long-poll / refresh request check (parsePollRequest): what it accepts as it is, and
// the field each refusal names. MessagePack: the frames out (same message as the JSON one,
// in a binary WebSocket frame) and the commands in (the same checks, plus what JSON lacks).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pack, Packr, unpack as unpackValue } from 'msgpackr';
import { isKoboldError } from '../../src/errors.js';
import {
  CommandError,
  encodeFrame,
  encodeMessagePackPublication,
  encodePublicationPush,
  parseMessagePackCommand,
  parsePollRequest,
  webSocketTextFrame,
} from '../../src/hub/protocol.js';
import type { Publication } from '../../src/hub/types.js';

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

/** Reads one unmasked server frame: FIN, opcode and payload, checking the length field against the buffer. */
function readFrame(frame: Buffer): { fin: boolean; opcode: number; payload: Buffer } {
  let length = frame[1] & 0x7f;
  let at = 2;
  if (length === 126) {
    length = frame.readUInt16BE(2);
    at = 4;
  } else if (length === 127) {
    length = frame.readUInt32BE(2) * 2 ** 32 + frame.readUInt32BE(6);
    at = 10;
  }
  assert.equal(frame[1] & 0x80, 0, 'server frames are not masked');
  assert.equal(frame.length, at + length, 'the length field covers exactly the payload');
  return { fin: (frame[0] & 0x80) !== 0, opcode: frame[0] & 0x0f, payload: frame.subarray(at) };
}

function unpackFrame(frame: Buffer): unknown {
  const { fin, opcode, payload } = readFrame(frame);
  assert.ok(fin);
  assert.equal(opcode, 2, 'a binary frame');
  return unpackValue(payload);
}

describe('MessagePack frames out', () => {
  const publication: Publication = {
    channel: 'room:a',
    offset: 7,
    epoch: 'Zk3',
    time: 1_700_000_000_000,
    data: '{"text":"héllo","n":1.5,"list":[1,null,true],"big":9007199254740991}',
    info: { userId: '42', clientId: 'c.1', info: { name: 'Ann' } },
  };

  test('a publication is the JSON push, data decoded, in a binary frame', () => {
    const decoded = unpackFrame(encodeMessagePackPublication(publication));
    assert.deepEqual(decoded, JSON.parse(encodePublicationPush(publication)));
    assert.deepEqual(Object.keys(decoded as object), ['push', 'channel', 'offset', 'epoch', 'time', 'data', 'info'], 'the JSON push\'s field order');
    const { info: _info, ...anonymous } = publication;
    assert.deepEqual(unpackFrame(encodeMessagePackPublication(anonymous)), JSON.parse(encodePublicationPush(anonymous)), 'no info field without info');
  });

  test('replies and pushes given as JSON text carry the same message', () => {
    for (const json of ['{"id":1,"result":{}}', '{"error":{"code":"KOBOLD_ERR_HUB_BAD_COMMAND","message":"bad command: x"}}', '{"push":"join","channel":"room:a","user":{"userId":"1"}}']) {
      assert.deepEqual(unpackFrame(encodeFrame('msgpack', json)), JSON.parse(json));
    }
  });

  test('every length class of the frame header (7-bit, 16-bit, 64-bit)', () => {
    for (const size of [0, 100, 125, 126, 1000, 65_535, 65_536, 70_000]) {
      const data = JSON.stringify('x'.repeat(size));
      const frame = encodeMessagePackPublication({ ...publication, data });
      assert.equal((unpackFrame(frame) as { data: string }).data.length, size);
    }
  });

  test('an object of more than 65535 keys keeps all of them', () => {
    const wide: Record<string, number> = {};
    for (let i = 0; i < 70_000; i++) wide['k' + i] = i;
    const decoded = unpackFrame(encodeMessagePackPublication({ ...publication, data: JSON.stringify(wide) })) as { data: Record<string, number> };
    assert.equal(Object.keys(decoded.data).length, 70_000);
    assert.equal(decoded.data.k69999, 69_999);
  });

  test('JSON and SSE frames are unchanged by the third format', () => {
    const json = '{"id":1,"result":{}}';
    assert.deepEqual(encodeFrame('websocket', json), Buffer.concat([Buffer.from([0x81, json.length]), Buffer.from(json)]));
    assert.deepEqual(readFrame(webSocketTextFrame('é'.repeat(40_000))).payload.toString(), 'é'.repeat(40_000));
    assert.equal(readFrame(webSocketTextFrame('é'.repeat(40_000))).opcode, 1);
    assert.equal(encodeFrame('sse', json).toString(), 'data: ' + json + '\n\n');
  });
});

describe('parseMessagePackCommand', () => {
  /** The error a command is refused with, and the id it names. */
  function refusal(bytes: Uint8Array, maxBytes = 1024): { code: string; message: string; id?: number } {
    try {
      parseMessagePackCommand(bytes, maxBytes);
    } catch (error) {
      assert.ok(error instanceof CommandError, `a CommandError, got ${String(error)}`);
      return { code: error.error.code, message: error.error.message, id: error.id };
    }
    assert.fail('accepted');
  }

  test('reads a command with native values', () => {
    const command = parseMessagePackCommand(pack({ id: 3, cmd: 'publish', channel: 'room:a', data: { n: 1.5, list: [1, 'two', null, false], nested: { deep: [] } } }), 1024);
    assert.deepEqual(command, { id: 3, cmd: 'publish', channel: 'room:a', data: { n: 1.5, list: [1, 'two', null, false], nested: { deep: [] } } });
    assert.deepEqual(parseMessagePackCommand(pack({ cmd: 'subscribe', channel: 'news:a', since: { offset: 2 ** 40, epoch: 'e' } }), 1024), {
      cmd: 'subscribe',
      channel: 'news:a',
      since: { offset: 2 ** 40, epoch: 'e' },
    });
  });

  test('bytes that are not one MessagePack value are refused, naming the problem', () => {
    for (const bytes of [Buffer.from([]), Buffer.from([0x92, 0x01]), Buffer.from([0x85, 0xa3]), Buffer.concat([pack({ cmd: 'ping' }), Buffer.from([0x01])])]) {
      const { code, message } = refusal(bytes);
      assert.equal(code, 'KOBOLD_ERR_HUB_BAD_COMMAND');
      assert.match(message, /not valid MessagePack: \S/);
    }
  });

  test('the same checks as JSON commands, with the id when it could be read', () => {
    assert.deepEqual(refusal(pack([1])), { code: 'KOBOLD_ERR_HUB_BAD_COMMAND', message: 'bad command: a command is a JSON object', id: undefined });
    assert.equal(refusal(pack('ping')).code, 'KOBOLD_ERR_HUB_BAD_COMMAND');
    assert.deepEqual(refusal(pack({ id: 5, cmd: 'explode' })), { code: 'KOBOLD_ERR_HUB_UNKNOWN_COMMAND', message: 'unknown command "explode"', id: 5 });
    const badChannel = refusal(pack({ id: 6, cmd: 'subscribe', channel: 7 }));
    assert.equal(badChannel.id, 6);
    assert.match(badChannel.message, /field "channel"/);
    assert.match(refusal(pack({ id: 7, cmd: 'publish', channel: 'room:a' })).message, /field "data"/);
    const large = refusal(pack({ cmd: 'ping', pad: 'x'.repeat(2000) }));
    assert.equal(large.code, 'KOBOLD_ERR_HUB_TOO_LARGE');
    assert.match(large.message, /exceeds the limit of 1024/);
  });

  test('values JSON cannot hold are refused by their field', () => {
    const cases: [unknown, RegExp][] = [
      [new Date(0), /field "data\.when": a Date \(a MessagePack extension type\) has no JSON equivalent/],
      [Buffer.from([1, 2]), /field "data\.when": binary data has no JSON equivalent/],
      [Number.NaN, /field "data\.when": NaN has no JSON equivalent/],
      [Number.POSITIVE_INFINITY, /Infinity has no JSON equivalent/],
      [new Set([1]), /a Set \(a MessagePack extension type\)/],
    ];
    const packWithExtensions = new Packr({ moreTypes: true, useRecords: false });
    for (const [when, pattern] of cases) {
      const { code, message, id } = refusal(packWithExtensions.pack({ id: 9, cmd: 'publish', channel: 'room:a', data: { list: [1], when } }));
      assert.equal(code, 'KOBOLD_ERR_HUB_BAD_COMMAND');
      assert.match(message, pattern);
      assert.equal(id, 9);
    }
    assert.match(refusal(pack({ cmd: 'publish', channel: 'room:a', data: [0, [new Date(0)]] })).message, /field "data\.1\.0": a Date/);
  });

  test('nesting deeper than 1000 levels is refused', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 1100; i++) deep = [deep];
    assert.match(refusal(pack({ cmd: 'publish', channel: 'room:a', data: deep }), 100_000).message, /nesting deeper than 1000 levels/);
  });
});
