// A UNIX socket any local program (PHP, shell, cron) can publish through: newline-
// delimited JSON, one command per line ({"method":"publish","channel":…,"data":…}),
// one reply line each, in order. Same commands as the HTTP API; the socket file's
// permissions are the access control.
import { createServer, type Socket } from 'node:net';
import pino, { type Logger } from 'pino';
import { describeError, KoboldError } from '../errors.js';
import { listenUnix } from '../ipc/unix-socket.js';
import type { HubNode } from './node.js';
import { errorBody } from './protocol.js';
import { asPublishCommand, parseServerCommand, runPublish, runServerCommand } from './server-commands.js';

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
    new Connection(socket, options.node, maxLineBytes);
  });
  // Bound by this process, not through the cluster master (which would remove the socket
  // file when it closes its handle, possibly after a successor bound the same path).
  await listenUnix(server, options.socketPath, { mode: options.mode ?? 0o660 });
  return {
    socketPath: options.socketPath,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/**
 * One client: reads lines and runs them one after another, so its publishes keep their
 * order. A line that completes at once (a publish on the writer's own state, an error) is
 * answered in the same turn, and the replies of one read go out in one write; a line after
 * one still running waits for it.
 */
class Connection {
  /** Text after the last newline read. */
  private buffered = '';
  /** The rest of a too-long line is being dropped. */
  private skipping = false;
  /** Replies of this read, written together at its end. */
  private replies = '';
  /** The newest line still running, and the lines after it; null when none is. */
  private pending: Promise<void> | null = null;

  constructor(
    private readonly socket: Socket,
    private readonly node: HubNode,
    private readonly maxLineBytes: number,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => this.read(text));
    socket.on('end', () => this.end());
  }

  private read(text: string): void {
    const buffered = this.buffered + text;
    let start = 0;
    let newline;
    while ((newline = buffered.indexOf('\n', start)) !== -1) {
      const line = buffered.slice(start, newline);
      start = newline + 1;
      if (this.skipping) this.skipping = false;
      else if (line.trim() !== '') this.run(line);
    }
    const rest = start === 0 ? buffered : buffered.slice(start);
    if (this.skipping) {
      this.buffered = '';
    } else if (longerThan(rest, this.maxLineBytes)) {
      const size = Buffer.byteLength(rest);
      this.buffered = '';
      this.skipping = true;
      this.reply(failure(undefined, new KoboldError('KOBOLD_ERR_HUB_TOO_LARGE', { size: `more than ${size}`, limit: this.maxLineBytes })));
    } else {
      this.buffered = rest;
    }
    this.flush();
  }

  private end(): void {
    if (this.buffered.trim() !== '' && !this.skipping) this.run(this.buffered);
    this.flush();
    if (this.pending === null) this.socket.end();
    else void this.pending.then(() => this.socket.end());
  }

  private run(line: string): void {
    if (this.pending !== null) return this.wait(this.pending.then(() => answer(this.node, line, this.maxLineBytes)));
    const reply = answer(this.node, line, this.maxLineBytes);
    if (typeof reply === 'string') this.replies += reply;
    else this.wait(reply);
  }

  private reply(text: string): void {
    if (this.pending === null) this.replies += text;
    else this.wait(this.pending.then(() => text));
  }

  /** Writes the reply when it comes (after the lines before it); later lines wait for it. */
  private wait(reply: Promise<string>): void {
    const done: Promise<void> = reply.then((text) => {
      write(this.socket, text);
      if (this.pending === done) this.pending = null;
    });
    this.pending = done;
  }

  private flush(): void {
    if (this.replies === '') return;
    write(this.socket, this.replies);
    this.replies = '';
  }
}

/** The reply line (newline included) to one command line; a promise when the command runs on. */
function answer(node: HubNode, line: string, maxLineBytes: number): string | Promise<string> {
  let id: unknown;
  try {
    if (longerThan(line, maxLineBytes)) {
      throw new KoboldError('KOBOLD_ERR_HUB_TOO_LARGE', { size: Buffer.byteLength(line), limit: maxLineBytes });
    }
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new KoboldError('KOBOLD_ERR_HUB_INVALID_JSON', { reason: (error as Error).message });
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new KoboldError('KOBOLD_ERR_HUB_BAD_COMMAND', { reason: 'each line is a JSON object' });
    }
    id = (value as Record<string, unknown>).id;
    const publish = asPublishCommand(value as Record<string, unknown>);
    const result = publish === null ? runOther(node, value as Record<string, unknown>) : runPublish(node, publish.channel, publish.data);
    if (typeof result === 'string') return success(id, result);
    const answered = id;
    return result.then((json) => success(answered, json), (error: unknown) => failure(answered, error));
  } catch (error) {
    return failure(id, error);
  }
}

/** Any command but a well-formed publish: the schema checks it and names what is wrong. */
function runOther(node: HubNode, value: Record<string, unknown>): Promise<string> {
  const { id: _id, ...command } = value;
  return runServerCommand(node, parseServerCommand(command));
}

/** Whether `text` takes more than `maxBytes` in UTF-8 (counted only when it could: 3 bytes a code unit at most). */
function longerThan(text: string, maxBytes: number): boolean {
  return text.length * 3 > maxBytes && Buffer.byteLength(text) > maxBytes;
}

function success(id: unknown, result: string): string {
  return (id === undefined ? '{' : '{"id":' + JSON.stringify(id) + ',') + '"result":' + result + '}\n';
}

function failure(id: unknown, error: unknown): string {
  return JSON.stringify(id === undefined ? { error: errorBody(error) } : { id, error: errorBody(error) }) + '\n';
}

function write(socket: Socket, text: string): void {
  if (!socket.destroyed && socket.writable) socket.write(text);
}
