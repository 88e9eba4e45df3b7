import { extname } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AppConfig } from '../config/schema.js';
import { describeError, KoboldError } from '../errors.js';
import { type AppDefinition, isAppDefinition } from './define.js';

const BUILTIN_APPS: Record<string, () => Promise<{ default: unknown }>> = {
  hello: () => import('./builtin/hello.js'),
  chat: () => import('../apps/chat/app.js'),
  jobs: () => import('../jobs/jobs-app.js'),
  tasks: () => import('../jobs/tasks-app.js'),
  'hub-writer': () => import('../hub/writer-app.js'),
};

/** Imports an app module: a built-in, compiled JS, or TypeScript through tsx with no build step. */
export async function importApp(appConfig: AppConfig): Promise<AppDefinition<unknown>> {
  const { module } = appConfig;
  let loaded: unknown;
  try {
    if (module.startsWith('kobold:')) {
      const builtin = BUILTIN_APPS[module.slice('kobold:'.length)];
      if (builtin === undefined) throw new Error(`no built-in app "${module}" (built-ins: ${Object.keys(BUILTIN_APPS).join(', ')})`);
      loaded = (await builtin()).default;
    } else if (['.ts', '.mts', '.cts'].includes(extname(module))) {
      const { tsImport } = await import('tsx/esm/api');
      loaded = unwrapDefault(await tsImport(pathToFileURL(module).href, import.meta.url));
    } else {
      loaded = unwrapDefault(await import(pathToFileURL(module).href));
    }
  } catch (error) {
    throw new KoboldError('KOBOLD_ERR_APP_LOAD', { app: appConfig.name, module, reason: describeError(error) }, { cause: error });
  }
  if (!isAppDefinition(loaded)) {
    throw new KoboldError('KOBOLD_ERR_APP_LOAD', { app: appConfig.name, module, reason: 'its default export is not a defineApp(...) result' });
  }
  return loaded;
}

function unwrapDefault(module: Record<string, unknown>): unknown {
  const value = module.default;
  if (isAppDefinition(value)) return value;
  // tsx wraps a CommonJS-compiled default once more
  return (value as { default?: unknown } | undefined)?.default ?? value;
}
