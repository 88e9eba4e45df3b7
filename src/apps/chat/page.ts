// The chat page: static files from ./page (plain HTML, CSS, JS), read once at setup and
// served from memory with an ETag.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { HttpRoutes } from '../../app/http-routes.js';
import { KoboldError } from '../../errors.js';

const FILES = [
  { route: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
  { route: '/chat/assets/chat.js', file: 'chat.js', type: 'text/javascript; charset=utf-8' },
  { route: '/chat/assets/chat.css', file: 'chat.css', type: 'text/css; charset=utf-8' },
] as const;

// Next to this module when run from src (tsx); compiled to dist/, the files stay in src/.
const CANDIDATE_DIRS = ['./page/', '../../../../src/apps/chat/page/'];

function pageDir(): string {
  for (const candidate of CANDIDATE_DIRS) {
    const dir = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(dir + 'index.html')) return dir;
  }
  throw new KoboldError('KOBOLD_ERR_CHAT_SETUP', { reason: `page files not found (looked in ${CANDIDATE_DIRS.join(', ')})` });
}

export function registerPage(http: HttpRoutes): void {
  const dir = pageDir();
  for (const { route, file, type } of FILES) {
    const body = readFileSync(dir + file);
    const etag = '"' + createHash('sha1').update(body).digest('base64url').slice(0, 16) + '"';
    http.get(route, (req, res) => {
      const headers = {
        'content-type': type,
        etag,
        'cache-control': 'no-cache',
        'x-content-type-options': 'nosniff',
        // Scripts only from this origin; no inline script, so injected markup could not run even if rendered.
        'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
      };
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, headers).end();
        return;
      }
      res.writeHead(200, { ...headers, 'content-length': body.length }).end(body);
    });
  }
}
