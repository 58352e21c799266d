// The demo chat page in headless Chromium: two pages, one logs in through the page, they exchange
// room and direct messages, the server restarts, both pages reconnect by themselves and go on.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';

import { SwitchboardServer, prerequisites, serverMissing, repoRoot } from '../../testing/server.js';
import { chromiumMissing, collectPageErrors, launchBrowser } from '../../testing/browser.js';

const pre = prerequisites(chromiumMissing(), serverMissing());


const WAIT = 15000;

if (pre.fail) {
  test('browser prerequisites', () => assert.fail(pre.fail));
} else if (pre.skip) {
  test('browser: demo chat', { skip: pre.skip }, () => {});
} else {
  describe('browser: demo chat', { timeout: 180000 }, () => {
    let server;
    let browser;
    let context;
    const pageErrors = [];

    before(async () => {
      server = await SwitchboardServer.start();
      browser = await launchBrowser({ viewport: { width: 1100, height: 800 } });
      context = browser.context;
    });

    after(async () => {
      await browser?.close();
      await server?.stop();
    });

    async function openPage(room) {
      const page = await context.newPage();
      collectPageErrors(page, pageErrors);
      await page.goto(`${server.httpUrl}/?room=${encodeURIComponent(room)}`);
      await page.locator('#status[data-status="connected"]').waitFor({ timeout: WAIT });
      return page;
    }

    const text = (page, sel) => page.locator(sel).textContent();

    test('the server serves this checkout\'s SDK at /switchboard.js', async () => {
      const res = await fetch(`${server.httpUrl}/switchboard.js`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /javascript/);
      const served = await res.text();
      const local = readFileSync(path.join(repoRoot, 'clients', 'js', 'src', 'switchboard.js'), 'utf8');
      // the binary embeds the file at build time: a stale binary serves an older SDK
      assert.ok(
        served === local,
        'the server serves a different switchboard.js than clients/js/src (rebuild the binary)',
      );
    });

    async function expectMessage(page, message) {
      await page.locator('#messages li', { hasText: message }).first().waitFor({ timeout: WAIT });
    }

    async function sendToRoom(page, message) {
      await page.fill('#message', message);
      await page.click('#send-btn');
    }

    async function sendDirect(page, target, message) {
      await page.fill('#dm-target', target);
      await page.fill('#dm-message', message);
      await page.click('#dm-send-btn');
    }

    test('two pages chat, survive a server restart, and keep chatting', async () => {
      const room = `room-${randomUUID().slice(0, 8)}`;
      const one = await openPage(room);
      const two = await openPage(room);

      // both show who they are; both start as the public user
      for (const page of [one, two]) {
        assert.match(await text(page, '#client-id'), /^\d+:[0-9a-f]{32}$/);
        assert.equal(await text(page, '#root-id'), 'n::000000000000000000000001');
        assert.equal(await text(page, '#channel-id'), room);
      }

      // page one registers and logs in through the form
      const email = `browser-${randomUUID().slice(0, 8)}@example.com`;
      await one.fill('#email', email);
      await one.fill('#password', 'correct horse battery staple');
      await one.click('#register-btn');
      await one.locator('body[data-logged-in="true"]').waitFor({ timeout: WAIT });
      assert.equal(await text(one, '#user-email'), email);
      const rootOne = await text(one, '#root-id');
      assert.match(rootOne, /^n::[0-9a-f]{24}$/);
      assert.notEqual(rootOne, 'n::000000000000000000000001');

      // room messages both ways: the logged-in page through the walker, the public one by event
      await sendToRoom(one, 'hello from one');
      await expectMessage(two, 'hello from one');
      await expectMessage(one, 'hello from one');
      await sendToRoom(two, 'hello from two');
      await expectMessage(one, 'hello from two');
      await expectMessage(two, 'hello from two');

      // direct messages: by client id and by root id
      const clientOne = await text(one, '#client-id');
      const clientTwo = await text(two, '#client-id');
      await sendDirect(two, clientOne, 'psst one, by client id');
      await expectMessage(one, 'psst one, by client id');
      await sendDirect(one, clientTwo, 'psst two, by client id');
      await expectMessage(two, 'psst two, by client id');
      await sendDirect(two, rootOne, 'psst one, by root id');
      await expectMessage(one, 'psst one, by root id');

      // the server goes away and comes back on the same port and data dir
      await server.kill('SIGKILL');
      await one.locator('#status[data-status="reconnecting"]').waitFor({ timeout: WAIT });
      await two.locator('#status[data-status="reconnecting"]').waitFor({ timeout: WAIT });
      await server.start();
      await one.locator('#status[data-status="connected"]').waitFor({ timeout: 60000 });
      await two.locator('#status[data-status="connected"]').waitFor({ timeout: 60000 });
      await expectMessage(one, 'Reconnected.');

      // still logged in (the SDK re-authenticated with the remembered token), same room
      assert.equal(await text(one, '#root-id'), rootOne);
      assert.equal(await text(one, '#channel-id'), room);
      assert.equal(await text(two, '#channel-id'), room);

      await sendToRoom(one, 'one, after the restart');
      await expectMessage(two, 'one, after the restart');
      await sendToRoom(two, 'two, after the restart');
      await expectMessage(one, 'two, after the restart');
      const newClientOne = await text(one, '#client-id');
      await sendDirect(two, newClientOne, 'direct, after the restart');
      await expectMessage(one, 'direct, after the restart');

      const artifacts = path.join(repoRoot, 'artifacts');
      mkdirSync(artifacts, { recursive: true });
      await one.screenshot({ path: path.join(artifacts, 'chat.png'), fullPage: true });

      assert.deepEqual(pageErrors, [], 'no script errors in the pages');
    });
  });
}
