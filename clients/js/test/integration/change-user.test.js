// changeUser() against the real server: public -> user -> public, same client id throughout.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';

import { connect, PUBLIC_ROOT_ID } from '../../src/switchboard.js';
import { SwitchboardServer, prerequisites, serverMissing } from '../../testing/server.js';
import { record, isChat } from '../../testing/recorder.js';

const pre = prerequisites(serverMissing());

if (pre.fail) {
  test('integration prerequisites', () => assert.fail(pre.fail));
} else if (pre.skip) {
  test('integration: change_user', { skip: pre.skip }, () => {});
} else {
  describe('integration: change_user', { timeout: 60000 }, () => {
    let server;
    let carol;
    let dave;
    const conns = [];
    const open = (options) => {
      const sb = connect(server.wsUrl, { WebSocket, clientIdStorage: 'memory', reconnect: { baseDelayMs: 100 }, ...options });
      conns.push(sb);
      return sb;
    };

    before(async () => {
      server = await SwitchboardServer.start();
      carol = await server.createUser('carol');
      dave = await server.createUser('dave');
    });

    after(async () => {
      for (const sb of conns) sb.disconnect();
      if (server) await server.stop();
    });

    test('public -> logged in -> another user -> public, keeping the client id', async () => {
      const sb = open();
      const r = record(sb);
      await r.status('connected');
      const first = sb.info();
      assert.equal(first.root_id, PUBLIC_ROOT_ID);

      const asCarol = await sb.changeUser(carol.token);
      assert.equal(asCarol.root_id, `n::${carol.user.root_id}`);
      assert.equal(asCarol.client_id, first.client_id, 'same client_id');
      assert.deepEqual(sb.info(), asCarol);
      // a walker that needs login now works
      const reply = await sb.walker('send_chat_to_user', { root_id: asCarol.root_id, message: 'self' });
      assert.deepEqual(reply.reports, ['Message sent to user!']);
      await r.next(isChat('self'), 'delivered through the user index');

      const asDave = await sb.changeUser(`Bearer ${dave.token}`);
      assert.equal(asDave.root_id, `n::${dave.user.root_id}`);
      assert.equal(asDave.client_id, first.client_id);

      const pub = await sb.changeUser(null);
      assert.equal(pub.root_id, PUBLIC_ROOT_ID);
      await assert.rejects(sb.walker('send_chat_to_user', { root_id: asDave.root_id }), (e) => e.code === 'auth_required');
      assert.equal(sb.status(), 'connected');
    });

    test('after a switch, messages to the old user stop and those to the new user arrive', async () => {
      const sb = open();
      const r = record(sb);
      await sb.changeUser(carol.token);
      const sender = open({ token: dave.token });
      await record(sender).status('connected');
      await sb.changeUser(dave.token);
      sender.notifyUsers([`n::${carol.user.root_id}`], { type: 'chat', data: { message: 'to carol' } });
      sender.notifyUsers([`n::${dave.user.root_id}`], { type: 'chat', data: { message: 'to dave' } });
      await r.next(isChat('to dave'), 'the new user index delivers');
      assert.equal(r.messages.filter(isChat('to carol')).length, 0, 'the old user index no longer does');
    });

    test('a bad token makes the connection public', async () => {
      const sb = open({ token: carol.token });
      await record(sb).status('connected');
      assert.equal(sb.info().root_id, `n::${carol.user.root_id}`);
      const info = await sb.changeUser('garbage');
      assert.equal(info.root_id, PUBLIC_ROOT_ID);
    });
  });
}
