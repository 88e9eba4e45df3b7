// Every error Kobold raises on purpose has a stable code, a message template and,
// where it applies, an HTTP status or a WebSocket close code. The list of codes is
// documented in docs/errors.md; keep the two in step.

interface ErrorDefinition {
  /** Message with `{name}` placeholders filled from the error's params. */
  readonly template: string;
  readonly status?: number;
  readonly closeCode?: number;
}

const definitions = {
  // --- config and CLI
  KOBOLD_ERR_CONFIG_INVALID: { template: 'invalid configuration in {source}:\n{details}' },
  KOBOLD_ERR_CONFIG_NOT_FOUND: { template: 'config file not found: {path}' },
  KOBOLD_ERR_CONFIG_LOAD: { template: 'could not load config {path}: {reason}' },
  // --- daemon lifecycle and control socket
  KOBOLD_ERR_ALREADY_RUNNING: { template: 'kobold is already running (pid {pid}, pid file {pidFile})' },
  KOBOLD_ERR_NOT_RUNNING: { template: 'kobold is not running (no live daemon behind {pidFile})' },
  KOBOLD_ERR_START_FAILED: { template: 'the daemon failed to start: {reason}' },
  KOBOLD_ERR_CONTROL_REQUEST: { template: 'bad control request: {reason}' },
  KOBOLD_ERR_CONTROL_TIMEOUT: { template: 'no answer from the daemon within {timeoutMs} ms' },
  KOBOLD_ERR_UNKNOWN_SERVICE: { template: 'unknown service "{service}"' },
  KOBOLD_ERR_UNKNOWN_WORKER: { template: 'no worker with id {worker}' },
  KOBOLD_ERR_PRIVILEGES: { template: 'could not drop privileges to {target}: {reason}' },
  // --- apps and serving
  KOBOLD_ERR_APP_LOAD: { template: 'app "{app}" could not be loaded from {module}: {reason}' },
  KOBOLD_ERR_APP_HOOK: { template: 'app "{app}" failed in its {hook} hook: {reason}' },
  KOBOLD_ERR_APP_CONFIG: { template: 'app "{app}" has an invalid config: {details}' },
  KOBOLD_ERR_HOOK_TIMEOUT: { template: 'app "{app}": {hook} hook did not finish within {timeoutMs} ms' },
  KOBOLD_ERR_NOT_FOUND: { template: 'no route for {method} {path}', status: 404 },
  KOBOLD_ERR_BODY_TOO_LARGE: { template: 'request body exceeds {limit} bytes', status: 413 },
  KOBOLD_ERR_BAD_REQUEST: { template: '{reason}', status: 400 },
  KOBOLD_ERR_UNAUTHORIZED: { template: '{reason}', status: 401 },
  KOBOLD_ERR_FORBIDDEN: { template: '{reason}', status: 403 },
  KOBOLD_ERR_SERVICE_UNAVAILABLE: { template: '{reason}', status: 503 },
  KOBOLD_ERR_INTERNAL: { template: 'internal error', status: 500 },
  // --- hub
  KOBOLD_ERR_HUB_OPTIONS: { template: 'invalid hub option {option}: {reason}' },
  KOBOLD_ERR_HUB_BAD_CHANNEL: { template: 'invalid channel "{channel}": {reason}', status: 400 },
  KOBOLD_ERR_HUB_UNKNOWN_NAMESPACE: { template: 'unknown namespace "{namespace}" (channel "{channel}")', status: 404 },
  KOBOLD_ERR_HUB_FORBIDDEN: { template: 'not allowed to {action} "{channel}"', status: 403 },
  KOBOLD_ERR_HUB_PRESENCE_DISABLED: { template: 'presence is off in namespace "{namespace}"', status: 400 },
  KOBOLD_ERR_HUB_TOKEN_INVALID: { template: 'invalid token: {reason}', status: 401, closeCode: 3500 },
  KOBOLD_ERR_HUB_TOKEN_EXPIRED: { template: 'token expired', status: 401, closeCode: 3003 },
  KOBOLD_ERR_HUB_API_KEY: { template: 'missing or wrong API key', status: 401 },
  KOBOLD_ERR_HUB_API_DISABLED: { template: 'the hub HTTP API is off: set hub.apiKey in the config to enable it', status: 403 },
  KOBOLD_ERR_HUB_INVALID_JSON: { template: 'invalid JSON: {reason}', status: 400 },
  KOBOLD_ERR_HUB_BAD_COMMAND: { template: 'bad command: {reason}', status: 400 },
  KOBOLD_ERR_HUB_UNKNOWN_COMMAND: { template: 'unknown command "{command}"', status: 400 },
  KOBOLD_ERR_HUB_NOT_CONNECTED: { template: 'send a "connect" command first', status: 400 },
  KOBOLD_ERR_HUB_TOO_LARGE: { template: 'message of {size} bytes exceeds the limit of {limit} bytes', status: 413 },
  KOBOLD_ERR_HUB_TOO_MANY_SUBSCRIPTIONS: { template: 'too many subscriptions: the limit is {limit}', status: 400 },
  KOBOLD_ERR_HUB_FLOOD: { template: 'too many commands: the limit is {limit} per second', status: 429 },
  KOBOLD_ERR_HUB_UNAVAILABLE: { template: 'hub log server unavailable: {reason}', status: 503 },
  KOBOLD_ERR_HUB_TIMEOUT: { template: 'hub request "{op}" got no answer within {timeoutMs} ms', status: 503 },
  KOBOLD_ERR_HUB_WIRE: { template: 'hub wire protocol error: {reason}' },
  KOBOLD_ERR_HUB_INTERNAL: { template: 'internal error', status: 500 },
  // --- jobs
  KOBOLD_ERR_JOBS_TASK_DEFINITION: { template: 'invalid task definition{task}: {field} {reason}' },
  KOBOLD_ERR_JOBS_TASK_LOAD: { template: 'could not load task module {module}: {reason}' },
  KOBOLD_ERR_JOBS_BAD_SCHEDULE: { template: 'task "{task}": bad schedule {field}: {reason}' },
  KOBOLD_ERR_JOBS_OPTION: { template: 'invalid jobs option {option}: {reason}' },
  KOBOLD_ERR_JOBS_UNKNOWN_TASK: { template: 'unknown task "{task}"', status: 400 },
  KOBOLD_ERR_JOBS_BAD_ARGS: { template: 'arguments for task "{task}" are invalid: {details}', status: 400 },
  KOBOLD_ERR_JOBS_ARGS_TOO_LARGE: { template: 'arguments for task "{task}" are {size} bytes, over the limit of {limit}', status: 413 },
  KOBOLD_ERR_JOBS_QUEUE_FULL: { template: 'queue full: {waiting} runs waiting (limit {limit})', status: 503 },
  KOBOLD_ERR_JOBS_RUN_NOT_FOUND: { template: 'no run with id {id}', status: 404 },
  KOBOLD_ERR_JOBS_BAD_TRANSITION: { template: 'run {id} cannot go from {from} to {to}', status: 409 },
  KOBOLD_ERR_JOBS_WIRE: { template: 'task worker protocol error: {reason}' },
  KOBOLD_ERR_JOBS_WORKER_LOST: { template: 'task worker {pid} died mid-run ({exit})' },
  KOBOLD_ERR_JOBS_TIMEOUT: { template: 'run {id} timed out after {timeoutMs} ms' },
  KOBOLD_ERR_JOBS_CANCELLED: { template: 'run {id} was cancelled' },
  KOBOLD_ERR_JOBS_INTERRUPTED: { template: 'run {id} was cut off by a daemon stop' },
  KOBOLD_ERR_JOBS_RESULT_TOO_LARGE: { template: 'result of task "{task}" is {size} bytes, over the limit of {limit}' },
  KOBOLD_ERR_JOBS_UNAVAILABLE: { template: 'the job service is not reachable at {socket}: {reason}', status: 503 },
  KOBOLD_ERR_JOBS_DISABLED: { template: 'jobs are not configured (set jobs.taskModules in the config)', status: 404 },
  // --- shared memory
  KOBOLD_ERR_SHM_UNAVAILABLE: { template: 'shared memory is unavailable: {reason}' },
  KOBOLD_ERR_SHM_OPTION: { template: 'invalid shared memory option {option}: {reason}' },
  KOBOLD_ERR_SHM_OPEN: { template: 'could not open shared memory segment {segment}: {reason}' },
  KOBOLD_ERR_SHM_LAYOUT: { template: 'segment {segment} is not a compatible {kind}: {reason}' },
  KOBOLD_ERR_SHM_TOO_LARGE: { template: 'a record of {size} bytes exceeds the {limit}-byte limit of {segment}' },
  KOBOLD_ERR_SHM_WRITER_BUSY: { template: 'ring {segment} already has a live writer (pid {pid})' },
  KOBOLD_ERR_SHM_TABLE_FULL: { template: 'table {segment} is full: {reason}' },
  KOBOLD_ERR_SHM_TABLE_VALUE: { template: 'table {segment}: bad value for {column}: {reason}' },
  KOBOLD_ERR_SHM_LOCK_TIMEOUT: { template: '{kind} {segment} was not acquired within {timeoutMs} ms' },
  KOBOLD_ERR_SHM_LOCK_NOT_HELD: { template: '{kind} {segment} is not held by this process' },
  KOBOLD_ERR_SHM_QUEUE_FULL: { template: 'queue {segment} is full ({capacity} messages)' },
  // --- chat
  KOBOLD_ERR_CHAT_SETUP: { template: 'the chat app cannot start: {reason}' },
  KOBOLD_ERR_CHAT_SESSION: { template: 'no chat session: {reason}', status: 401 },
  KOBOLD_ERR_CHAT_NICK: { template: 'invalid nickname: {reason}', status: 400 },
  KOBOLD_ERR_CHAT_NICK_TAKEN: { template: 'the nickname "{nick}" is in use; pick another', status: 409 },
  KOBOLD_ERR_CHAT_UNKNOWN_COMMAND: { template: 'unknown command /{command}; type /help for the list', status: 400 },
  KOBOLD_ERR_CHAT_USAGE: { template: 'usage: {usage}', status: 400 },
  KOBOLD_ERR_CHAT_NO_ROOM: { template: 'no room "{room}"', status: 404 },
  KOBOLD_ERR_CHAT_BAD_ROOM: { template: 'invalid room name "{room}": {reason}', status: 400 },
  KOBOLD_ERR_CHAT_NOT_IN_ROOM: { template: 'you are not in "{room}"; /join it first', status: 403 },
  KOBOLD_ERR_CHAT_INVITE_ONLY: { template: '"{room}" is invite-only', status: 403 },
  KOBOLD_ERR_CHAT_NO_CREATE: { template: 'rooms cannot be created here: {reason}', status: 403 },
  KOBOLD_ERR_CHAT_TOO_MANY_ROOMS: { template: 'you are in {limit} private rooms already', status: 400 },
  KOBOLD_ERR_CHAT_NOT_MODERATOR: { template: '/{command} is for moderators of "{room}"', status: 403 },
  KOBOLD_ERR_CHAT_MUTED: { template: 'you are muted in "{room}" until {until}', status: 403 },
  KOBOLD_ERR_CHAT_BANNED: { template: 'you are banned from "{room}" until {until}', status: 403 },
  KOBOLD_ERR_CHAT_FLOOD: { template: 'slow down: at most {rate} messages per second (bursts of {burst})', status: 429 },
  KOBOLD_ERR_CHAT_TOO_LONG: { template: 'the message has {length} characters; the limit is {limit}', status: 413 },
  KOBOLD_ERR_CHAT_EMPTY: { template: 'the message is empty', status: 400 },
  KOBOLD_ERR_CHAT_REJECTED: { template: 'message refused: {reason}', status: 422 },
  KOBOLD_ERR_CHAT_NO_USER: { template: 'no user "{user}"', status: 404 },
  KOBOLD_ERR_CHAT_API_KEY: { template: 'the chat server API needs its key (X-API-Key)', status: 401 },
} as const satisfies Record<string, ErrorDefinition>;

export type ErrorCode = keyof typeof definitions;
export type ErrorParams = Record<string, string | number | undefined>;

export class KoboldError extends Error {
  readonly code: ErrorCode;
  readonly status?: number;
  readonly closeCode?: number;
  readonly params: ErrorParams;

  constructor(code: ErrorCode, params: ErrorParams = {}, options?: { cause?: unknown }) {
    const definition: ErrorDefinition = definitions[code];
    super(formatTemplate(definition.template, params), options);
    this.name = 'KoboldError';
    this.code = code;
    this.params = params;
    if (definition.status !== undefined) this.status = definition.status;
    if (definition.closeCode !== undefined) this.closeCode = definition.closeCode;
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isKoboldError(value: unknown, code?: ErrorCode): value is KoboldError {
  return value instanceof KoboldError && (code === undefined || value.code === code);
}

export function errorCodes(): ErrorCode[] {
  return Object.keys(definitions) as ErrorCode[];
}

/** Every code with its template, status and close code, in declaration order (for docs/errors.md). */
export function errorCatalog(): { code: ErrorCode; template: string; status?: number; closeCode?: number }[] {
  return Object.entries(definitions).map(([code, definition]) => ({ code: code as ErrorCode, ...(definition as ErrorDefinition) }));
}

function formatTemplate(template: string, params: ErrorParams): string {
  return template.replace(/\{(\w+)\}/g, (_, key: string) => String(params[key] ?? `{${key}}`));
}

/** The message of anything thrown, for logs and replies. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
