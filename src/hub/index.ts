// The hub's public surface: what the app layer mounts and what apps call.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import type { HubNode } from './node.js';
import type { Session } from './session.js';
import { createCommandHandler } from './transports/command.js';
import { createLongPollHandler } from './transports/longpoll.js';
import { createRefreshHandler } from './transports/refresh.js';
import { createSseHandler } from './transports/sse.js';
import { acceptWebSocket } from './transports/ws.js';

export { createApiHandler, type ApiOptions } from './api.js';
export { startPublishSocket, type PublishSocket, type PublishSocketOptions } from './publish-socket.js';
export { signHubToken, createTokenVerifier, type HubTokenClaims, type TokenOptions } from './auth.js';
export { MemoryBackend } from './backends/memory.js';
export { connectHub, SocketBackend, type ConnectHubOptions } from './backends/socket.js';
export { Disconnects, shouldReconnect } from './disconnect.js';
export { startHubLogServer, type HubLogServer, type HubLogServerOptions } from './log-server.js';
export { HubNode, type HubNodeOptions } from './node.js';
export { namespace, resolveHubOptions, type HubOptions, type HubOptionsInput } from './options.js';
export { webSocketServerOptions } from './transports/ws.js';
export type * from './types.js';

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface HubRoute {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly handler: HttpHandler;
}

/** The hub's HTTP routes under `prefix`, for the app layer's router (the WebSocket path is upgraded separately). */
export function hubRoutes(node: HubNode, prefix = '/hub'): { routes: HubRoute[]; webSocketPath: string; acceptWebSocket: (socket: WebSocket) => Session } {
  return {
    routes: [
      { method: 'GET', path: `${prefix}/sse`, handler: createSseHandler(node) },
      { method: 'POST', path: `${prefix}/poll`, handler: createLongPollHandler(node) },
      { method: 'POST', path: `${prefix}/refresh`, handler: createRefreshHandler(node) },
      { method: 'POST', path: `${prefix}/command`, handler: createCommandHandler(node) },
    ],
    webSocketPath: `${prefix}/ws`,
    acceptWebSocket: (socket) => acceptWebSocket(node, socket),
  };
}
