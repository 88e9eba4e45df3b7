import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isKoboldError } from '../../src/errors.js';
import {
  encodeJson,
  encodePosition,
  encodePublication,
  encodePublish,
  encodeSequenced,
  FrameDecoder,
  FrameKind,
} from '../../src/hub/wire.js';
import type { Publication } from '../../src/hub/types.js';

const publication: Publication = {
  channel: 'room:lobby',
  epoch: 'e1',
  offset: 42,
  time: 1_700_000_000_123,
  data: '{"text":"hé ✓ 🚀"}',
  info: { userId: 'u1', clientId: 'c1', info: { name: 'Ann' } },
};

const allKinds = () => [
  encodeJson(FrameKind.hello, '{"instance":"x"}'),
  encodePublish(7, 'room:lobby', '{"a":1}', ''),
  encodePublication(publication),
  encodePublication({ ...publication, info: undefined, offset: 2 ** 40 }),
  encodePosition(7, 9, 'e1'),
  encodeSequenced(FrameKind.request, 8, '{"op":"history"}'),
  encodeSequenced(FrameKind.reply, 8, '{}'),
  encodeSequenced(FrameKind.failure, 9, '{"code":"X"}'),
  encodeJson(FrameKind.presence, '{"type":"join"}'),
];

test('every frame kind round-trips', () => {
  const frames = new FrameDecoder().push(Buffer.concat(allKinds()));
  assert.equal(frames.length, 9);
  assert.deepEqual(frames[0], { kind: FrameKind.hello, json: '{"instance":"x"}' });
  assert.deepEqual(frames[1], { kind: FrameKind.publish, seq: 7, channel: 'room:lobby', data: '{"a":1}', info: '' });
  assert.deepEqual(frames[2], { kind: FrameKind.publication, publication });
  const { info: _, ...withoutInfo } = publication;
  assert.deepEqual(frames[3], { kind: FrameKind.publication, publication: { ...withoutInfo, offset: 2 ** 40 } });
  assert.deepEqual(frames[4], { kind: FrameKind.position, seq: 7, offset: 9, epoch: 'e1' });
  assert.deepEqual(frames[7], { kind: FrameKind.failure, seq: 9, json: '{"code":"X"}' });
});

test('frames split at every byte boundary decode the same', () => {
  const bytes = Buffer.concat(allKinds());
  const whole = new FrameDecoder().push(bytes);
  for (let cut = 1; cut < bytes.length; cut += 3) {
    const decoder = new FrameDecoder();
    const frames = [...decoder.push(bytes.subarray(0, cut)), ...decoder.push(bytes.subarray(cut))];
    assert.deepEqual(frames, whole, `cut at ${cut}`);
  }
  const decoder = new FrameDecoder();
  const oneByOne = [];
  for (const byte of bytes) oneByOne.push(...decoder.push(Buffer.from([byte])));
  assert.deepEqual(oneByOne, whole);
});

test('many frames in one chunk', () => {
  const chunk = Buffer.concat(Array.from({ length: 1000 }, (_, i) => encodePosition(i, i, 'e')));
  const frames = new FrameDecoder().push(chunk);
  assert.equal(frames.length, 1000);
  assert.deepEqual(frames[999], { kind: FrameKind.position, seq: 999, offset: 999, epoch: 'e' });
});

const wireError = (pattern: RegExp) => (error: unknown) => isKoboldError(error, 'KOBOLD_ERR_HUB_WIRE') && pattern.test(error.message);

test('an oversize frame is an error as soon as its header arrives', () => {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(1025);
  assert.throws(() => new FrameDecoder(1024).push(header), wireError(/1025 bytes exceeds the limit of 1024/));
});

test('garbage is an error, never a crash or a hang', () => {
  assert.throws(() => new FrameDecoder().push(Buffer.from([0, 0, 0, 1, 99])), wireError(/unknown frame kind 99/));
  assert.throws(() => new FrameDecoder().push(Buffer.from([0, 0, 0, 0])), wireError(/empty frame/));
  const truncated = Buffer.from([0, 0, 0, 5, FrameKind.hello, 0, 0, 0, 9]);
  assert.throws(() => new FrameDecoder().push(truncated), wireError(/truncated/));
  const stray = Buffer.concat([Buffer.from([0, 0, 0, 10, FrameKind.hello, 0, 0, 0, 1]), Buffer.from('x'), Buffer.from('yzq')]);
  stray.writeUInt32BE(9, 0);
  assert.throws(() => new FrameDecoder().push(stray), wireError(/stray bytes/));
  assert.throws(() => new FrameDecoder().push(Buffer.from('GET / HTTP/1.1\r\n\r\n')), wireError(/exceeds the limit/));
});

test('invalid JSON in a publication info field is a wire error', () => {
  const frame = encodePublication({ ...publication, info: { userId: 'u', clientId: 'c' } });
  const text = frame.toString('latin1').replace('{"userId"', '["userId"');
  assert.throws(() => new FrameDecoder().push(Buffer.from(text, 'latin1')), wireError(/bad frame body/));
});
