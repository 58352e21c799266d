// The admin dashboard (/admin/) in headless Chromium: an admin logs in through the page, sees a
// second page's connection appear, sees its message in the live tap, closes it from the page; a
// non-admin is refused. Writes test-output/admin-dashboard.png.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';

import { SwitchboardServer, prerequisites, serverMissing, repoRoot } from '../../testing/server.js';
import { chromiumMissing, collectPageErrors, launchBrowser } from '../../testing/browser.js';

const pre = prerequisites(chromiumMissing(), serverMissing());
const WAIT = 15000;

if (pre.fail) {
  test('browser prerequisites', () => assert.fail(pre.fail));
} else if (pre.skip) {
  test('browser: admin dashboard', { skip: pre.skip }, () => {});
} else {
  describe('browser: admin dashboard', { timeout: 120000 }, () => {
    let server;
    let browser;
    const pageErrors = [];

    before(async () => {
      server = await SwitchboardServer.start();
      browser = await launchBrowser({ viewport: { width: 1280, height: 1000 } });
    });

    after(async () => {
      await browser?.close();
      await server?.stop();
    });

    async function logIn(page, { email, password }) {
      await page.goto(`${server.httpUrl}/admin/`);
      await page.fill('#login-email', email);
      await page.fill('#login-password', password);
      await page.click('#login-submit');
    }

    test('a non-admin is refused by the page and by the feed', async () => {
      const user = await server.createUser('plain');
      const page = await browser.context.newPage();
      const errors = [];
      collectPageErrors(page, errors);
      await logIn(page, user);
      await page.locator('#login-error', { hasText: 'not an admin' }).waitFor({ timeout: WAIT });
      assert.equal(await page.locator('#dashboard').isHidden(), true);
      // The page's check is a courtesy; the feed itself refuses the token before upgrading.
      const refused = await page.evaluate(
        (token) =>
          new Promise((resolve) => {
            const ws = new WebSocket(`ws://${location.host}/admin/ws?auth=${encodeURIComponent(token)}`);
            ws.onopen = () => resolve('opened');
            ws.onclose = () => resolve('refused');
          }),
        user.token,
      );
      assert.equal(refused, 'refused');
      const api = await server.request('GET', '/admin/api/stats', undefined, user.token);
      assert.equal(api.status, 403);
      // the only error the browser reports is that refusal
      assert.equal(errors.length, 1, errors.join('\n'));
      assert.match(errors[0], /403/);
      await page.close();
    });

    test('an admin watches a connection come, talk, and closes it', async () => {
      const admin = await server.createAdmin();
      const page = await browser.context.newPage();
      collectPageErrors(page, pageErrors);
      await logIn(page, admin);
      await page.locator('#feed-state', { hasText: 'live' }).waitFor({ timeout: WAIT });
      assert.equal(await page.locator('#tap-state').textContent(), 'paused', 'the tap starts paused');
      await page.click('#tap-toggle');
      await page.locator('#tap-state', { hasText: 'live' }).waitFor({ timeout: WAIT });

      // a second page: the demo chat, in a room of its own
      const room = `room-${randomUUID().slice(0, 8)}`;
      const chat = await browser.context.newPage();
      collectPageErrors(chat, pageErrors);
      await chat.goto(`${server.httpUrl}/?room=${encodeURIComponent(room)}`);
      await chat.locator('#status[data-status="connected"]').waitFor({ timeout: WAIT });
      const clientId = await chat.locator('#client-id').textContent();

      // its connection appears in the list, found by searching its room
      await page.fill('#search', room);
      const row = page.locator(`#connections tbody tr[data-client-id="${clientId}"]`);
      await row.waitFor({ timeout: WAIT });
      assert.match(await row.textContent(), /jac/);
      assert.match(await row.textContent(), new RegExp(room));

      // its message shows in the tap
      const message = `hello admin ${randomUUID().slice(0, 8)}`;
      await chat.fill('#message', message);
      await chat.click('#send-btn');
      await page.locator('#tap-entries .tap-entry', { hasText: message }).first().waitFor({ timeout: WAIT });
      await page.locator('#channels tbody tr', { hasText: room }).waitFor({ timeout: WAIT });

      mkdirSync(path.join(repoRoot, 'clients', 'js', 'test-output'), { recursive: true });
      await page.screenshot({
        path: path.join(repoRoot, 'clients', 'js', 'test-output', 'admin-dashboard.png'),
        fullPage: true,
      });

      // closed from the page: the row goes, and the chat page is told
      await row.locator('button.close-connection').click();
      await row.waitFor({ state: 'detached', timeout: WAIT });
      await chat.locator('#status:not([data-status="connected"])').waitFor({ timeout: WAIT });

      assert.deepEqual(pageErrors, [], 'no script errors in the pages');
    });
  });
}
