// The namespace dialect against the real binary and its shipped namespaces (chat: broadcast,
// cursors: broadcast_others, admin: role admin).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';

import { connect, jpulse } from '../../src/switchboard.js';
import { SwitchboardServer, prerequisites, serverMissing, sleep, waitUntil } from '../../testing/server.js';
import { record } from '../../testing/recorder.js';

const pre = prerequisites(serverMissing());

if (pre.fail) {
  test('integration prerequisites', () => assert.fail(pre.fail));
} else if (pre.skip) {
  test('integration: namespace dialect', { skip: pre.skip }, () => {});
} else {
  describe('integration: namespace dialect', { timeout: 60000 }, () => {
    let server;
    const opened = [];

    const url = (name) => `ws://${server.host}:${server.port}/api/1/ws/${name}`;
    const open = (name, options = {}) => {
      const c = connect(url(name), {
        WebSocket,
        dialect: 'namespace',
        clientIdStorage: 'memory',
        reconnect: { baseDelayMs: 100, maxDelayMs: 500 },
        ...options,
      });
      opened.push(c);
      return c;
    };

    before(async () => {
      server = await SwitchboardServer.start();
    });

    after(async () => {
      for (const c of opened) c.disconnect();
      for (const h of jpulse.ws.getConnections()) h.disconnect();
      if (server) await server.stop();
    });

    test('chat relays to everyone with the server-stamped username and sender', async () => {
      const ada = await server.createUser('ada');
      const a = open('chat', { token: ada.token });
      const g = open('chat');
      const ra = record(a);
      const rg = record(g);
      await Promise.all([ra.status('connected'), rg.status('connected')]);
      assert.equal(a.info().client_id, a.clientUuid, 'the server keeps the client uuid');
      assert.equal(a.info().username, ada.email);
      assert.equal(g.info().username, '');
      assert.equal(a.send({ type: 'chat', text: 'hi', username: 'forged', from: 'forged' }), 'sent');
      for (const r of [ra, rg]) {
        const got = await r.next((m) => m && m.type === 'chat', 'the relayed chat');
        assert.deepEqual(got, { type: 'chat', text: 'hi', from: a.clientUuid, username: ada.email });
      }
    });

    test('cursors (jpulse facade) reach everyone but the sender', async () => {
      const seen = { mover: [], watcher: [] };
      const options = { WebSocket, clientIdStorage: 'memory', pingInterval: 0 };
      const mover = jpulse.ws.connect(url('cursors'), options).onMessage((d) => seen.mover.push(d));
      const watcher = jpulse.ws.connect(url('cursors'), options).onMessage((d) => seen.watcher.push(d));
      await waitUntil(() => mover.isConnected() && watcher.isConnected(), 'both connected');
      assert.equal(mover.send({ type: 'cursor', x: 0.5, y: 0.25 }), true);
      const got = await waitUntil(() => seen.watcher.find((d) => d && d.type === 'cursor'), 'the cursor');
      assert.equal(got.x, 0.5);
      assert.equal(got.from, mover.connection.clientUuid);
      await sleep(200);
      assert.equal(seen.mover.filter((d) => d && d.type === 'cursor').length, 0);
    });

    test('bad input gets an error envelope and the connection stays', async () => {
      const c = open('chat');
      const errors = [];
      c.on('error', (data, frame) => errors.push(frame));
      const r = record(c);
      await r.status('connected');
      c.send([1, 2, 3]);
      const error = await waitUntil(() => errors[0], 'the 400');
      assert.equal(error.code, 400);
      assert.equal(error.success, false);
      c.send({ type: 'still-here' });
      await r.next((m) => m && m.type === 'still-here', 'the next message relays');
      assert.equal(c.status(), 'connected');
    });

    test('admin refuses: 401 then auth-required, 403 then disconnected; no reconnect', async () => {
      const anonymous = open('admin');
      const ra = record(anonymous);
      await ra.status('auth-required');
      const error = ra.messages.find((m) => m === null);
      assert.equal(error, null, 'the error envelope arrives as data null');
      const user = await server.createUser('plain');
      const plain = open('admin', { token: user.token });
      const rp = record(plain);
      const frames = [];
      plain.onMessage((data, frame) => frames.push(frame));
      await rp.status('disconnected');
      await sleep(700);
      assert.equal(plain.status(), 'disconnected', 'no reconnect after 4403');
      assert.equal(anonymous.status(), 'auth-required', 'no reconnect after 4401');
    });

    test('the login cookie authenticates a namespace socket', async () => {
      const user = await server.createUser('cookie');
      const res = await fetch(`${server.httpUrl}/user/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: user.email, password: user.password }),
      });
      const cookie = res.headers.get('set-cookie');
      assert.match(cookie, /^switchboard_token=[^;]+;.*HttpOnly/);
      const pair = cookie.split(';')[0];
      class CookieWebSocket extends WebSocket {
        constructor(href) {
          super(href, { headers: { cookie: pair } });
        }
      }
      const c = open('chat', { WebSocket: CookieWebSocket });
      await record(c).status('connected');
      assert.equal(c.info().username, user.email);
    });

    test('a reconnect after a server restart keeps the uuid', async () => {
      const c = open('chat');
      const r = record(c);
      await r.status('connected');
      const before = c.info().client_id;
      await server.restart();
      await waitUntil(() => r.statuses.includes('reconnecting') && c.status() === 'connected', 'reconnected', 20000);
      assert.equal(c.info().client_id, before);
    });
  });
}
