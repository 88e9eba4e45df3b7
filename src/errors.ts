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
  KOBOLD_ERR_HOOK_TIMEOUT: { template: 'app "{app}": {hook} hook did not finish within {timeoutMs} ms' },
  KOBOLD_ERR_NOT_FOUND: { template: 'no route for {method} {path}', status: 404 },
  KOBOLD_ERR_BODY_TOO_LARGE: { template: 'request body exceeds {limit} bytes', status: 413 },
  KOBOLD_ERR_BAD_REQUEST: { template: '{reason}', status: 400 },
  KOBOLD_ERR_UNAUTHORIZED: { template: '{reason}', status: 401 },
  KOBOLD_ERR_FORBIDDEN: { template: '{reason}', status: 403 },
  KOBOLD_ERR_SERVICE_UNAVAILABLE: { template: '{reason}', status: 503 },
  // --- hub
  // --- jobs
  // --- shared memory
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

function formatTemplate(template: string, params: ErrorParams): string {
  return template.replace(/\{(\w+)\}/g, (_, key: string) => String(params[key] ?? `{${key}}`));
}

/** The message of anything thrown, for logs and replies. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
