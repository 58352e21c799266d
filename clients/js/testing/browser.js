// Headless Chromium for the browser tests: where it is, how it is started, and how a page's
// script errors are collected. Lives outside test/ so that `node --test test/` does not run it.

import { existsSync } from 'node:fs';

import { tempDir } from './server.js';

export const CHROMIUM = process.env.SWITCHBOARD_CHROMIUM || '/usr/bin/chromium';

/** Why Chromium cannot run here, or null when it can. */
export function chromiumMissing() {
  return existsSync(CHROMIUM) ? null : `Chromium not found at ${CHROMIUM} (apt-get install -y chromium)`;
}

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * A browser context with a profile of its own: `{ context, close }`. `close()` ends the browser
 * and removes the profile.
 */
export async function launchBrowser({ viewport = { width: 1100, height: 800 } } = {}) {
  const { chromium } = await import('playwright-core');
  const profile = tempDir('switchboard-chromium-');
  // launchPersistentContext is how Playwright takes a --user-data-dir of our choosing
  const context = await chromium.launchPersistentContext(profile.dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport,
  });
  return {
    context,
    close: async () => {
      await context.close();
      profile.cleanup();
    },
  };
}

/** Push every script error and console error of `page` into `errors`. */
export function collectPageErrors(page, errors) {
  page.on('pageerror', (err) => errors.push(String(err)));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const where = msg.location()?.url ?? '';
    if (where.endsWith('/favicon.ico')) return; // the browser asks for it by itself
    errors.push(`console: ${msg.text()} (${where})`);
  });
}
