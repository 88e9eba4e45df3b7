// A graceful stop of the daemon with the hub: the web workers drain before the hub writer,
// so a request still in flight when the stop comes can publish; checked on the real daemon.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TestProject } from '../helpers/daemon.js';
import { hubProjectConfig } from './daemon-helpers.js';

let project: TestProject;

before(async () => {
  project = await TestProject.create((port) => hubProjectConfig(port));
  project.start();
});

after(async () => {
  await project.cleanup();
});

test('a request in flight when a graceful stop comes still publishes: the hub writer drains after the web workers', async () => {
  const response = await fetch(`${project.url}/app-publish-late`, { method: 'POST' });
  assert.equal(response.status, 200, 'the request reached a web worker');
  const stopped = project.koboldAsync(['stop']);
  const position = JSON.parse(await response.text()) as { offset: number; epoch: string };
  assert.ok(position.offset >= 1 && typeof position.epoch === 'string', `published during the stop: ${JSON.stringify(position)}`);
  assert.equal((await stopped).code, 0);
});
