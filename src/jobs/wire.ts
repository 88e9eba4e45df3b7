// The protocol between the dispatcher and task workers over a UNIX socket: one JSON
// object per line. A run exchanges a handful of messages, so readability wins over a
// binary framing here. Both sides use `WireConnection`; every message kind is a type.

import type { Socket } from 'node:net';
import { KoboldError } from '../errors.js';
import type { LogStream, RunError } from './store.js';

/** Worker -> dispatcher. */
export type FromWorker =
  /** Sent once, after the task modules have loaded: the worker is ready. */
  | { kind: 'hello'; pid: number; concurrency: number; tasks: string[] }
  | { kind: 'log'; runId: number; stream: Exclude<LogStream, 'system'>; level: string; message: string; at: number }
  | { kind: 'progress'; runId: number; percent: number; message: string | null }
  | { kind: 'result'; runId: number; value: unknown }
  | { kind: 'error'; runId: number; error: RunError }
  /** The worker takes no more runs (it reached its run limit) and will exit when idle. */
  | { kind: 'draining' };

/** Dispatcher -> worker. */
export type ToWorker =
  | { kind: 'run'; runId: number; task: string; args: unknown; attempt: number; timeoutMs: number }
  | { kind: 'abort'; runId: number; reason: 'cancelled' | 'timed_out' };

export interface WireLimits {
  /** A longer line closes the connection: it is a bug or an attack, not a message. */
  maxMessageBytes: number;
}

/** One side of a connection: writes messages, parses lines, reports malformed input. */
export class WireConnection<In extends { kind: string }, Out extends { kind: string }> {
  private buffered = '';
  private closed = false;
  private corked = false;

  constructor(
    readonly socket: Socket,
    private readonly limits: WireLimits,
    private readonly handlers: {
      message(message: In): void;
      close(error?: KoboldError): void;
    },
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.receive(chunk));
    socket.on('error', () => {
      // 'close' follows and reports it; a peer that vanished is the common case.
    });
    socket.on('close', () => this.finish());
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Messages sent in one tick leave in one write. */
  send(message: Out): void {
    if (this.closed) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(`${JSON.stringify(message)}\n`);
  }

  close(): void {
    this.socket.end();
  }

  private finish(error?: KoboldError): void {
    if (this.closed) return;
    this.closed = true;
    if (error) this.socket.destroy();
    this.handlers.close(error);
  }

  private receive(chunk: string): void {
    this.buffered += chunk;
    if (this.buffered.includes('\n')) this.deliverLines();
    if (Buffer.byteLength(this.buffered) > this.limits.maxMessageBytes) {
      this.finish(new KoboldError('KOBOLD_ERR_JOBS_WIRE', { reason: `message over ${this.limits.maxMessageBytes} bytes` }));
    }
  }

  private deliverLines(): void {
    let newline = this.buffered.indexOf('\n');
    while (newline !== -1 && !this.closed) {
      const line = this.buffered.slice(0, newline);
      this.buffered = this.buffered.slice(newline + 1);
      const message = parseMessage<In>(line);
      if (message instanceof KoboldError) return this.finish(message);
      this.handlers.message(message);
      newline = this.buffered.indexOf('\n');
    }
  }
}

function parseMessage<In extends { kind: string }>(line: string): In | KoboldError {
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value === 'object' && value !== null && typeof (value as { kind?: unknown }).kind === 'string') return value as In;
    return new KoboldError('KOBOLD_ERR_JOBS_WIRE', { reason: 'a message must be an object with a "kind"' });
  } catch (error) {
    return new KoboldError('KOBOLD_ERR_JOBS_WIRE', { reason: `bad JSON: ${(error as Error).message}` });
  }
}

/** A thrown value as a run error the store keeps. */
export function toRunError(error: unknown): RunError {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      name: error.name,
      message: error.message,
      ...(typeof code === 'string' && { code }),
      ...(error.stack !== undefined && { stack: error.stack }),
    };
  }
  return { name: 'Error', message: String(error) };
}
