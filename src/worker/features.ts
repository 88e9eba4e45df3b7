import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { hubFeature } from '../hub/feature.js';
import type { WorkerBoot } from '../ipc/messages.js';
import { jobsFeature } from '../jobs/feature.js';
import type { Logger } from '../log/logger.js';
import type { SupervisorLink } from './supervisor-link.js';
import { shmFeature } from '../shm/app-api.js';

/**
 * A daemon-wide feature running in a worker (the hub client, the jobs client): it adds to every
 * app's ctx and may answer HTTP requests and upgrades before the apps do.
 */
export interface FeatureHandle {
  /** Fields added to every app's ctx, e.g. `{ hub }`. */
  context?: Record<string, unknown>;
  /** Answers the request and returns true, or returns false to leave it to the apps. */
  handleHttp?(req: IncomingMessage, res: ServerResponse): boolean;
  /** Takes a WebSocket upgrade and returns true, or returns false. */
  handleUpgrade?(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** The worker is draining: stop taking new work. */
  drain?(): Promise<void>;
  /** Release everything, after the apps closed. */
  close?(): Promise<void>;
}

export interface FeatureEnvironment {
  boot: WorkerBoot;
  logger: Logger;
  supervisor: SupervisorLink;
}

export interface WorkerFeature {
  name: string;
  /** Starts the feature in this worker, or returns null where it does not apply (disabled, another role). */
  start(env: FeatureEnvironment): Promise<FeatureHandle | null>;
}

/** Every feature, started in this order in each worker before its apps' setup. */
export const WORKER_FEATURES: WorkerFeature[] = [hubFeature, jobsFeature, shmFeature];
