// Why the server closes a client connection. The code's range tells the client what to do:
//   3000–3499  reconnect (with backoff), resuming from its last offsets;
//   3500–3999  do not reconnect (fix the cause first: a new token, a new page).
// Codes are the WebSocket close code; SSE clients get them in a `disconnect` push.

export interface DisconnectReason {
  readonly code: number;
  readonly reason: string;
  readonly reconnect: boolean;
}

const reason = (code: number, text: string): DisconnectReason => Object.freeze({ code, reason: text, reconnect: shouldReconnect(code) });

export const Disconnects = Object.freeze({
  shutdown: reason(3000, 'server shutting down'),
  slowConsumer: reason(3001, 'too slow to read'),
  forceReconnect: reason(3002, 'disconnected by the server'),
  tokenExpired: reason(3003, 'token expired'),
  invalidToken: reason(3500, 'invalid token'),
  forceNoReconnect: reason(3501, 'disconnected by the server'),
  badRequest: reason(3502, 'protocol violation'),
});

/** What a client decides from a close code; codes outside 3000–3999 (network, 1001, 1006 …) reconnect except 1008/1009. */
export function shouldReconnect(code: number): boolean {
  if (code >= 3500 && code <= 3999) return false;
  return code !== 1008 && code !== 1009;
}
