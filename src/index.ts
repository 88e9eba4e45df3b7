// The public API for config files and app modules.
export { defineConfig } from './config/schema.js';
export type { KoboldConfigInput, ScalingInput, ScalingPolicy } from './config/schema.js';
export { defineApp } from './app/define.js';
export type { AppDefinition } from './app/define.js';
export type { AppContext } from './app/context.js';
export type { RouteHandler, RouteParams, NodeHandler } from './app/http-routes.js';
export type { MultipartFile, MultipartHandlers } from './app/body.js';
export type { WsConnection, WsHandler } from './app/websocket.js';
export type { ListenOptions, LineHandlers } from './app/listeners.js';
export { defineTask } from './jobs/task.js';
export type { TaskContext, TaskDefinition, TaskOptions, TaskResources, Backoff, Isolation, OverlapPolicy, MissedPolicy } from './jobs/task.js';
export type { JobsClient, EnqueueOptions } from './jobs/client.js';
export type { RunRecord, LogLine, RunError, RunProgress } from './jobs/store.js';
export type { RunState } from './jobs/states.js';
export type { Hub, Publication } from './hub/types.js';
export type { ShmApi } from './shm/app-api.js';
export { KoboldError, isKoboldError } from './errors.js';
export type { ErrorCode } from './errors.js';
