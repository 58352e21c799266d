// Messages between two clients through the real server: demo walkers and client events.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { WebSocket } from 'ws';

import { connect } from '../../src/switchboard.js';
import { SwitchboardServer, prerequisites, serverMissing, sleep } from '../../testing/server.js';
import { record, isChat } from '../../testing/recorder.js';

const pre = prerequisites(serverMissing());

if (pre.fail) {
  test('integration prerequisites', () => assert.fail(pre.fail));
} else if (pre.skip) {
  test('integration: notify between clients', { skip: pre.skip }, () => {});
} else {
  describe('integration: notify between clients', { timeout: 60000 }, () => {
    let server;
    let alice; // logged-in sender
    let bob; // logged-in receiver
    let a, b, c; // connections: alice, bob, a public one
    let ra, rb, rc;
    const room = `room-${randomUUID()}`;

    const open = (options) =>
      connect(server.wsUrl, { WebSocket, clientIdStorage: 'memory', reconnect: { baseDelayMs: 100, maxDelayMs: 1000 }, ...options });

    before(async () => {
      server = await SwitchboardServer.start();
      alice = await server.createUser('alice');
      bob = await server.createUser('bob');
      a = open({ token: alice.token });
      b = open({ token: bob.token, channel_id: room });
      c = open();
      ra = record(a);
      rb = record(b);
      rc = record(c);
      await Promise.all([ra.status('connected'), rb.status('connected'), rc.status('connected')]);
      assert.equal(b.info().channel_id, room);
      assert.equal(b.info().root_id, `n::${bob.user.root_id}`);
    });

    after(async () => {
      for (const sb of [a, b, c]) sb?.disconnect();
      if (server) await server.stop();
    });

    test('send_chat_to_user reaches every connection of that user', async () => {
      const b2 = open({ token: bob.token });
      const rb2 = record(b2);
      await rb2.status('connected');
      try {
        const reply = await a.walker('send_chat_to_user', { root_id: b.info().root_id, message: 'to bob' });
        assert.deepEqual(reply.reports, ['Message sent to user!']);
        const got = await rb.next(isChat('to bob'), 'bob receives the chat');
        assert.deepEqual(got, { type: 'chat', data: { message: 'to bob' } });
        await rb2.next(isChat('to bob'), "bob's second connection receives it too");
        assert.equal(rc.messages.filter(isChat('to bob')).length, 0, 'others do not');
      } finally {
        b2.disconnect();
      }
    });

    test('send_chat_to_user with the default message', async () => {
      await a.walker('send_chat_to_user', { root_id: b.info().root_id });
      await rb.next(isChat('Hello user!'), 'the default message');
    });

    test('send_chat_to_group reaches the channel', async () => {
      const reply = await a.walker('send_chat_to_group', { channel_id: room, message: 'to the room' });
      assert.deepEqual(reply.reports, ['Message sent to channel!']);
      await rb.next(isChat('to the room'), 'bob (in the room) receives it');
    });

    test('send_chat_to_client reaches one connection', async () => {
      const reply = await a.walker('send_chat_to_client', { client_id: b.info().client_id, message: 'to one socket' });
      assert.deepEqual(reply.reports, ['Message sent to client!']);
      await rb.next(isChat('to one socket'), 'bob receives it');
    });

    test('the notification arrives before the walker reply', async () => {
      // a sends to its own user: its chat frame must be in `ra` by the time the promise resolves
      ra.skip();
      await a.walker('send_chat_to_user', { root_id: a.info().root_id, message: 'to myself' });
      assert.ok(ra.messages.some(isChat('to myself')), 'notification delivered before the reply');
    });

    test('client events from a public connection: user, channel, client', async () => {
      assert.equal(c.notifyUsers([b.info().root_id], { type: 'chat', data: { message: 'ev-user' } }), 'sent');
      await rb.next(isChat('ev-user'), 'user event');
      c.notifyChannels([room], { type: 'chat', data: { message: 'ev-channel' } });
      await rb.next(isChat('ev-channel'), 'channel event');
      c.notifyClients([b.info().client_id], { type: 'chat', data: { message: 'ev-client' } });
      await rb.next(isChat('ev-client'), 'client event');
    });

    test('the data of a client event is delivered verbatim as the whole frame', async () => {
      const payload = { type: 'custom', nested: { list: [1, 2.5, 'x', null, true] }, emoji: 'héllo ✓' };
      c.notifyClients([b.info().client_id], payload);
      const got = await rb.next((m) => m && m.type === 'custom', 'the custom frame');
      assert.deepEqual(got, payload);
    });

    test('a channel event reaches the sender too when it is in the channel', async () => {
      b.notifyChannels([room], { type: 'chat', data: { message: 'echo' } });
      await rb.next(isChat('echo'), 'the sender receives its own channel message');
    });

    test('unknown ids are ignored and the sender stays connected', async () => {
      c.notifyClients(['1:00000000000000000000000000000000'], { type: 'chat', data: { message: 'nobody' } });
      await sleep(200);
      assert.equal(c.status(), 'connected');
      // the public connection still gets walker replies (chat_service needs a login, as in seed 000)
      await assert.rejects(c.walker('chat_service', { message: 'ok' }), (err) => err.code === 'auth_required');
    });
  });
}
