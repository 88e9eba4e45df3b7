// A UNIX socket any local program (PHP, shell, cron) can publish through: newline-
// delimited JSON, one command per line ({"method":"publish","channel":…,"data":…}),
// one reply line each, in order. Same commands as the HTTP API; the socket file's
// permissions are the access control.
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import pino, { type Logger } from 'pino';
import { describeError, KoboldError } from '../errors.js';
import type { HubNode } from './node.js';
import { errorBody } from './protocol.js';
import { parseServerCommand, runServerCommand } from './server-commands.js';

export interface PublishSocketOptions {
  socketPath: string;
  node: HubNode;
  /** File mode of the socket; default 0o660 (owner and group may publish). */
  mode?: number;
  /** Longest line; longer ones get an error reply and are skipped. Default 1 MiB. */
  maxLineBytes?: number;
  logger?: Logger;
}

export interface PublishSocket {
  readonly socketPath: string;
  close(): Promise<void>;
}

export async function startPublishSocket(options: PublishSocketOptions): Promise<PublishSocket> {
  const logger = options.logger ?? pino({ level: 'silent' });
  const maxLineBytes = options.maxLineBytes ?? 1024 * 1024;
  const sockets = new Set<Socket>();
  // Half-open: a client may send its lines and EOF, then read the replies.
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', (error) => logger.debug({ err: describeError(error) }, 'hub: publish socket client error'));
    serve(socket, options.node, maxLineBytes);
  });
  if (existsSync(options.socketPath)) unlinkSync(options.socketPath);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(options.socketPath, options.mode ?? 0o660);
  return {
    socketPath: options.socketPath,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/** Reads lines, runs them one after another (so one connection's publishes keep their order), replies per line. */
function serve(socket: Socket, node: HubNode, maxLineBytes: number): void {
  let buffered = '';
  let skipping = false;
  let chain = Promise.resolve();
  socket.setEncoding('utf8');
  socket.on('data', (text: string) => {
    buffered += text;
    let newline;
    while ((newline = buffered.indexOf('\n')) !== -1) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (skipping) {
        skipping = false;
        continue;
      }
      if (line.trim() === '') continue;
      chain = chain.then(() => answer(socket, node, line, maxLineBytes));
    }
    if (Buffer.byteLength(buffered) > maxLineBytes && !skipping) {
      const size = Buffer.byteLength(buffered);
      buffered = '';
      skipping = true;
      chain = chain.then(() => reply(socket, undefined, new KoboldError('KOBOLD_ERR_HUB_TOO_LARGE', { size: `more than ${size}`, limit: maxLineBytes })));
    } else if (skipping) {
      buffered = '';
    }
  });
  socket.on('end', () => {
    if (buffered.trim() !== '' && !skipping) chain = chain.then(() => answer(socket, node, buffered, maxLineBytes));
    void chain.then(() => socket.end());
  });
}

async function answer(socket: Socket, node: HubNode, line: string, maxLineBytes: number): Promise<void> {
  let id: unknown;
  try {
    if (Buffer.byteLength(line) > maxLineBytes) throw new KoboldError('KOBOLD_ERR_HUB_TOO_LARGE', { size: Buffer.byteLength(line), limit: maxLineBytes });
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new KoboldError('KOBOLD_ERR_HUB_INVALID_JSON', { reason: (error as Error).message });
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new KoboldError('KOBOLD_ERR_HUB_BAD_COMMAND', { reason: 'each line is a JSON object' });
    }
    const { id: given, ...command } = value as Record<string, unknown>;
    id = given;
    const result = await runServerCommand(node, parseServerCommand(command));
    write(socket, (id === undefined ? '{' : '{"id":' + JSON.stringify(id) + ',') + '"result":' + result + '}');
  } catch (error) {
    reply(socket, id, error);
  }
}

function reply(socket: Socket, id: unknown, error: unknown): void {
  write(socket, JSON.stringify(id === undefined ? { error: errorBody(error) } : { id, error: errorBody(error) }));
}

function write(socket: Socket, line: string): void {
  if (!socket.destroyed && socket.writable) socket.write(line + '\n');
}
