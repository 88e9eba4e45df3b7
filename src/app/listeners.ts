import { createServer, type Server, type Socket } from 'node:net';
import { describeError } from '../errors.js';
import { removeStaleSocket } from '../ipc/unix-socket.js';
import type { Logger } from '../log/logger.js';

export interface ListenOptions {
  /** TCP port (shared by the service's workers through node:cluster)… */
  port?: number;
  host?: string;
  /** …or a UNIX socket path. */
  path?: string;
  /** A longer line is answered with an error and the connection closed. Default 64 KiB. */
  maxLineBytes?: number;
}

export interface LineHandlers {
  onConnection?(socket: Socket): void;
  /** One line, without its `\n` or `\r\n`. */
  onLine?(line: string, socket: Socket): void;
  onClose?(socket: Socket): void;
}

const DEFAULT_MAX_LINE_BYTES = 64 * 1024;

/** The line/stream protocol servers of one app instance (`ctx.listen`). */
export class Listeners {
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();

  constructor(private readonly logger: Logger) {}

  /** Starts a server; resolves with where it listens ("host:port" or the path). */
  async listen(options: ListenOptions, handlers: LineHandlers): Promise<string> {
    if ((options.port === undefined) === (options.path === undefined)) throw new Error('ctx.listen needs exactly one of "port" or "path"');
    const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    const server = createServer((socket) => this.serve(socket, handlers, maxLineBytes));
    // Not listenUnix: the service's workers share this socket through the master, like a port;
    // a live file is a sibling worker's.
    if (options.path !== undefined) await removeStaleSocket(options.path);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const done = () => {
        server.off('error', reject);
        resolve();
      };
      if (options.path !== undefined) server.listen(options.path, done);
      else server.listen(options.port, options.host ?? '127.0.0.1', done);
    });
    this.servers.push(server);
    const address = server.address();
    return typeof address === 'string' ? address : `${address?.address}:${address?.port}`;
  }

  /** Stops accepting and ends every connection (on drain). */
  closeAll(): void {
    for (const server of this.servers) server.close();
    for (const socket of this.sockets) socket.end();
  }

  private serve(socket: Socket, handlers: LineHandlers, maxLineBytes: number): void {
    this.sockets.add(socket);
    socket.on('error', (error) => this.logger.debug({ err: error }, `listener connection error: ${describeError(error)}`));
    socket.on('close', () => {
      this.sockets.delete(socket);
      handlers.onClose?.(socket);
    });
    handlers.onConnection?.(socket);
    if (handlers.onLine === undefined) return;
    let pending = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      pending += chunk;
      let newline = pending.indexOf('\n');
      while (newline !== -1) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        try {
          handlers.onLine!(line.endsWith('\r') ? line.slice(0, -1) : line, socket);
        } catch (error) {
          this.logger.error({ err: error }, `line handler failed: ${describeError(error)}`);
        }
        newline = pending.indexOf('\n');
      }
      if (Buffer.byteLength(pending) > maxLineBytes) {
        socket.end(`ERROR line too long (max ${maxLineBytes} bytes)\r\n`);
        pending = '';
      }
    });
  }
}
