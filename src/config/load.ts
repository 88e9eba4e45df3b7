import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { z } from 'zod';
import { describeError, KoboldError } from '../errors.js';
import { daemonDefaults, DEFAULT_SERVICE_NAME } from './defaults.js';
import { withDemoApp } from './demo.js';
import { expandConfig } from './expand.js';
import { configSchema, type KoboldConfig } from './schema.js';

export const CONFIG_FILE_NAMES = ['kobold.config.ts', 'kobold.config.mjs', 'kobold.config.js', 'kobold.config.json'];

/** A validated config plus where it came from; paths in it are absolute. */
export interface ResolvedConfig extends KoboldConfig {
  /** The config file, or null when running on defaults. */
  readonly configFile: string | null;
  readonly pidFile: string;
  readonly controlSocket: string;
}

export interface ConfigProblem {
  path: string;
  message: string;
}

/** Finds the config file: the one named, else kobold.config.* in `cwd`, else none. */
export function findConfigFile(explicit: string | undefined, cwd = process.cwd()): string | null {
  if (explicit !== undefined) {
    const path = resolve(cwd, explicit);
    if (!existsSync(path)) throw new KoboldError('KOBOLD_ERR_CONFIG_NOT_FOUND', { path });
    return path;
  }
  for (const candidate of CONFIG_FILE_NAMES) {
    const path = join(cwd, candidate);
    if (existsSync(path)) return path;
  }
  return null;
}

/** Reads the file's default export (or the JSON), without validating it. */
export async function readConfigFile(path: string): Promise<unknown> {
  try {
    if (extname(path) === '.json') return JSON.parse(await readFile(path, 'utf8'));
    // A query string defeats the module cache, so `reload` sees the edited file.
    const url = `${pathToFileURL(path).href}?v=${Date.now()}`;
    if (extname(path) === '.ts' || extname(path) === '.mts') {
      const { tsImport } = await import('tsx/esm/api');
      const module = await tsImport(url, import.meta.url);
      return unwrapDefault(module);
    }
    return unwrapDefault(await import(url));
  } catch (error) {
    throw new KoboldError('KOBOLD_ERR_CONFIG_LOAD', { path, reason: describeError(error) }, { cause: error });
  }
}

function unwrapDefault(module: Record<string, unknown>): unknown {
  let value: unknown = module.default ?? module;
  // tsx may wrap a CommonJS-compiled default once more.
  if (value !== null && typeof value === 'object' && 'default' in value && Object.keys(value).length === 1) {
    value = (value as { default: unknown }).default;
  }
  return value;
}

/** Environment overrides for the common keys, applied before validation. */
export function applyEnvOverrides(input: unknown, env: NodeJS.ProcessEnv): unknown {
  if (!isPlainObject(input)) return input;
  const config = { ...input };
  if (env.KOBOLD_LOG_LEVEL) config.logLevel = env.KOBOLD_LOG_LEVEL;
  if (env.KOBOLD_RUN_DIR) config.runDir = env.KOBOLD_RUN_DIR;
  if (env.KOBOLD_LOG_FILE) config.logFile = env.KOBOLD_LOG_FILE;
  const { KOBOLD_PORT: port, KOBOLD_WORKERS: workers } = env;
  if (port) changeWebService(config, (service) => (service.port = envNumber(port)));
  if (workers) changeWebService(config, (service) => setWorkerCount(service, envNumber(workers)));
  return config;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Changes the "web" service (else the first one) of raw config input, creating it if there is none. */
function changeWebService(config: Record<string, unknown>, change: (service: Record<string, unknown>) => void): void {
  const services = { ...(isPlainObject(config.services) ? config.services : { [DEFAULT_SERVICE_NAME]: {} }) };
  const target = DEFAULT_SERVICE_NAME in services ? DEFAULT_SERVICE_NAME : Object.keys(services)[0];
  if (target === undefined) return;
  const service = { ...(isPlainObject(services[target]) ? services[target] : {}) };
  change(service);
  services[target] = service;
  config.services = services;
}

/** `--workers N`: start N workers, widening min/max so that N fits. */
function setWorkerCount(service: Record<string, unknown>, count: number | string): void {
  service.workers = count;
  if (typeof count !== 'number') return; // the schema names the bad value
  if (typeof service.maxWorkers !== 'number' || service.maxWorkers < count) service.maxWorkers = count;
  if (typeof service.minWorkers === 'number' && service.minWorkers > count) service.minWorkers = count;
}

function envNumber(text: string): number | string {
  const value = Number(text);
  return Number.isFinite(value) ? value : text; // let the schema name the bad value
}

/** Validates raw config input; every problem names its path. */
export function validateConfig(input: unknown): { config: KoboldConfig } | { problems: ConfigProblem[] } {
  const result = configSchema.safeParse(input ?? {});
  if (result.success) return { config: result.data };
  return { problems: result.error.issues.map(describeIssue) };
}

function describeIssue(issue: z.core.$ZodIssue): ConfigProblem {
  const path = issue.path.length === 0 ? '(root)' : issue.path.map(String).join('.');
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') message = `unknown key(s): ${issue.keys.join(', ')}`;
  return { path, message };
}

export function formatProblems(problems: ConfigProblem[]): string {
  return problems.map((p) => `  ${p.path}: ${p.message}`).join('\n');
}

export interface LoadOptions {
  configFile?: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** `--workers N` from the command line: wins over the file and the environment. */
  workers?: number;
}

/** Finds, reads, overrides and validates the config; throws KOBOLD_ERR_CONFIG_INVALID listing every problem. */
export async function loadConfig(options: LoadOptions = {}): Promise<ResolvedConfig> {
  const cwd = options.cwd ?? process.cwd();
  const configFile = findConfigFile(options.configFile, cwd);
  const raw = configFile === null ? {} : await readConfigFile(configFile);
  let input = applyEnvOverrides(raw, options.env ?? process.env);
  if (isPlainObject(input)) input = withDemoApp(input, runDirOf(input, configFile, cwd));
  const { workers } = options;
  if (workers !== undefined && isPlainObject(input)) changeWebService(input, (service) => setWorkerCount(service, workers));
  const result = validateConfig(input);
  if ('problems' in result) {
    throw new KoboldError('KOBOLD_ERR_CONFIG_INVALID', {
      source: configFile ?? 'the defaults',
      details: formatProblems(result.problems),
    });
  }
  return resolvePaths(expandConfig(result.config), configFile, cwd);
}

/** The run dir a raw config asks for, resolved like resolvePaths does. */
function runDirOf(input: Record<string, unknown>, configFile: string | null, cwd: string): string {
  const base = configFile === null ? cwd : dirname(configFile);
  return resolve(base, typeof input.runDir === 'string' ? input.runDir : daemonDefaults.runDir);
}

function resolvePaths(config: KoboldConfig, configFile: string | null, cwd: string): ResolvedConfig {
  const base = configFile === null ? cwd : dirname(configFile);
  const at = (path: string) => (isAbsolute(path) ? path : resolve(base, path));
  const runDir = at(config.runDir);
  return Object.freeze({
    ...config,
    configFile,
    runDir,
    pidFile: config.pidFile ? at(config.pidFile) : join(runDir, 'kobold.pid'),
    controlSocket: config.controlSocket ? at(config.controlSocket) : join(runDir, 'control.sock'),
    logFile: config.logFile ? at(config.logFile) : undefined,
    apps: config.apps.map((app) => ({ ...app, module: app.module.startsWith('kobold:') ? app.module : at(app.module) })),
  });
}
