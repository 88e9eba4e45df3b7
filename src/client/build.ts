// Builds the browser bundle of the hub client with esbuild. Node-only: not part of the bundle.
import { build } from 'esbuild';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface ClientBundleOptions {
  /** Where to write the bundle, e.g. public/kobold-hub.js. */
  outFile: string;
  /** `esm` for `<script type="module">` / bundlers; `iife` defines `window.KoboldHub`. Default esm. */
  format?: 'esm' | 'iife';
  minify?: boolean;
  sourcemap?: boolean;
}

export async function buildClientBundle(options: ClientBundleOptions): Promise<{ outFile: string; bytes: number }> {
  await build({
    entryPoints: [fileURLToPath(new URL('./index.ts', import.meta.url))],
    outfile: options.outFile,
    bundle: true,
    platform: 'browser',
    format: options.format ?? 'esm',
    globalName: options.format === 'iife' ? 'KoboldHub' : undefined,
    target: ['es2020'],
    minify: options.minify ?? true,
    sourcemap: options.sourcemap ?? false,
    logLevel: 'silent',
  });
  return { outFile: options.outFile, bytes: statSync(options.outFile).size };
}
