// The channel dialect against the real server: join, leave, members, presence, relay, and seed
// 004's Socket with its offline queue.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { WebSocket } from 'ws';

import { connect, Socket } from '../../src/switchboard.js';
import { SwitchboardServer, prerequisites, serverMissing, waitUntil } from '../../testing/server.js';
import { record } from '../../testing/recorder.js';

const pre = prerequisites(serverMissing());

if (pre.fail) {
  test('integration prerequisites', () => assert.fail(pre.fail));
} else if (pre.skip) {
  test('integration: channel dialect', { skip: pre.skip }, () => {});
} else {
  describe('integration: channel dialect', { timeout: 60000 }, () => {
    let server;
    const opened = [];
    const base = () => server.wsUrl.replace(/\/websocket$/, '');

    const open = (channel, options = {}) => {
      const sb = connect(`${base()}/ws/${channel}`, {
        WebSocket,
        dialect: 'channel',
        clientIdStorage: 'memory',
        reconnect: { baseDelayMs: 100, maxDelayMs: 1000 },
        ...options,
      });
      opened.push(sb);
      return sb;
    };

    before(async () => {
      server = await SwitchboardServer.start();
    });

    after(async () => {
      for (const sb of opened) sb.disconnect();
      if (server) await server.stop();
    });

    test('join, members, presence and relay between two connections', async () => {
      const room = `room-${randomUUID()}`;
      const alice = await server.createUser('alice');
      const a = open(room, { token: alice.token });
      const ra = record(a);
      await ra.status('connected');
      const presence = [];
      a.onPresence((p) => presence.push(p));

      const b = open(`lobby-${randomUUID()}`);
      const rb = record(b);
      await rb.status('connected');
      assert.deepEqual(await b.join(room), { channel: room, members: 2 });
      await waitUntil(() => presence.length === 1, 'alice hears bob join');
      assert.equal(presence[0].connected, true);
      assert.equal(presence[0].channel, room);
      const bobId = presence[0].from;
      assert.equal(presence[0].userID, bobId, 'an anonymous user is known by its connection id');

      const members = await b.members(room);
      assert.equal(members.length, 2);
      const aliceEntry = members.find((m) => m.id !== bobId);
      assert.equal(aliceEntry.userID, alice.user.id);
      assert.equal(aliceEntry.username, alice.email);

      b.sendTo(room, 'chat', { text: 'hi alice' });
      const got = await ra.next((m) => m && m.cmd === 'chat', 'alice receives the chat');
      assert.deepEqual(got, { from: bobId, channel: room, cmd: 'chat', param: { text: 'hi alice' } });

      await assert.rejects(b.leave(`never-${randomUUID()}`), (err) => err.code === 'not_joined');
      assert.deepEqual(await b.leave(room), { channel: room, members: 1 });
      await waitUntil(() => presence.length === 2, 'alice hears bob leave');
      assert.equal(presence[1].connected, false);
    });

    test("seed 004's Socket: onOpen, onRecv, queue while disconnected, flushed in order", async () => {
      const room = `socket-${randomUUID()}`;
      const watcher = open(room);
      const rw = record(watcher);
      await rw.status('connected');
      let opens = 0;
      const errors = [];
      const socket = new Socket(false, () => opens++, () => {}, (service, message) => errors.push(message), `${base()}/ws/${room}`, {
        WebSocket,
        reconnect: { baseDelayMs: 100, maxDelayMs: 200, jitter: 0 },
      });
      opened.push(socket.conn);
      // Sent before the socket is open: queued, then flushed in order.
      for (let i = 0; i < 3; i++) socket.send({ channel: room, cmd: 'n', param: i });
      await waitUntil(() => opens === 1, 'the socket opens');
      const received = [];
      for (let i = 0; i < 3; i++) received.push((await rw.next((m) => m && m.cmd === 'n', `message ${i}`)).param);
      assert.deepEqual(received, [0, 1, 2]);
      socket.send({ channel: `elsewhere-${randomUUID()}`, cmd: 'n', param: 9 });
      await waitUntil(() => errors.length === 1, 'an error frame reaches onErr');
      socket.close();
    });

    test('a command only the server sends is refused, not relayed', async () => {
      const room = `reserved-${randomUUID()}`;
      const a = open(room);
      const ra = record(a);
      await ra.status('connected');
      const b = open(room);
      const rb = record(b);
      await rb.status('connected');
      b.sendTo(room, 'close-connection', null);
      const error = await rb.next((m) => m && m.cmd === 'error', 'the sender is told');
      assert.equal(error.param.code, 'invalid_field');
      a.sendTo(room, 'ping-check', 1);
      await rb.next((m) => m && m.cmd === 'ping-check', 'the room still works');
      assert.equal(a.status(), 'connected');
      assert.equal(ra.messages.filter((m) => m && m.cmd === 'close-connection').length, 0);
    });
  });
}
