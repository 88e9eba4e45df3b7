// Builds Kobold's shared-memory addon (native/kobold_shm.cc) into build/Release with
// node-gyp. It never fails the install: without the addon Kobold uses its socket path,
// and src/shm/native.ts says so once at run time.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const logPath = join(root, 'build', 'native-build.log');

function fallback(reason) {
  console.log(`kobold: shared-memory addon not built (${reason}); Kobold will use its socket fallback.`);
  process.exit(0);
}

if (process.platform !== 'linux') fallback(`it needs Linux, this is ${process.platform}`);

let nodeGyp;
try {
  nodeGyp = createRequire(join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js');
} catch {
  fallback('node-gyp is not installed');
}

// Build against this Node's own headers when they are installed beside it (no download).
const env = { ...process.env };
const prefix = dirname(dirname(process.execPath));
if (!env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) env.npm_config_nodedir = prefix;

const result = spawnSync(process.execPath, [nodeGyp, 'rebuild'], { cwd: root, env, encoding: 'utf8' });
mkdirSync(dirname(logPath), { recursive: true });
writeFileSync(logPath, `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error) : ''}`);
if (result.status !== 0 || !existsSync(join(root, 'build', 'Release', 'kobold_shm.node'))) {
  fallback(`node-gyp failed, see ${logPath}`);
}
console.log('kobold: shared-memory addon built (build/Release/kobold_shm.node).');
