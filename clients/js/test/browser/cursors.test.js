// The live-cursors demo page (the `cursors` namespace) in headless Chromium: two pages see each
// other's cursor, stamped with the sender's client id, and never their own.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { SwitchboardServer, prerequisites, serverMissing, repoRoot } from '../../testing/server.js';
import { chromiumMissing, collectPageErrors, launchBrowser } from '../../testing/browser.js';

const pre = prerequisites(chromiumMissing(), serverMissing());

const WAIT = 15000;

if (pre.fail) {
  test('browser prerequisites', () => assert.fail(pre.fail));
} else if (pre.skip) {
  test('browser: live cursors', { skip: pre.skip }, () => {});
} else {
  describe('browser: live cursors', { timeout: 120000 }, () => {
    let server;
    let browser;
    let context;
    const pageErrors = [];

    before(async () => {
      server = await SwitchboardServer.start();
      browser = await launchBrowser({ viewport: { width: 1000, height: 800 } });
      context = browser.context;
    });

    after(async () => {
      await browser?.close();
      await server?.stop();
    });

    async function openPage() {
      const page = await context.newPage();
      collectPageErrors(page, pageErrors);
      await page.goto(`${server.httpUrl}/cursors`);
      await page.locator('#status[data-status="connected"]').waitFor({ timeout: WAIT });
      return page;
    }

    /** This page's client id, as the SDK keeps it in sessionStorage. */
    const clientId = (page) => page.evaluate(() => sessionStorage.getItem('switchboard.client_uuid'));

    test('the server serves this checkout\'s namespace.js, and the chat page links the demo', async () => {
      const res = await fetch(`${server.httpUrl}/namespace.js`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /javascript/);
      const local = readFileSync(path.join(repoRoot, 'clients', 'js', 'src', 'namespace.js'), 'utf8');
      assert.ok((await res.text()) === local, 'a stale binary serves an older namespace.js (rebuild it)');
      assert.match(await (await fetch(`${server.httpUrl}/`)).text(), /href="\/cursors"/);
    });

    test('two pages see each other\'s cursor and not their own', async () => {
      const one = await openPage();
      const two = await openPage();
      const [idOne, idTwo] = [await clientId(one), await clientId(two)];
      assert.match(idOne, /^[0-9a-f-]{36}$/);
      assert.notEqual(idOne, idTwo, 'each tab has its own sessionStorage uuid');

      const box = await one.locator('#board').boundingBox();
      // Keep moving until the other page shows the cursor (the first moves may precede its join).
      const seen = two.locator(`.cursor[data-client="${idOne}"]`);
      for (let i = 0; i < 40 && (await seen.count()) === 0; i++) {
        await one.mouse.move(box.x + 100 + i, box.y + 120);
        await one.waitForTimeout(100);
      }
      await seen.waitFor({ timeout: WAIT });
      assert.equal(await two.locator('#others').textContent(), '1');

      const boxTwo = await two.locator('#board').boundingBox();
      const back = one.locator(`.cursor[data-client="${idTwo}"]`);
      for (let i = 0; i < 40 && (await back.count()) === 0; i++) {
        await two.mouse.move(boxTwo.x + 300, boxTwo.y + 200 + i);
        await two.waitForTimeout(100);
      }
      await back.waitFor({ timeout: WAIT });
      assert.equal(await one.locator(`.cursor[data-client="${idOne}"]`).count(), 0, 'no echo of one\'s own cursor');
      assert.deepEqual(pageErrors, []);
    });
  });
}
