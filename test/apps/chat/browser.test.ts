// The chat page in Debian's chromium (playwright-core): two pages chat in real time, a third
// without WebSocket falls back and still receives and sends, HTML in a message stays text.
// Set KOBOLD_CHAT_SCREENSHOT=1 to refresh docs/chat-screenshot.png.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { ROOT } from '../../helpers/daemon.js';
import { type ChatCluster, startChat } from './harness.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let chat: ChatCluster;
let browser: Browser;

before(async () => {
  if (!existsSync(CHROMIUM)) return;
  chat = await startChat({ workers: 2, shm: true, bundle: true, config: { flood: { ratePerSecond: 20, burst: 20 } } });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
});

after(async () => {
  await browser?.close();
  await chat?.close();
});

async function signIn(url: string, nick: string, options: { noWebSocket?: boolean } = {}): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 680 } });
  const page = await context.newPage();
  page.on('pageerror', (error) => assert.fail(`page error in ${nick}'s page: ${error.message}`));
  if (options.noWebSocket) await page.addInitScript(() => delete (window as { WebSocket?: unknown }).WebSocket);
  await page.goto(url + '/');
  await page.getByLabel('Nickname').fill(nick);
  await page.getByRole('button', { name: 'Enter the chat' }).click();
  await page.locator('#room-title', { hasText: '#lobby' }).waitFor();
  assert.equal(await page.locator('#login').isVisible(), false, 'the sign-in form is gone');
  return page;
}

async function say(page: Page, text: string): Promise<void> {
  await page.getByLabel('Message').fill(text);
  await page.getByLabel('Message').press('Enter');
}

const logLine = (page: Page, text: string) => page.locator('#log li', { hasText: text });

test('pages chat in real time; a page without WebSocket falls back; HTML stays text', { skip: !existsSync(CHROMIUM) && 'no /usr/bin/chromium' }, async () => {
  const alice = await signIn(chat.workers[0].url, 'alice');
  const bob = await signIn(chat.workers[1].url, 'bob');
  const carol = await signIn(chat.workers[0].url, 'carol', { noWebSocket: true });
  await alice.locator('#transport', { hasText: 'websocket' }).waitFor();
  await carol.locator('#transport', { hasText: 'sse' }).waitFor();

  await say(alice, 'hi from alice');
  await logLine(bob, 'hi from alice').waitFor();
  await logLine(carol, 'hi from alice').waitFor();

  const html = '<b>bold</b><img src=x onerror="window.pwned=1"><script>window.pwned=1</script>';
  await say(carol, html);
  await logLine(alice, '<b>bold</b>').waitFor();
  assert.equal(await alice.locator('#log b, #log img, #log script').count(), 0, 'no element came from the message');
  assert.ok((await logLine(bob, '<b>bold</b>').textContent())!.includes(html));
  assert.equal(await alice.evaluate(() => (window as { pwned?: number }).pwned), undefined);

  await say(alice, 'see https://example.com/docs');
  const link = bob.locator('#log a', { hasText: 'https://example.com/docs' });
  await link.waitFor();
  assert.equal(await link.getAttribute('href'), 'https://example.com/docs');

  await say(bob, '/msg carol psst, carol');
  await carol.getByRole('button', { name: /Private messages/ }).click();
  await logLine(carol, 'psst, carol').waitFor();

  await alice.locator('#member-list', { hasText: 'carol' }).waitFor();
  await alice.locator('#member-list', { hasText: 'bob' }).waitFor();
  await say(alice, '/nope');
  await logLine(alice, 'unknown command /nope').waitFor();

  if (process.env.KOBOLD_CHAT_SCREENSHOT === '1') {
    await say(bob, '/me waves at everyone');
    await logLine(alice, 'waves at everyone').waitFor();
    await alice.screenshot({ path: join(ROOT, 'docs/chat-screenshot.png') });
  }
});
