// The server is killed mid-session and a new one starts on the same port and data dir: the SDK
// reconnects by itself, re-authenticates, keeps its channel and flushes what was queued meanwhile.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { WebSocket } from 'ws';

import { connect } from '../../src/switchboard.js';
import { SwitchboardServer, prerequisites, serverMissing } from '../../testing/server.js';
import { record, isChat } from '../../testing/recorder.js';

const pre = prerequisites(serverMissing());

if (pre.fail) {
  test('integration prerequisites', () => assert.fail(pre.fail));
} else if (pre.skip) {
  test('integration: server restart', { skip: pre.skip }, () => {});
} else {
  describe('integration: server restart', { timeout: 120000 }, () => {
    let server;
    let erin;
    let a, b;
    const room = `restart-${randomUUID()}`;

    before(async () => {
      server = await SwitchboardServer.start();
      erin = await server.createUser('erin');
    });

    after(async () => {
      a?.disconnect();
      b?.disconnect();
      if (server) await server.stop();
    });

    for (const signal of ['SIGKILL', 'SIGTERM']) {
      test(`reconnects after the server is stopped with ${signal} and restarted`, async () => {
        const open = () =>
          connect(server.wsUrl, {
            WebSocket,
            channel_id: room,
            clientIdStorage: 'memory',
            heartbeatMs: 2000,
            reconnect: { baseDelayMs: 100, maxDelayMs: 500, jitter: 0.2, restartSpreadMs: 300 },
          });
        a = open();
        b = open();
        const ra = record(a);
        const rb = record(b);
        await Promise.all([ra.status('connected'), rb.status('connected')]);
        const before = await a.changeUser(erin.token); // logged in through changeUser, not the URL
        assert.equal(before.root_id, `n::${erin.user.root_id}`);

        // chatting before the restart
        await a.walker('send_chat_to_group', { channel_id: room, message: 'before' });
        await rb.next(isChat('before'), 'b receives before the restart');

        await server.kill(signal);
        await Promise.all([ra.status('reconnecting'), rb.status('reconnecting')]);

        // while the server is down: sends are queued, in order
        const results = [1, 2, 3].map((n) => a.notifyChannels([room], { type: 'chat', data: { message: `queued ${n}` } }));
        assert.deepEqual(results, ['queued', 'queued', 'queued']);
        const queuedWalker = a.walker('chat_service', { message: 'queued walker' }, { timeoutMs: 30000 });

        await server.start();
        await Promise.all([ra.status('connected', 30000), rb.status('connected', 30000)]);

        // a's queued channel messages reach a itself (it is in the room) in order
        for (const n of [1, 2, 3]) await ra.next(isChat(`queued ${n}`), `queued message ${n} after the restart`);
        assert.deepEqual((await queuedWalker).reports, ['Received: queued walker']);

        // the remembered token re-authenticated the new connection, and the channel was kept
        const after = a.info();
        assert.equal(after.root_id, before.root_id, 'same user after reconnect (token remembered)');
        assert.equal(after.channel_id, room);
        assert.equal(b.info().channel_id, room);

        // and the two keep chatting
        await a.walker('send_chat_to_group', { channel_id: room, message: 'after' });
        await rb.next(isChat('after'), 'b receives after the restart');
        b.notifyChannels([room], { type: 'chat', data: { message: 'reply from b' } });
        await ra.next(isChat('reply from b'), 'a receives from b after the restart');

        assert.deepEqual(ra.statuses, ['connecting', 'connected', 'reconnecting', 'connected']);
        assert.deepEqual(rb.statuses, ['connecting', 'connected', 'reconnecting', 'connected']);
        a.disconnect();
        b.disconnect();
      });
    }
  });
}
