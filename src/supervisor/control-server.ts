import { createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { describeError, KoboldError } from '../errors.js';
import { CONTROL_COMMANDS, type ControlReply, type ControlRequest } from '../ipc/control.js';
import { listenUnix, removeSocketFile } from '../ipc/unix-socket.js';

const MAX_LINE_BYTES = 64 * 1024;

export type ControlHandler = (request: ControlRequest) => Promise<unknown>;

/** The master's control socket: a UNIX socket (mode 0600) speaking JSON lines. */
export class ControlServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly path: string,
    private readonly handler: ControlHandler,
  ) {
    this.server = createServer((socket) => this.serve(socket));
  }

  /** Listens, replacing a socket file left by a dead daemon (the caller holds the pid file). */
  listen(): Promise<void> {
    return listenUnix(this.server, this.path);
  }

  close(): void {
    this.server.close();
    for (const socket of this.sockets) socket.destroy();
    removeSocketFile(this.path);
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const lines = createInterface({ input: socket, crlfDelay: Infinity });
    lines.on('line', (line) => {
      if (Buffer.byteLength(line) > MAX_LINE_BYTES) {
        this.reply(socket, { id: 0, ok: false, error: { code: 'KOBOLD_ERR_CONTROL_REQUEST', message: `request line over ${MAX_LINE_BYTES} bytes` } });
        socket.end();
        return;
      }
      void this.answer(socket, line);
    });
  }

  private async answer(socket: Socket, line: string): Promise<void> {
    const value = parseLine(line);
    // A reply carries the request's id whenever the line had one, even when the request is bad.
    const id = value !== null && typeof value === 'object' && typeof (value as { id?: unknown }).id === 'number' ? (value as { id: number }).id : 0;
    try {
      const request = validateRequest(value);
      const result = await this.handler(request);
      this.reply(socket, { id, ok: true, result: result ?? null });
    } catch (error) {
      const code = error instanceof KoboldError ? error.code : 'KOBOLD_ERR_INTERNAL';
      const problems = (error as { problems?: unknown }).problems;
      this.reply(socket, { id, ok: false, error: { code, message: describeError(error), ...(Array.isArray(problems) ? { problems } : {}) } });
    }
  }

  private reply(socket: Socket, reply: ControlReply): void {
    if (!socket.destroyed) socket.write(`${JSON.stringify(reply)}\n`);
  }
}

const NOT_JSON = Symbol('not JSON');

function parseLine(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return NOT_JSON;
  }
}

function validateRequest(value: unknown): ControlRequest {
  if (value === NOT_JSON) throw new KoboldError('KOBOLD_ERR_CONTROL_REQUEST', { reason: 'not a JSON line' });
  if (value === null || typeof value !== 'object') throw new KoboldError('KOBOLD_ERR_CONTROL_REQUEST', { reason: 'expected a JSON object' });
  const { id, cmd } = value as { id?: unknown; cmd?: unknown };
  if (typeof id !== 'number') throw new KoboldError('KOBOLD_ERR_CONTROL_REQUEST', { reason: '"id" must be a number' });
  if (typeof cmd !== 'string' || !(CONTROL_COMMANDS as readonly string[]).includes(cmd)) {
    throw new KoboldError('KOBOLD_ERR_CONTROL_REQUEST', { reason: `unknown command ${JSON.stringify(cmd)} (commands: ${CONTROL_COMMANDS.join(', ')})` });
  }
  if (cmd === 'scale') {
    const { service, delta } = value as { service?: unknown; delta?: unknown };
    if (typeof service !== 'string' || typeof delta !== 'number' || !Number.isInteger(delta)) {
      throw new KoboldError('KOBOLD_ERR_CONTROL_REQUEST', { reason: 'scale needs "service" (string) and "delta" (integer)' });
    }
  }
  return value as ControlRequest;
}

