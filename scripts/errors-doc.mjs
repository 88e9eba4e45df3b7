// Writes docs/errors.md from the error table in src/errors.ts (through dist/).
// test/docs/errors.test.ts fails when the file is out of date: run `npm run build && node scripts/errors-doc.mjs`.
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const PARTS = [
  ['CONFIG', 'Config'], ['ALREADY', 'Daemon'], ['NOT_RUNNING', 'Daemon'], ['START', 'Daemon'], ['CONTROL', 'Daemon'],
  ['UNKNOWN_SERVICE', 'Daemon'], ['UNKNOWN_WORKER', 'Daemon'], ['PRIVILEGES', 'Daemon'],
  ['HUB', 'Hub'], ['JOBS', 'Jobs'], ['SHM', 'Shared memory'], ['CHAT', 'Chat'],
];

function partOf(code) {
  const name = code.slice('KOBOLD_ERR_'.length);
  return PARTS.find(([prefix]) => name.startsWith(prefix))?.[1] ?? 'Apps and HTTP';
}

export function renderErrorsDoc(catalog) {
  const lines = [
    '# Error codes',
    '',
    'Every error Kobold raises on purpose carries a stable `code`. HTTP answers put it in',
    '`{"error":{"code","message"}}` with the status below; WebSocket closes use the close code.',
    '`{name}` in a message is filled in from the error. Generated from `src/errors.ts` by',
    '`scripts/errors-doc.mjs`.',
  ];
  let part = null;
  for (const entry of catalog) {
    const next = partOf(entry.code);
    if (next !== part) {
      part = next;
      lines.push('', `## ${part}`, '', '| code | message | HTTP | close |', '| --- | --- | --- | --- |');
    }
    const message = entry.template.replace(/\n/g, ' ').replace(/\|/g, '\\|');
    lines.push(`| \`${entry.code}\` | ${message} | ${entry.status ?? ''} | ${entry.closeCode ?? ''} |`);
  }
  return `${lines.join('\n')}\n`;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { errorCatalog } = await import('../dist/src/errors.js');
  writeFileSync(new URL('../docs/errors.md', import.meta.url), renderErrorsDoc(errorCatalog()));
  console.log('docs/errors.md written');
}
