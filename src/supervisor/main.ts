// Entry of a daemonized master, spawned by `kobold start` in its own session.
import { parseArgs } from 'node:util';
import { runMaster } from './master.js';

const { values } = parseArgs({
  options: {
    config: { type: 'string' },
    workers: { type: 'string' },
    'ready-fd': { type: 'string' },
  },
});

const code = await runMaster({
  foreground: false,
  readyFd: values['ready-fd'] === undefined ? undefined : Number(values['ready-fd']),
  loadOptions: {
    configFile: values.config,
    workers: values.workers === undefined ? undefined : Number(values.workers),
  },
});
process.exit(code);
