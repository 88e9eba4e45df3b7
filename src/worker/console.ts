import { createServer, type Server, type Socket } from 'node:net';
import { describeError } from '../errors.js';
import { listenUnix, removeSocketFile } from '../ipc/unix-socket.js';
import type { Logger } from '../log/logger.js';

/** The first line `kobold console` sends: whether to run a line-editing terminal REPL. */
export interface ConsoleHello {
  terminal: boolean;
}

/**
 * A REPL inside this worker on a UNIX socket (mode 0600), for `kobold console`. `scope` is
 * put in the REPL's context (the app contexts, the worker). Leaving the REPL closes only the
 * connection; the worker goes on.
 */
export class DebugConsole {
  private readonly server: Server;
  private readonly sessions = new Set<Socket>();

  constructor(
    private readonly path: string,
    private readonly prompt: string,
    private readonly scope: () => Record<string, unknown>,
    private readonly logger: Logger,
  ) {
    this.server = createServer((socket) => this.session(socket));
  }

  listen(): Promise<void> {
    return listenUnix(this.server, this.path);
  }

  close(): void {
    this.server.close();
    for (const socket of this.sessions) socket.destroy();
    removeSocketFile(this.path);
  }

  private session(socket: Socket): void {
    this.sessions.add(socket);
    socket.on('close', () => this.sessions.delete(socket));
    socket.on('error', () => socket.destroy());
    let hello = '';
    const onData = (chunk: Buffer) => {
      hello += chunk.toString('utf8');
      const newline = hello.indexOf('\n');
      if (newline === -1) return;
      socket.off('data', onData);
      const rest = hello.slice(newline + 1);
      let terminal = false;
      try {
        terminal = (JSON.parse(hello.slice(0, newline)) as ConsoleHello).terminal === true;
      } catch {
        socket.end('kobold console: expected a JSON hello line\n');
        return;
      }
      // Held until the REPL reads it (it resumes the socket).
      socket.pause();
      if (rest.length > 0) socket.unshift(Buffer.from(rest));
      void this.start(socket, terminal);
    };
    socket.on('data', onData);
  }

  private async start(socket: Socket, terminal: boolean): Promise<void> {
    // Loaded on the first session, not with the worker: node:repl loads node:domain, which
    // then wraps the construction and every emit of each EventEmitter in the process.
    const { default: repl } = await import('node:repl');
    if (socket.destroyed) return;
    this.logger.info('debug console session opened');
    const server = repl.start({ input: socket, output: socket, prompt: this.prompt, terminal, useGlobal: false, ignoreUndefined: true });
    Object.assign(server.context, this.scope());
    server.on('exit', () => socket.end());
    socket.on('close', () => {
      server.close();
      this.logger.info('debug console session closed');
    });
    server.on('error', (error) => this.logger.warn(`debug console: ${describeError(error)}`));
  }
}
