// Unit tests of the SDK against a fake WebSocket and node:test's fake timers.
import { test, describe, beforeEach, afterEach, mock } from 'node:test';
import assert from 'node:assert/strict';

import {
  connect,
  backoffDelay,
  isTerminalCloseCode,
  CloseCode,
  SwitchboardError,
  Status,
} from '../../src/switchboard.js';
import { FakeWebSocket } from '../../testing/fake-websocket.js';

const URL_ = 'ws://switchboard.test/websocket';

/** connect() with the fake socket, no jitter, small delays, and a log of status changes. */
function open(options = {}) {
  const sb = connect(URL_, {
    WebSocket: FakeWebSocket,
    heartbeatMs: 0,
    connectTimeoutMs: 0,
    clientIdStorage: 'memory',
    ...options,
    reconnect: { baseDelayMs: 100, maxDelayMs: 1000, jitter: 0, restartSpreadMs: 0, ...(options.reconnect ?? {}) },
  });
  const statuses = [];
  sb.onStatusChange((s, prev) => statuses.push(`${prev}->${s}`));
  return { sb, statuses };
}

const sockets = () => FakeWebSocket.instances;
const last = () => FakeWebSocket.last();

/** Advance fake time by `ms` and return whether a new socket was created in that span. */
function advance(ms) {
  const before = sockets().length;
  mock.timers.tick(ms);
  return sockets().length > before;
}

beforeEach(() => {
  FakeWebSocket.reset();
  mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
});

afterEach(() => {
  mock.timers.reset();
  mock.restoreAll();
});

describe('connecting', () => {
  test('status goes connecting -> connected on the handshake frame, and info() is filled', () => {
    const { sb, statuses } = open();
    assert.equal(sb.status(), 'connecting');
    assert.equal(sb.isConnected(), false);
    assert.equal(sb.info(), null);
    last().open();
    assert.equal(sb.status(), 'connecting', 'open alone is not connected: the handshake is');
    last().accept({ client_id: '1:c', root_id: 'n::r', channel_id: 'room' });
    assert.equal(sb.status(), 'connected');
    assert.equal(sb.isConnected(), true);
    assert.deepEqual(sb.info(), { client_id: '1:c', root_id: 'n::r', channel_id: 'room' });
    assert.deepEqual(statuses, ['connecting->connected']);
  });

  test('token and channel_id become the auth and channel_id query parameters', () => {
    open({ token: 'Bearer abc.def', channel_id: 'room 1' });
    const u = new URL(last().url);
    assert.equal(u.pathname, '/websocket');
    assert.equal(u.searchParams.get('auth'), 'Bearer abc.def');
    assert.equal(u.searchParams.get('channel_id'), 'room 1');
  });

  test('no token, no channel: no query parameters; http URLs become ws URLs', () => {
    connect('http://switchboard.test/websocket?x=1', { WebSocket: FakeWebSocket, clientIdStorage: 'memory' });
    const u = new URL(last().url);
    assert.equal(u.protocol, 'ws:');
    assert.equal(u.searchParams.get('auth'), null);
    assert.equal(u.searchParams.get('channel_id'), null);
    assert.equal(u.searchParams.get('x'), '1', 'the caller\'s own parameters are kept');
  });

  test('the channel_id (given or assigned by the server) is kept across reconnects', () => {
    open();
    last().accept({ channel_id: 'assigned-by-server' });
    last().serverClose(1006);
    advance(100);
    assert.equal(new URL(last().url).searchParams.get('channel_id'), 'assigned-by-server');
  });

  test('without a WebSocket implementation connect() explains what to pass', () => {
    const saved = globalThis.WebSocket;
    try {
      delete globalThis.WebSocket;
      assert.throws(() => connect(URL_), /WebSocket/);
    } finally {
      if (saved) globalThis.WebSocket = saved;
    }
  });

  test('unknown dialects are refused', () => {
    assert.throws(() => connect(URL_, { WebSocket: FakeWebSocket, dialect: 'klingon' }), /unknown dialect/);
  });
});

describe('reconnection', () => {
  test('exponential backoff from baseDelayMs to maxDelayMs', () => {
    const { sb } = open({ reconnect: { baseDelayMs: 100, maxDelayMs: 1000 } });
    last().accept();
    last().serverClose(1006);
    assert.equal(sb.status(), 'reconnecting');
    const delays = [];
    for (let i = 0; i < 7; i++) {
      let waited = 0;
      while (!advance(1)) {
        waited += 1;
        assert.ok(waited < 5000, 'no reconnect attempt');
      }
      delays.push(waited + 1);
      last().fail();
    }
    assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000, 1000]);
    assert.equal(sb.status(), 'reconnecting');
  });

  test('jitter takes up to that fraction off each delay', () => {
    const cfg = { baseDelayMs: 1000, maxDelayMs: 30000, jitter: 0.5 };
    assert.equal(backoffDelay(1, cfg, () => 0), 1000);
    assert.equal(backoffDelay(1, cfg, () => 0.999999), 500);
    assert.equal(backoffDelay(3, cfg, () => 0.5), 3000);
    assert.equal(backoffDelay(20, cfg, () => 0), 30000);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(2, cfg);
      assert.ok(d >= 1000 && d <= 2000, `delay ${d}`);
    }
  });

  test('jitter is applied to real reconnects (Math.random)', () => {
    mock.method(Math, 'random', () => 0.5);
    open({ reconnect: { baseDelayMs: 1000, jitter: 0.5, maxDelayMs: 10000 } });
    last().accept();
    last().serverClose(1006);
    assert.equal(advance(749), false);
    assert.equal(advance(1), true, 'reconnects at 1000 * (1 - 0.5 * 0.5) = 750 ms');
  });

  test('after 1001 (server restarting) the first attempt is spread over restartSpreadMs', () => {
    mock.method(Math, 'random', () => 0.5);
    open({ reconnect: { baseDelayMs: 100, jitter: 0, restartSpreadMs: 3000 } });
    last().accept();
    last().serverClose(1001, 'server shutting down, reconnect');
    assert.equal(advance(1599), false);
    assert.equal(advance(1), true, '100 + 0.5 * 3000 = 1600 ms');
    last().fail();
    assert.equal(advance(199), false);
    assert.equal(advance(1), true, 'later attempts: plain backoff');
  });

  test('other codes get no restart spread', () => {
    mock.method(Math, 'random', () => 0.5);
    open({ reconnect: { baseDelayMs: 100, jitter: 0, restartSpreadMs: 3000 } });
    last().accept();
    last().serverClose(1011);
    assert.equal(advance(100), true);
  });

  test('the backoff starts again from baseDelayMs after a successful connection', () => {
    const { sb } = open();
    last().fail(); // first connect refused
    advance(100);
    last().fail();
    advance(200);
    last().fail();
    advance(400);
    last().accept();
    assert.equal(sb.status(), 'connected');
    last().serverClose(1011);
    assert.equal(advance(99), false);
    assert.equal(advance(1), true, 'first delay again');
  });

  test('gives up after maxAttempts with status disconnected', () => {
    const { sb, statuses } = open({ reconnect: { maxAttempts: 3 } });
    last().accept();
    last().serverClose(1006);
    advance(100);
    last().fail();
    advance(200);
    last().fail();
    advance(400);
    assert.equal(sockets().length, 4, 'the first socket and 3 attempts');
    last().fail();
    assert.equal(sb.status(), 'disconnected');
    assert.equal(advance(60000), false, 'no further attempt');
    assert.deepEqual(statuses, ['connecting->connected', 'connected->reconnecting', 'reconnecting->disconnected']);
  });

  test('a failed first connection is retried like a dropped one', () => {
    const { sb, statuses } = open();
    last().fail();
    assert.equal(sb.status(), 'reconnecting');
    advance(100);
    last().accept();
    assert.deepEqual(statuses, ['connecting->reconnecting', 'reconnecting->connected']);
  });

  for (const code of [4400, 4403, 4404, 4409, 4499, 1000]) {
    test(`close code ${code} is terminal: status disconnected, no reconnect`, () => {
      const { sb } = open();
      last().accept();
      last().serverClose(code, 'bye');
      assert.equal(sb.status(), 'disconnected');
      assert.equal(advance(120000), false);
    });
  }

  test('close code 4401 gives the terminal status auth-required', () => {
    const { sb, statuses } = open();
    last().accept();
    last().serverClose(4401, 'unauthorized');
    assert.equal(sb.status(), 'auth-required');
    assert.equal(advance(120000), false);
    assert.deepEqual(statuses, ['connecting->connected', 'connected->auth-required']);
  });

  for (const code of [1001, 1006, 1008, 1009, 1011, 1013, 4001, 4008, 4000, 3000]) {
    test(`close code ${code} reconnects`, () => {
      const { sb } = open();
      last().accept();
      last().serverClose(code);
      assert.equal(sb.status(), 'reconnecting');
      assert.equal(advance(100), true);
    });
  }

  test('isTerminalCloseCode follows the ranges of close-codes.md', () => {
    assert.equal(isTerminalCloseCode(CloseCode.NORMAL), true);
    assert.equal(isTerminalCloseCode(CloseCode.UNAUTHORIZED), true);
    assert.equal(isTerminalCloseCode(4450), true);
    assert.equal(isTerminalCloseCode(CloseCode.GOING_AWAY), false);
    assert.equal(isTerminalCloseCode(CloseCode.SLOW_CONSUMER), false);
    assert.equal(isTerminalCloseCode(4500), false);
  });

  test('the browser `online` event reconnects at once', () => {
    const listeners = new Map();
    globalThis.addEventListener = (type, fn) => listeners.set(type, fn);
    globalThis.removeEventListener = (type) => listeners.delete(type);
    try {
      const { sb } = open({ reconnect: { baseDelayMs: 10000, maxDelayMs: 10000 } });
      last().accept();
      last().serverClose(1006);
      const before = sockets().length;
      listeners.get('online')();
      assert.equal(sockets().length, before + 1, 'a new socket without waiting for the backoff');
      last().accept();
      assert.equal(sb.status(), 'connected');
      assert.equal(advance(20000), false, 'the cancelled backoff timer does not fire later');
      sb.disconnect();
      assert.equal(listeners.has('online'), false, 'disconnect() removes the listener');
    } finally {
      delete globalThis.addEventListener;
      delete globalThis.removeEventListener;
    }
  });

  test('`online` after giving up starts over', () => {
    const listeners = new Map();
    globalThis.addEventListener = (type, fn) => listeners.set(type, fn);
    globalThis.removeEventListener = (type) => listeners.delete(type);
    try {
      const { sb } = open({ reconnect: { maxAttempts: 1 } });
      last().fail();
      advance(100);
      last().fail();
      assert.equal(sb.status(), 'disconnected');
      listeners.get('online')();
      assert.equal(sb.status(), 'connecting');
      last().accept();
      assert.equal(sb.status(), 'connected');
    } finally {
      delete globalThis.addEventListener;
      delete globalThis.removeEventListener;
    }
  });

  test('a socket that never delivers the handshake is abandoned after connectTimeoutMs', () => {
    const { sb } = open({ connectTimeoutMs: 5000 });
    last().open(); // TCP up, but no connection frame
    advance(4999);
    assert.equal(sb.status(), 'connecting');
    advance(1);
    assert.equal(sb.status(), 'reconnecting');
    assert.ok(sockets()[0].closedWith, 'the stuck socket was closed');
    assert.equal(advance(100), true);
  });

  test('disconnect() closes with 1000 and never reconnects', () => {
    const { sb, statuses } = open();
    last().accept();
    const ws = last();
    sb.disconnect();
    assert.equal(ws.closedWith.code, 1000);
    assert.equal(sb.status(), 'disconnected');
    assert.equal(advance(120000), false);
    assert.equal(sb.send({ a: 1 }), 'dropped');
    assert.deepEqual(statuses, ['connecting->connected', 'connected->disconnected']);
  });
});

describe('offline queue', () => {
  test('sends while not connected are queued and flushed in order after the handshake', () => {
    const { sb } = open();
    assert.equal(sb.send({ n: 1 }), 'queued');
    assert.equal(sb.notifyChannels(['room'], { n: 2 }), 'queued');
    assert.equal(sb.send({ n: 3 }), 'queued');
    last().open();
    assert.deepEqual(last().sent, [], 'nothing before the handshake');
    last().accept();
    assert.deepEqual(last().appFrames, [
      { n: 1 },
      { type: 'channel', channel_ids: ['room'], data: { n: 2 } },
      { n: 3 },
    ]);
    assert.equal(sb.send({ n: 4 }), 'sent');
    assert.deepEqual(last().appFrames.at(-1), { n: 4 });
  });

  test('the queue keeps queueLimit frames, dropping the oldest', () => {
    const { sb } = open({ queueLimit: 3 });
    last().accept();
    last().serverClose(1006);
    for (let n = 1; n <= 5; n++) assert.equal(sb.send({ n }), 'queued');
    advance(100);
    last().accept();
    assert.deepEqual(last().appFrames, [{ n: 3 }, { n: 4 }, { n: 5 }]);
  });

  test('the default queueLimit is 100', () => {
    const { sb } = open();
    for (let n = 1; n <= 150; n++) sb.send({ n });
    last().accept();
    const got = last().appFrames.map((f) => f.n);
    assert.equal(got.length, 100);
    assert.equal(got[0], 51);
    assert.equal(got[99], 150);
  });

  test('a status listener that sends on `connected` goes after the queued frames', () => {
    const { sb } = open();
    sb.send({ n: 1 });
    sb.onStatusChange((s) => {
      if (s === 'connected') sb.send({ n: 2 });
    });
    last().accept();
    assert.deepEqual(last().appFrames, [{ n: 1 }, { n: 2 }]);
  });

  test('a walker call dropped from a full queue rejects with queue_full', async () => {
    const { sb } = open({ queueLimit: 1 });
    const p = sb.walker('chat_service', { message: 'a' });
    sb.send({ n: 2 });
    await assert.rejects(p, (e) => e instanceof SwitchboardError && e.code === 'queue_full');
  });

  test('the data is serialised when queued, so later mutation does not change it', () => {
    const { sb } = open();
    const msg = { text: 'before' };
    sb.send(msg);
    msg.text = 'after';
    last().accept();
    assert.deepEqual(last().appFrames, [{ text: 'before' }]);
  });
});

describe('walker calls', () => {
  test('several in flight are correlated by id, whatever the reply order', async () => {
    const { sb } = open();
    last().accept();
    const seen = [];
    sb.onMessage((d) => seen.push(d));
    const a = sb.walker('chat_service', { message: 'a' });
    const b = sb.walker('chat_service', { message: 'b' });
    const c = sb.walker('self_progress_notif', {});
    const sent = last().appFrames;
    assert.equal(sent.length, 3);
    for (const f of sent) {
      assert.equal(f.type, 'walker');
      assert.equal(f.response, true);
    }
    assert.deepEqual(sent[0].context, { message: 'a' });
    const ids = sent.map((f) => f.id);
    assert.equal(new Set(ids).size, 3, 'distinct ids');
    last().receive({ status: 200, reports: ['done'], walker: 'self_progress_notif', id: ids[2] });
    last().receive({ status: 200, reports: ['Received: b'], walker: 'chat_service', id: ids[1] });
    last().receive({ status: 200, reports: ['Received: a'], walker: 'chat_service', id: ids[0] });
    assert.deepEqual((await a).reports, ['Received: a']);
    assert.deepEqual((await b).reports, ['Received: b']);
    assert.deepEqual((await c).reports, ['done']);
    assert.equal((await a).id, ids[0]);
    assert.deepEqual(seen, [], 'replies consumed by walker() are not delivered to onMessage');
  });

  test('a walker error rejects with the server\'s code and message', async () => {
    const { sb } = open();
    last().accept();
    const p = sb.walker('send_chat_to_user', { root_id: 'n::x' });
    const { id } = last().appFrames[0];
    last().receive({ type: 'walker', walker: 'send_chat_to_user', error: 'login required', code: 'auth_required', id });
    await assert.rejects(p, (e) => {
      assert.ok(e instanceof SwitchboardError);
      assert.ok(e instanceof Error);
      assert.equal(e.code, 'auth_required');
      assert.equal(e.message, 'login required');
      assert.equal(e.walker, 'send_chat_to_user');
      assert.equal(e.id, id);
      return true;
    });
  });

  test('a walker call times out with code timeout, and a late reply goes to onMessage', async () => {
    const { sb } = open();
    last().accept();
    const seen = [];
    sb.onMessage((d) => seen.push(d));
    const p = sb.walker('slow', {}, { timeoutMs: 500 });
    const { id } = last().appFrames[0];
    mock.timers.tick(499);
    let settled = false;
    p.catch(() => {}).finally(() => {
      settled = true;
    });
    await Promise.resolve();
    assert.equal(settled, false);
    mock.timers.tick(1);
    await assert.rejects(p, (e) => e.code === 'timeout');
    last().receive({ status: 200, reports: [], walker: 'slow', id });
    assert.equal(seen.length, 1);
  });

  test('a walker call queued while offline is sent after reconnect and resolves', async () => {
    const { sb } = open();
    last().accept();
    last().serverClose(1006);
    const p = sb.walker('chat_service', { message: 'later' });
    advance(100);
    last().accept();
    const f = last().appFrames[0];
    assert.equal(f.walker, 'chat_service');
    last().receive({ status: 200, reports: ['Received: later'], walker: 'chat_service', id: f.id });
    assert.deepEqual((await p).reports, ['Received: later']);
  });

  test('a walker call on the wire when the socket drops rejects with connection_lost', async () => {
    const { sb } = open();
    last().accept();
    const p = sb.walker('chat_service', { message: 'x' });
    last().serverClose(1006);
    await assert.rejects(p, (e) => e.code === 'connection_lost');
  });

  test('a timed-out call still in the queue is not sent later', async () => {
    const { sb } = open();
    const p = sb.walker('chat_service', {}, { timeoutMs: 50 });
    mock.timers.tick(50);
    await assert.rejects(p, (e) => e.code === 'timeout');
    last().accept();
    assert.deepEqual(last().appFrames, []);
  });

  test('disconnect() rejects pending calls with code disconnected', async () => {
    const { sb } = open();
    last().accept();
    const onWire = sb.walker('a', {});
    sb.disconnect();
    await assert.rejects(onWire, (e) => e.code === 'disconnected');
    await assert.rejects(sb.walker('b', {}), (e) => e.code === 'disconnected');
  });

  test('the node option is passed through', () => {
    const { sb } = open();
    last().accept();
    sb.walker('w', { a: 1 }, { node: 'n::abc' }).catch(() => {});
    assert.equal(last().appFrames[0].node, 'n::abc');
    sb.disconnect();
  });
});

describe('heartbeat', () => {
  test('pings every heartbeatMs; pong keeps the connection and is not delivered', () => {
    const { sb } = open({ heartbeatMs: 1000 });
    last().accept();
    const seen = [];
    sb.onMessage((d) => seen.push(d));
    for (let i = 0; i < 5; i++) {
      mock.timers.tick(1000);
      assert.deepEqual(last().frames.at(-1), { type: 'ping' });
      last().receive({ type: 'pong' });
    }
    assert.equal(sb.status(), 'connected');
    assert.equal(sockets().length, 1);
    assert.deepEqual(seen, []);
  });

  test('no answer within heartbeatMs: the socket is closed and the client reconnects', () => {
    const { sb, statuses } = open({ heartbeatMs: 1000 });
    last().accept();
    const dead = last();
    mock.timers.tick(1000);
    assert.deepEqual(dead.frames, [{ type: 'ping' }]);
    mock.timers.tick(999);
    assert.equal(sb.status(), 'connected');
    mock.timers.tick(1);
    assert.equal(sb.status(), 'reconnecting');
    assert.ok(dead.closedWith, 'the dead socket was closed by the client');
    dead.serverClose(1006); // a close event arriving late changes nothing
    assert.equal(sb.status(), 'reconnecting');
    assert.equal(advance(100), true);
    last().accept();
    assert.deepEqual(statuses, ['connecting->connected', 'connected->reconnecting', 'reconnecting->connected']);
  });

  test('any frame counts as a sign of life', () => {
    const { sb } = open({ heartbeatMs: 1000 });
    last().accept();
    mock.timers.tick(1000);
    last().receive({ type: 'chat', data: { message: 'hi' } });
    mock.timers.tick(1000);
    assert.equal(sb.status(), 'connected');
  });
});

describe('receiving', () => {
  test('onMessage gets every frame but pong; on(type) filters by the type field', () => {
    const { sb } = open();
    const all = [];
    const chats = [];
    sb.onMessage((d, f) => all.push([d, f]));
    const off = sb.on('chat', (d) => chats.push(d.data.message));
    last().accept();
    last().receive({ type: 'chat', data: { message: 'one' } });
    last().receive({ type: 'progress', data: { progress: '50%' } });
    last().receive({ type: 'pong' });
    off();
    last().receive({ type: 'chat', data: { message: 'two' } });
    assert.deepEqual(chats, ['one']);
    assert.deepEqual(all.map(([d]) => d.type), ['connection', 'chat', 'progress', 'chat']);
    assert.equal(all[1][0], all[1][1], 'jac frames are the data, verbatim');
  });

  test('a listener that throws does not break delivery to the others', () => {
    const errors = mock.method(console, 'error', () => {});
    const { sb } = open();
    const got = [];
    sb.onMessage(() => {
      throw new Error('bug in app');
    });
    sb.onMessage((d) => got.push(d.type));
    last().accept();
    last().receive({ type: 'chat' });
    assert.deepEqual(got, ['connection', 'chat']);
    assert.ok(errors.mock.callCount() >= 1);
  });

  test('error frames are delivered as type `error`', () => {
    const { sb } = open({ token: 'bad' });
    const errs = [];
    sb.on('error', (d) => errs.push(d.code));
    last().accept();
    last().receive({ type: 'error', error: 'token is invalid', code: 'token_invalid' });
    assert.deepEqual(errs, ['token_invalid']);
  });
});

describe('notify events', () => {
  test('user, channel and client events have the wire shape', () => {
    const { sb } = open();
    last().accept();
    assert.equal(sb.notifyUsers(['n::1'], { type: 'chat' }), 'sent');
    sb.notifyChannels('room', { type: 'chat' });
    sb.notifyClients(['c1', 'c2'], 'plain');
    assert.deepEqual(last().appFrames, [
      { type: 'user', root_ids: ['n::1'], data: { type: 'chat' } },
      { type: 'channel', channel_ids: ['room'], data: { type: 'chat' } },
      { type: 'client', client_ids: ['c1', 'c2'], data: 'plain' },
    ]);
  });

  test('empty id lists are refused before reaching the server', () => {
    const { sb } = open();
    assert.throws(() => sb.notifyUsers([], {}), TypeError);
    assert.throws(() => sb.notifyChannels(undefined, {}), TypeError);
  });
});

describe('changeUser', () => {
  test('sends change_user and resolves with the new connection info; reconnects reuse the token', async () => {
    const { sb } = open();
    last().accept({ client_id: '1:c', root_id: 'n::000000000000000000000001' });
    const p = sb.changeUser('Bearer tok');
    assert.deepEqual(last().appFrames.at(-1), { type: 'change_user', token: 'Bearer tok' });
    last().receive({ type: 'connection', data: { client_id: '1:c', root_id: 'n::user', channel_id: 'h' } });
    assert.deepEqual(await p, { client_id: '1:c', root_id: 'n::user', channel_id: 'h' });
    assert.equal(sb.info().root_id, 'n::user');
    last().serverClose(1001);
    advance(100);
    assert.equal(new URL(last().url).searchParams.get('auth'), 'Bearer tok');
  });

  test('changeUser(null) makes the connection public and forgets the token', async () => {
    const { sb } = open({ token: 'tok' });
    last().accept({ root_id: 'n::user' });
    const p = sb.changeUser(null);
    assert.deepEqual(last().appFrames.at(-1), { type: 'change_user' });
    last().receive({ type: 'connection', data: { client_id: '1:c', root_id: 'n::000000000000000000000001', channel_id: 'h' } });
    await p;
    last().serverClose(1006);
    advance(100);
    assert.equal(new URL(last().url).searchParams.get('auth'), null);
  });

  test('called while reconnecting, the next connection authenticates with the new token', async () => {
    const { sb } = open();
    last().accept();
    last().serverClose(1006);
    const p = sb.changeUser('tok2');
    advance(100);
    assert.equal(new URL(last().url).searchParams.get('auth'), 'tok2');
    last().accept({ root_id: 'n::two' });
    assert.equal((await p).root_id, 'n::two');
  });

  test('called while the socket is opening with the old token, it switches right after the handshake', async () => {
    const { sb } = open({ token: 'old' });
    const p = sb.changeUser('new');
    last().accept({ root_id: 'n::old' });
    assert.deepEqual(last().appFrames[0], { type: 'change_user', token: 'new' });
    last().receive({ type: 'connection', data: { client_id: '1:c', root_id: 'n::new', channel_id: 'h' } });
    assert.equal((await p).root_id, 'n::new');
  });

  test('after auth-required, changeUser connects again with the new token', async () => {
    const { sb, statuses } = open({ token: 'expired' });
    last().accept();
    last().serverClose(4401);
    assert.equal(sb.status(), 'auth-required');
    const queued = sb.send({ n: 1 });
    assert.equal(queued, 'queued');
    const p = sb.changeUser('fresh');
    assert.equal(sb.status(), 'connecting');
    assert.equal(new URL(last().url).searchParams.get('auth'), 'fresh');
    last().accept({ root_id: 'n::fresh' });
    assert.equal((await p).root_id, 'n::fresh');
    assert.deepEqual(last().appFrames, [{ n: 1 }]);
    assert.deepEqual(statuses, [
      'connecting->connected',
      'connected->auth-required',
      'auth-required->connecting',
      'connecting->connected',
    ]);
  });

  test('changeUser times out when no connection frame answers', async () => {
    const { sb } = open();
    last().accept();
    const p = sb.changeUser('tok', { timeoutMs: 1000 });
    mock.timers.tick(1000);
    await assert.rejects(p, (e) => e.code === 'timeout');
  });
});

describe('client uuid', () => {
  test('persists in localStorage across connections', () => {
    const store = new Map();
    globalThis.localStorage = {
      getItem: (k) => (store.has(k) ? store.get(k) : null),
      setItem: (k, v) => store.set(k, String(v)),
    };
    try {
      const a = connect(URL_, { WebSocket: FakeWebSocket, clientIdStorage: 'local' });
      const b = connect(URL_, { WebSocket: FakeWebSocket, clientIdStorage: 'local' });
      assert.match(a.clientUuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(a.clientUuid, b.clientUuid);
      assert.equal(store.size, 1);
      const c = connect(URL_, { WebSocket: FakeWebSocket, clientIdStorage: 'memory' });
      assert.notEqual(c.clientUuid, a.clientUuid);
      for (const s of [a, b, c]) s.disconnect();
    } finally {
      delete globalThis.localStorage;
    }
  });

  test('falls back to memory when storage is missing or throws', () => {
    globalThis.sessionStorage = {
      getItem() {
        throw new Error('SecurityError');
      },
    };
    try {
      const a = connect(URL_, { WebSocket: FakeWebSocket, clientIdStorage: 'session' });
      assert.match(a.clientUuid, /^[0-9a-f-]{36}$/);
      a.disconnect();
    } finally {
      delete globalThis.sessionStorage;
    }
  });
});

test('Status lists the five statuses', () => {
  assert.deepEqual(Object.values(Status).sort(), ['auth-required', 'connected', 'connecting', 'disconnected', 'reconnecting']);
});
