// The demo rooms page (channel dialect) in headless Chromium: two pages in one room see each
// other in the member list, kept live by presence, and exchange messages.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { SwitchboardServer, prerequisites, serverMissing } from '../../testing/server.js';
import { chromiumMissing, collectPageErrors, launchBrowser } from '../../testing/browser.js';

const pre = prerequisites(chromiumMissing(), serverMissing());

const WAIT = 15000;

if (pre.fail) {
  test('browser prerequisites', () => assert.fail(pre.fail));
} else if (pre.skip) {
  test('browser: demo rooms', { skip: pre.skip }, () => {});
} else {
  describe('browser: demo rooms', { timeout: 120000 }, () => {
    let server;
    let browser;
    let context;
    const pageErrors = [];

    before(async () => {
      server = await SwitchboardServer.start();
      browser = await launchBrowser();
      context = browser.context;
    });

    after(async () => {
      await browser?.close();
      await server?.stop();
    });

    async function openPage(room, name) {
      const page = await context.newPage();
      collectPageErrors(page, pageErrors);
      await page.goto(`${server.httpUrl}/rooms?room=${encodeURIComponent(room)}&name=${name}`);
      await page.locator('#status[data-status="connected"]').waitFor({ timeout: WAIT });
      return page;
    }

    const memberCount = (page) => page.locator('#member-count').textContent();

    test('the chat page links to the rooms page', async () => {
      const page = await context.newPage();
      await page.goto(server.httpUrl);
      await page.locator('#status[data-status="connected"]').waitFor({ timeout: WAIT });
      assert.equal(await page.locator('a[href="/rooms"]').count(), 1);
      await page.close();
    });

    test('two pages see each other arrive and leave, and talk', async () => {
      const room = `room-${randomUUID().slice(0, 8)}`;
      const ann = await openPage(room, 'ann');
      await ann.waitForFunction(() => document.querySelector('#member-count').textContent === '1', null, { timeout: WAIT });
      const ben = await openPage(room, 'ben');
      // Ann's list grows from presence; Ben's comes from `members` on connect.
      await ann.waitForFunction(() => document.querySelector('#member-count').textContent === '2', null, { timeout: WAIT });
      await ben.waitForFunction(() => document.querySelector('#member-count').textContent === '2', null, { timeout: WAIT });

      await ben.fill('#message', 'hello ann');
      await ben.click('#send-form button');
      await ann.locator('#messages li[data-kind="chat"]', { hasText: 'hello ann' }).waitFor({ timeout: WAIT });
      assert.match(await ann.locator('#messages li[data-kind="chat"]').last().textContent(), /ben/);

      await ben.close();
      await ann.waitForFunction(() => document.querySelector('#member-count').textContent === '1', null, { timeout: WAIT });
      assert.equal(await memberCount(ann), '1');
      assert.deepEqual(pageErrors, []);
    });
  });
}
