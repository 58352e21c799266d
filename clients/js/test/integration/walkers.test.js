// The SDK against the real server: connecting, walker replies, walker errors, the heartbeat.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';

import { connect, PUBLIC_ROOT_ID } from '../../src/switchboard.js';
import { SwitchboardServer, prerequisites, serverMissing } from '../../testing/server.js';
import { record } from '../../testing/recorder.js';

const pre = prerequisites(serverMissing());

const CLIENT_ID_RE = /^\d+:[0-9a-f]{32}$/;

function open(server, options = {}) {
  return connect(server.wsUrl, {
    WebSocket,
    clientIdStorage: 'memory',
    reconnect: { baseDelayMs: 100, maxDelayMs: 1000 },
    ...options,
  });
}

if (pre.fail) {
  test('integration prerequisites', () => assert.fail(pre.fail));
} else if (pre.skip) {
  test('integration: walkers', { skip: pre.skip }, () => {});
} else {
  describe('integration: walkers', { timeout: 60000 }, () => {
    let server;
    let user;
    const open_ = [];
    const conn = (options) => {
      const sb = open(server, options);
      open_.push(sb);
      return sb;
    };

    before(async () => {
      server = await SwitchboardServer.start();
      user = await server.createUser('walkers');
    });

    after(async () => {
      for (const sb of open_) sb.disconnect();
      if (server) await server.stop();
    });

    test('a public connection gets the connection frame', async () => {
      const sb = conn();
      const r = record(sb);
      await r.status('connected');
      const info = sb.info();
      assert.match(info.client_id, CLIENT_ID_RE);
      assert.equal(info.root_id, PUBLIC_ROOT_ID);
      assert.match(info.channel_id, CLIENT_ID_RE, 'a random channel id has the client id form');
      assert.equal(r.ofType('connection').length, 1);
    });

    test('chat_service replies with its report, the walker name and our id', async () => {
      const sb = conn({ token: user.token }); // it declares no auth in seed 000: login required
      const reply = await sb.walker('chat_service', { message: 'hello' });
      assert.equal(reply.status, 200);
      assert.deepEqual(reply.reports, ['Received: hello']);
      assert.equal(reply.walker, 'chat_service');
      assert.equal(typeof reply.id, 'number');
    });

    test('twenty walker calls in flight each get their own reply', async () => {
      const sb = conn({ token: user.token });
      const replies = await Promise.all(
        Array.from({ length: 20 }, (_, i) => sb.walker('chat_service', { message: `m${i}` })),
      );
      replies.forEach((reply, i) => assert.deepEqual(reply.reports, [`Received: m${i}`]));
    });

    test('self_progress_notif: six progress frames, 0% to 100%, all before the reply', async () => {
      const sb = conn();
      const r = record(sb);
      const reply = await sb.walker('self_progress_notif', {});
      // each frame is seed 000's notify_self payload as it is, e.g. {"progress":"0%","status":"started"}
      const frames = r.messages.filter((m) => m && typeof m.progress === 'string');
      assert.deepEqual(frames[0], { progress: '0%', status: 'started' });
      assert.deepEqual(frames[5], { progress: '100%', status: 'completed' });
      const progress = frames.map((m) => m.progress);
      assert.equal(progress.length, 6, JSON.stringify(progress));
      const pct = progress.map((p) => Number.parseInt(p, 10));
      assert.deepEqual([...pct].sort((a, b) => a - b), pct, 'in increasing order');
      assert.equal(reply.status, 200);
      assert.equal(reply.reports.length, 6, 'a report after each notification');
    });

    test('a walker that needs login rejects with auth_required on a public connection', async () => {
      const sb = conn();
      await assert.rejects(sb.walker('send_chat_to_user', { root_id: PUBLIC_ROOT_ID }), (err) => {
        assert.equal(err.code, 'auth_required');
        assert.equal(err.walker, 'send_chat_to_user');
        assert.ok(err.message.length > 0);
        return true;
      });
      // chat_service too: seed 000 declares no auth for it
      await assert.rejects(sb.walker('chat_service', { message: 'hi' }), (err) => err.code === 'auth_required');
      // the connection stays usable
      assert.equal((await sb.walker('self_progress_notif', {})).status, 200);
    });

    test('an unknown walker rejects with unknown_walker', async () => {
      const sb = conn();
      await assert.rejects(sb.walker('no_such_walker', {}), (err) => err.code === 'unknown_walker');
    });

    test('a bad context rejects with invalid_context', async () => {
      const sb = conn({ token: user.token });
      await assert.rejects(sb.walker('send_chat_to_user', { message: 'no root id' }), (err) => err.code === 'invalid_context');
    });

    test('the token option authenticates through the auth query parameter', async () => {
      const sb = conn({ token: user.token });
      const r = record(sb);
      await r.status('connected');
      assert.equal(sb.info().root_id, `n::${user.user.root_id}`);
      const reply = await sb.walker('send_chat_to_group', { channel_id: 'nobody-here', message: 'x' });
      assert.deepEqual(reply.reports, ['Message sent to channel!']);
    });

    test('"Bearer <token>" works as well', async () => {
      const sb = conn({ token: `Bearer ${user.token}` });
      await record(sb).status('connected');
      assert.equal(sb.info().root_id, `n::${user.user.root_id}`);
    });

    test('a bad token connects as the public user and an error frame says why', async () => {
      const sb = conn({ token: 'not-a-token' });
      const r = record(sb);
      await r.status('connected');
      assert.equal(sb.info().root_id, PUBLIC_ROOT_ID);
      const err = await r.next((m) => m && m.type === 'error', 'a token error frame');
      assert.equal(err.code, 'token_invalid');
    });

    test('the server answers the heartbeat ping, so a short heartbeat keeps the connection', async () => {
      const sb = conn({ heartbeatMs: 100 });
      const r = record(sb);
      await r.status('connected');
      await new Promise((res) => setTimeout(res, 1000));
      assert.equal(sb.status(), 'connected');
      assert.deepEqual(r.statuses, ['connecting', 'connected']);
      assert.equal(r.ofType('pong').length, 0, 'pong frames are not delivered');
    });
  });
}
