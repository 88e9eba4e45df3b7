// MessagePack for the hub client's WebSocket transport, from msgpackr:
// `new HubClient({ url, messagePack })`. A module of its own because msgpackr adds
// ~32 KB (minified) to a ~12 KB client; clients that stay with JSON do not carry it.
import { Packr, Unpackr } from 'msgpackr';
import type { MessagePackCodec } from './transports/websocket.js';

// Plain maps, as the hub reads and writes them (no msgpackr records); 64-bit integers read
// as numbers, as JSON would give them.
const packer = new Packr({ useRecords: false, variableMapSize: true });
const unpacker = new Unpackr({ useRecords: false, int64AsType: 'number' });

export const messagePack: MessagePackCodec = {
  pack: (value) => packer.pack(value),
  unpack: (bytes) => unpacker.unpack(bytes),
};
