import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chatHubNamespaces } from '../apps/chat/config.js';

/** What a config without `apps` serves: the chat demo on the hub. */
export const DEMO_APP = { name: 'chat', module: 'kobold:chat' } as const;

/**
 * Fills in the chat demo for a config that names no apps: the chat app and, unless the config
 * has a `hub` section of its own, the hub namespaces it needs and a token secret kept in the
 * run dir (created once, mode 0600), so tokens stay valid across restarts.
 */
export function withDemoApp(input: Record<string, unknown>, runDir: string): Record<string, unknown> {
  if (input.apps !== undefined) return input;
  const demo: Record<string, unknown> = { ...input, apps: [DEMO_APP] };
  if (input.hub === undefined) demo.hub = { namespaces: chatHubNamespaces(), tokenSecret: demoSecret(runDir) };
  return demo;
}

function demoSecret(runDir: string): string {
  const path = join(runDir, 'hub-secret');
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    mkdirSync(runDir, { recursive: true, mode: 0o700 });
    const secret = randomBytes(48).toString('base64url');
    try {
      writeFileSync(path, `${secret}\n`, { mode: 0o600, flag: 'wx' });
      return secret;
    } catch {
      return readFileSync(path, 'utf8').trim(); // another process created it first
    }
  }
}
