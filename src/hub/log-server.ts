// The hub's single writer: runs in the `hub` singleton service, assigns offsets, keeps
// history and presence, and streams the log to every web worker over a UNIX socket, or,
// with a ring (the `shm` backend), writes it once to shared memory that the workers that
// ask for it (`readRing`) read themselves (ring-log.ts, backends/shm.ts).
// Web workers connect with connectHub() (backends/socket.ts) or connectHubLog() (backends/shm.ts).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import pino, { type Logger } from 'pino';
import { z } from 'zod';
import { describeError, isKoboldError, KoboldError } from '../errors.js';
import { listenUnix, socketIsLive } from '../ipc/unix-socket.js';
import { MemoryBackend, type MemoryBackendOptions, type StreamSnapshot } from './backends/memory.js';
import { RingLog, type RingLogOptions } from './ring-log.js';
import { BatchWriter } from './turn.js';
import type { HubBackend, NamespaceOptions, PresenceEntry, PublishOptions, StreamPosition } from './types.js';
import {
  DEFAULT_MAX_FRAME_BYTES,
  encodeJson,
  encodePosition,
  encodePublication,
  encodeSequenced,
  type Frame,
  FrameDecoder,
  FrameKind,
} from './wire.js';

export interface HubLogServerOptions {
  socketPath: string;
  namespaces: readonly NamespaceOptions[];
  logger?: Logger;
  maxFrameBytes?: number;
  /** A worker that lets this much pile up unread is cut off (it reconnects and recovers from history). */
  maxBufferedBytesPerWorker?: number;
  /**
   * When a live writer already listens on socketPath (a reload started this one), take its
   * streams and its place instead of failing: same epochs and offsets, so nothing is lost.
   */
  takeOver?: boolean;
  /** Runs when a new writer asks this one to hand over, before the last publication is taken (e.g. close the publish socket). */
  beforeHandOver?: () => Promise<void>;
  /** How long a take-over may take. Default 10 s. */
  takeOverTimeoutMs?: number;
  /**
   * Write the log to this shared-memory ring (the `shm` backend) instead of sending it over
   * the socket to workers that read the ring. Its content rebuilds the streams at start
   * when no predecessor hands over.
   */
  ring?: RingLogOptions;
}

export interface HubLogServer {
  readonly socketPath: string;
  /** Changes on every start: workers see a restarted writer (and its new epochs). */
  readonly instance: string;
  /** The writer's own state, for a HubNode in this process (e.g. behind the publish socket): no socket hop. */
  readonly backend: HubBackend;
  /** Connected workers. */
  connections(): number;
  close(): Promise<void>;
}

const presenceEntry = z.object({
  clientId: z.string().min(1),
  userId: z.string(),
  info: z.record(z.string(), z.unknown()).optional(),
});
const position = z.object({ offset: z.number().int().min(0), epoch: z.string() });

/** What workers may ask the writer besides publishing; each answer is JSON. */
export const logRequest = z.discriminatedUnion('op', [
  z.object({
    op: z.literal('history'),
    channel: z.string(),
    limit: z.number().int().min(0).optional(),
    since: position.optional(),
  }),
  z.object({ op: z.literal('addPresence'), channel: z.string(), entry: presenceEntry }),
  z.object({ op: z.literal('removePresence'), channel: z.string(), clientId: z.string() }),
  z.object({ op: z.literal('presence'), channel: z.string() }),
  z.object({ op: z.literal('presenceCounts'), channel: z.string() }),
  /** From a new writer: stop, and answer every stream (StreamSnapshot[]). */
  z.object({ op: z.literal('handOver') }),
  /** From a worker that reads the ring named in the hello: stop sending it publications. */
  z.object({ op: z.literal('readRing') }),
]);
export type LogRequest = z.infer<typeof logRequest>;

/** One connected web worker. */
class WorkerLink {
  readonly writer: BatchWriter;
  readonly decoder: FrameDecoder;
  /** Presence entries this worker added, removed when it goes. */
  readonly presence = new Map<string, { channel: string; clientId: string }>();
  /** The worker reads publications from the ring, not from this socket. */
  viaRing = false;

  constructor(
    readonly socket: Socket,
    maxFrameBytes: number,
  ) {
    this.decoder = new FrameDecoder(maxFrameBytes);
    this.writer = new BatchWriter((chunk) => {
      if (!socket.destroyed) socket.write(chunk);
    });
  }
}

export async function startHubLogServer(options: HubLogServerOptions): Promise<HubLogServer> {
  const logger = options.logger ?? pino({ level: 'silent' });
  const maxBuffered = options.maxBufferedBytesPerWorker ?? 64 * 1024 * 1024;
  let ringLog: RingLog | null = null;
  const backend = new WriterState({ namespaces: options.namespaces }, (channel, data, info) => ringLog?.checkFits(channel, data, info));
  const instance = randomBytes(6).toString('base64url');
  const links = new Set<WorkerLink>();
  /** Set once a successor asked for the log: frames that arrive after that are not applied. */
  let handingOver = false;
  let successorAsked = false;

  const send = (link: WorkerLink, frame: Buffer): void => {
    link.writer.push(frame);
    if (link.socket.writableLength > maxBuffered) {
      logger.warn({ bufferedBytes: link.socket.writableLength }, 'hub: a worker reads too slowly; cutting it off');
      link.socket.destroy();
    }
  };
  backend.onPublication((publication) => {
    ringLog?.append(publication);
    let frame: Buffer | undefined; // encoded once, and only when a worker reads the socket
    for (const link of links) if (!link.viaRing) send(link, (frame ??= encodePublication(publication)));
  });
  backend.onPresence((event) => {
    const frame = encodeJson(FrameKind.presence, JSON.stringify(event));
    for (const link of links) send(link, frame);
  });

  const answer = (link: WorkerLink, request: LogRequest): unknown => {
    switch (request.op) {
      case 'history':
        return backend.historyNow(request.channel, { limit: request.limit, since: request.since });
      case 'addPresence':
        link.presence.set(presenceKey(request.channel, request.entry.clientId), {
          channel: request.channel,
          clientId: request.entry.clientId,
        });
        backend.addPresenceNow(request.channel, request.entry as PresenceEntry);
        return null;
      case 'removePresence':
        link.presence.delete(presenceKey(request.channel, request.clientId));
        backend.removePresenceNow(request.channel, request.clientId);
        return null;
      case 'presence':
        return backend.presenceNow(request.channel);
      case 'presenceCounts':
        return backend.presenceCountsNow(request.channel);
      case 'handOver':
        throw new KoboldError('KOBOLD_ERR_HUB_WIRE', { reason: 'handOver is answered by handOver()' });
      case 'readRing':
        if (ringLog === null) throw new KoboldError('KOBOLD_ERR_HUB_WIRE', { reason: 'this log server writes no ring' });
        link.viaRing = true;
        return null;
    }
  };

  /**
   * A new writer takes over: stop listening, answer it every stream, and end the workers'
   * connections so they reconnect to it. Publications that arrive after the snapshot are
   * not applied; their publishers get an error (the connection closes before the ack).
   */
  const handOver = async (successor: WorkerLink, seq: number): Promise<void> => {
    if (successorAsked) return fail(successor, seq, new KoboldError('KOBOLD_ERR_HUB_UNAVAILABLE', { reason: 'another writer is taking over' }));
    successorAsked = true;
    logger.info('hub: a new writer takes over the log');
    try {
      await options.beforeHandOver?.();
    } catch (error) {
      logger.warn({ err: describeError(error) }, 'hub: beforeHandOver failed; handing over anyway');
    }
    handingOver = true;
    server.close();
    await ringLog?.close(); // the successor becomes the ring's writer and rings its doorbell
    successor.writer.push(encodeSequenced(FrameKind.reply, seq, JSON.stringify(backend.exportStreams())));
    for (const link of links) {
      link.writer.flush();
      link.socket.end();
    }
  };

  const handle = (link: WorkerLink, frame: Frame): void => {
    if (frame.kind === FrameKind.publish) {
      let info;
      try {
        info = frame.info === '' ? undefined : JSON.parse(frame.info);
      } catch (error) {
        fail(link, frame.seq, new KoboldError('KOBOLD_ERR_HUB_WIRE', { reason: `publisher info is not JSON: ${describeError(error)}` }));
        return;
      }
      let assigned: StreamPosition;
      try {
        assigned = backend.publishNow(frame.channel, frame.data, { info });
      } catch (error) {
        fail(link, frame.seq, error);
        return;
      }
      link.writer.push(encodePosition(frame.seq, assigned.offset, assigned.epoch));
      return;
    }
    if (frame.kind !== FrameKind.request) throw new KoboldError('KOBOLD_ERR_HUB_WIRE', { reason: `a worker may not send frame kind ${frame.kind}` });
    try {
      const request = logRequest.parse(JSON.parse(frame.json));
      if (request.op === 'handOver') return void handOver(link, frame.seq);
      link.writer.push(encodeSequenced(FrameKind.reply, frame.seq, JSON.stringify(answer(link, request) ?? null)));
    } catch (error) {
      fail(link, frame.seq, error);
    }
  };

  const fail = (link: WorkerLink, seq: number, error: unknown): void => {
    const body = isKoboldError(error)
      ? { code: error.code, params: error.params }
      : { code: 'KOBOLD_ERR_HUB_WIRE', params: { reason: describeError(error) } };
    link.writer.push(encodeSequenced(FrameKind.failure, seq, JSON.stringify(body)));
  };

  const server: Server = createServer((socket) => {
    const link = new WorkerLink(socket, options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
    links.add(link);
    link.writer.push(encodeJson(FrameKind.hello, JSON.stringify(ringLog === null ? { instance } : { instance, ring: ringLog.info() })));
    socket.on('data', (chunk) => {
      if (handingOver) return;
      try {
        for (const frame of link.decoder.push(chunk)) handle(link, frame);
      } catch (error) {
        logger.warn({ err: describeError(error) }, 'hub: bad bytes from a worker; closing its connection');
        socket.destroy();
      }
    });
    socket.on('error', (error) => logger.debug({ err: describeError(error) }, 'hub: worker connection error'));
    socket.on('close', () => {
      links.delete(link);
      link.writer.clear();
      for (const { channel, clientId } of link.presence.values()) backend.removePresenceNow(channel, clientId);
    });
  });

  const inherited = options.takeOver === true ? await takeOver(options.socketPath, options.takeOverTimeoutMs ?? 10_000) : null;
  if (options.ring !== undefined) {
    ringLog = await RingLog.open(options.ring, logger);
    const recovered = ringLog.recover();
    if (inherited === null && recovered.length > 0) {
      backend.importStreams(recovered);
      logger.info({ streams: recovered.length, segment: options.ring.segment }, 'hub: recovered the log from the ring');
    }
  }
  if (inherited !== null) {
    backend.importStreams(inherited);
    logger.info({ streams: inherited.length }, 'hub: took over the log from the previous writer');
  }
  if (await socketIsLive(options.socketPath)) {
    throw new KoboldError('KOBOLD_ERR_HUB_UNAVAILABLE', { reason: `another log server is listening on ${options.socketPath}` });
  }
  await listenUnix(server, options.socketPath);
  logger.info({ socketPath: options.socketPath, instance }, 'hub: log server listening');

  return {
    socketPath: options.socketPath,
    instance,
    backend,
    connections: () => links.size,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const link of links) link.socket.destroy();
      await closed;
      await ringLog?.close();
      await backend.close();
    },
  };
}

/** The writer's state; with a ring, a publication it cannot hold is refused before it gets an offset. */
class WriterState extends MemoryBackend {
  constructor(
    options: MemoryBackendOptions,
    private readonly check: (channel: string, data: string, info: string) => void,
  ) {
    super(options);
  }

  override publishNow(channel: string, data: string, options: PublishOptions = {}): StreamPosition {
    this.check(channel, data, options.info === undefined ? '' : JSON.stringify(options.info));
    return super.publishNow(channel, data, options);
  }
}

/**
 * Asks the writer listening on socketPath (if any) to hand over: resolves with its streams,
 * or null when nobody listens there.
 */
async function takeOver(socketPath: string, timeoutMs: number): Promise<StreamSnapshot[] | null> {
  if (!existsSync(socketPath)) return null;
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    // A snapshot holds every stream's history: no frame limit on this one connection.
    const decoder = new FrameDecoder(2 ** 31 - 1);
    const timer = setTimeout(() => finish(new KoboldError('KOBOLD_ERR_HUB_UNAVAILABLE', { reason: `the previous writer did not hand over within ${timeoutMs} ms` })), timeoutMs);
    const finish = (outcome: Error | StreamSnapshot[] | null): void => {
      clearTimeout(timer);
      socket.destroy();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED' || error.code === 'ENOENT') finish(null); // a dead writer's file
      else finish(error);
    });
    socket.on('data', (chunk) => {
      try {
        for (const frame of decoder.push(chunk)) {
          if (frame.kind === FrameKind.hello) socket.write(encodeSequenced(FrameKind.request, 1, JSON.stringify({ op: 'handOver' })));
          else if (frame.kind === FrameKind.reply && frame.seq === 1) return finish(JSON.parse(frame.json) as StreamSnapshot[]);
          else if (frame.kind === FrameKind.failure && frame.seq === 1) return finish(new KoboldError('KOBOLD_ERR_HUB_UNAVAILABLE', { reason: `the previous writer refused to hand over: ${frame.json}` }));
        }
      } catch (error) {
        finish(error as Error);
      }
    });
  });
}

function presenceKey(channel: string, clientId: string): string {
  return channel + '\n' + clientId;
}

