// Builds the browser bundle of the hub client with esbuild. Node-only: not part of the bundle.
// esbuild is imported when a bundle is built, so servers without it only lose the bundle.
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BuildOptions } from 'esbuild';

export interface ClientBundleOptions {
  /** Where to write the bundle, e.g. public/kobold-hub.js. */
  outFile: string;
  /** `esm` for `<script type="module">` / bundlers; `iife` defines `window.KoboldHub`. Default esm. */
  format?: 'esm' | 'iife';
  minify?: boolean;
  sourcemap?: boolean;
  /**
   * Also export `messagePack` (msgpackr's MessagePack for the WebSocket transport:
   * `new HubClient({ url, messagePack })`). Default false: it adds ~32 KB minified (~12 KB gzipped) to ~12 KB.
   */
  messagePack?: boolean;
}

/** A module of the client: the TypeScript source, or its compiled form when running from dist/. */
function clientModule(name: string): string {
  const source = fileURLToPath(new URL(`./${name}.ts`, import.meta.url));
  return existsSync(source) ? source : fileURLToPath(new URL(`./${name}.js`, import.meta.url));
}

/** The client's entry, or with MessagePack one that exports the client and the codec. */
function entry(messagePack: boolean): Pick<BuildOptions, 'entryPoints' | 'stdin'> {
  if (!messagePack) return { entryPoints: [clientModule('index')] };
  const contents = `export * from ${JSON.stringify(clientModule('index'))};\nexport { messagePack } from ${JSON.stringify(clientModule('msgpack'))};\n`;
  return { stdin: { contents, resolveDir: dirname(clientModule('index')), sourcefile: 'kobold-hub-msgpack.js', loader: 'js' } };
}

function buildOptions(options: Omit<ClientBundleOptions, 'outFile'>): BuildOptions {
  return {
    ...entry(options.messagePack ?? false),
    bundle: true,
    platform: 'browser',
    format: options.format ?? 'esm',
    globalName: options.format === 'iife' ? 'KoboldHub' : undefined,
    target: ['es2020'],
    minify: options.minify ?? true,
    sourcemap: options.sourcemap ?? false,
    logLevel: 'silent',
  };
}

export async function buildClientBundle(options: ClientBundleOptions): Promise<{ outFile: string; bytes: number }> {
  const { build } = await import('esbuild');
  await build({ ...buildOptions(options), outfile: options.outFile });
  return { outFile: options.outFile, bytes: statSync(options.outFile).size };
}

/** The bundle as text, without a file (what a web worker serves at `<pathPrefix>/client.js`). */
export async function bundleClient(options: Omit<ClientBundleOptions, 'outFile' | 'sourcemap'> = {}): Promise<string> {
  const { build } = await import('esbuild');
  const result = await build({ ...buildOptions(options), write: false });
  return result.outputFiles![0].text;
}
