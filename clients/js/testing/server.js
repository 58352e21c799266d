// Starting and stopping the real `switchboard` binary for integration and browser tests.
// Lives outside test/ so that `node --test test/` does not run it as a test file.

import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root (clients/js/testing -> ../../..). */
export const repoRoot = path.resolve(here, '..', '..', '..');

export function serverBinary() {
  return process.env.SWITCHBOARD_BIN || path.join(repoRoot, 'target', 'debug', 'switchboard');
}

export function servicesRequired() {
  return process.env.SWITCHBOARD_REQUIRE_SERVICES === '1';
}

/** Why the server tests cannot run here, or null when they can. */
export function serverMissing() {
  const bin = serverBinary();
  return existsSync(bin) ? null : `switchboard binary not found at ${bin} (build it with cargo build, or set SWITCHBOARD_BIN)`;
}

/**
 * What a test file should do about missing prerequisites: `{ skip: false }` to run, `{ skip: reason }`
 * to skip (the reason is printed and added to the skip report), or a failure when
 * SWITCHBOARD_REQUIRE_SERVICES=1.
 */
export function prerequisites(...reasons) {
  const missing = reasons.filter(Boolean);
  if (missing.length === 0) return { skip: false };
  const reason = missing.join('; ');
  if (servicesRequired()) return { skip: false, fail: `SWITCHBOARD_REQUIRE_SERVICES=1 but ${reason}` };
  console.log(`# SKIPPED: ${reason}`);
  reportSkip(reason);
  return { skip: reason };
}

/**
 * Append `js <test file>: <reason>` to the file named by SWITCHBOARD_SKIP_REPORT (set by
 * scripts/test), whose summary lists every skipped suite: a skipped test still passes.
 */
function reportSkip(reason) {
  const report = process.env.SWITCHBOARD_SKIP_REPORT;
  if (!report) return;
  // Under `node --test` every test file runs in a process of its own, named by argv[1].
  const file = process.argv[1] ? path.relative(repoRoot, process.argv[1]) : 'clients/js';
  appendFileSync(report, `js ${file}: ${reason}\n`);
}

const LISTEN_RE = /switchboard listening on http:\/\/([0-9.]+|\[[0-9a-f:]+\]):(\d+)/i;

/** One running server process; `restart()` brings up a new one on the same port and data dir. */
export class SwitchboardServer {
  constructor({ dataDir, port, ownsDataDir }) {
    this.dataDir = dataDir;
    this.port = port;
    this.ownsDataDir = ownsDataDir;
    this.proc = null;
    this.output = [];
    this.host = '127.0.0.1';
  }

  static async start({ dataDir, port = 0 } = {}) {
    const owns = !dataDir;
    const dir = dataDir ?? mkdtempSync(path.join(tmpdir(), 'switchboard-js-test-'));
    const server = new SwitchboardServer({ dataDir: dir, port, ownsDataDir: owns });
    await server._spawn();
    return server;
  }

  get httpUrl() {
    return `http://${this.host}:${this.port}`;
  }

  get wsUrl() {
    return `ws://${this.host}:${this.port}/websocket`;
  }

  /** The last lines the server printed, for failure messages. */
  log() {
    return this.output.slice(-60).join('\n');
  }

  async _spawn() {
    const listen = `127.0.0.1:${this.port}`;
    const args = ['--listen', listen, '--data-dir', this.dataDir];
    const proc = spawn(serverBinary(), args, {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    this.exited = exited;
    const started = new Promise((resolve, reject) => {
      let buf = '';
      const onData = (chunk, stream) => {
        const text = chunk.toString('utf8');
        for (const line of text.split('\n')) if (line) this.output.push(`[${stream}] ${line}`);
        if (stream !== 'stdout') return;
        buf += text;
        const m = LISTEN_RE.exec(buf);
        if (m) {
          this.host = m[1];
          this.port = Number(m[2]);
          resolve();
        }
      };
      proc.stdout.on('data', (c) => onData(c, 'stdout'));
      proc.stderr.on('data', (c) => onData(c, 'stderr'));
      proc.once('error', reject);
      exited.then(({ code, signal }) =>
        reject(new Error(`switchboard exited before listening (code ${code}, signal ${signal})\n${this.log()}`)),
      );
    });
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`switchboard did not print "switchboard listening on ..." within 30 s\n${this.log()}`)),
        30000,
      );
    });
    try {
      await Promise.race([started, timeout]);
    } catch (err) {
      proc.kill('SIGKILL');
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stop the process: SIGKILL simulates a crash, SIGTERM a graceful shutdown. */
  async kill(signal = 'SIGKILL') {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
    await this.exited;
    clearTimeout(t);
  }

  /** A new process on the same port and data dir (retrying while the port is still held). */
  async start() {
    let lastErr;
    for (let i = 0; i < 20; i++) {
      try {
        await this._spawn();
        return;
      } catch (err) {
        lastErr = err;
        await sleep(250);
      }
    }
    throw lastErr;
  }

  async restart(signal = 'SIGKILL') {
    await this.kill(signal);
    await this.start();
  }

  async stop() {
    await this.kill('SIGTERM');
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  // ---- HTTP API ----

  async request(method, pathname, body, token) {
    const headers = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(`${this.httpUrl}${pathname}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    return { status: res.status, json, text };
  }

  /**
   * Create an admin the way an operator does, with the binary's `user create --role admin`, and
   * log in: `{email, password, token, user}`.
   */
  async createAdmin(prefix = 'admin') {
    const email = `${prefix}-${randomUUID().slice(0, 8)}@example.com`;
    const password = `pw-${randomUUID()}`;
    const created = spawnSync(
      serverBinary(),
      ['--data-dir', this.dataDir, 'user', 'create', '--email', email, '--role', 'admin'],
      { env: { ...process.env, SWITCHBOARD_PASSWORD: password }, encoding: 'utf8' },
    );
    if (created.status !== 0) throw new Error(`user create failed: ${created.stderr}`);
    const login = await this.request('POST', '/user/login', { email, password });
    if (login.status !== 200) throw new Error(`login answered ${login.status}: ${login.text}`);
    return { email, password, token: login.json.token, user: login.json.user };
  }

  /** Register a fresh user and log in: `{email, password, token, user}`. */
  async createUser(prefix = 'user') {
    const email = `${prefix}-${randomUUID().slice(0, 8)}@example.com`;
    const password = `pw-${randomUUID()}`;
    const reg = await this.request('POST', '/user/register', { email, password });
    if (reg.status !== 201) throw new Error(`register answered ${reg.status}: ${reg.text}`);
    const login = await this.request('POST', '/user/login', { email, password });
    if (login.status !== 200) throw new Error(`login answered ${login.status}: ${login.text}`);
    return { email, password, token: login.json.token, user: login.json.user };
  }
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolve when `predicate()` is truthy (polled), or reject after `timeoutMs` with `what`. */
export async function waitUntil(predicate, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await predicate();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** A fresh temporary directory, removed by the returned cleanup function. */
export function tempDir(prefix) {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
