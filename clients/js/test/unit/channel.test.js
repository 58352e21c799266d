// Unit tests of the channel dialect (channel.js) against a fake WebSocket and fake timers.
import { test, describe, beforeEach, afterEach, mock } from 'node:test';
import assert from 'node:assert/strict';

import { connect, Socket } from '../../src/switchboard.js';
import { channelOfUrl } from '../../src/channel.js';
import { FakeWebSocket } from '../../testing/fake-websocket.js';

const URL_ = 'ws://switchboard.test/ws/room1?device=phone';

function open(options = {}) {
  return connect(URL_, {
    WebSocket: FakeWebSocket,
    dialect: 'channel',
    heartbeatMs: 0,
    connectTimeoutMs: 0,
    clientIdStorage: 'memory',
    ...options,
    reconnect: { baseDelayMs: 100, maxDelayMs: 1000, jitter: 0, restartSpreadMs: 0 },
  });
}

const last = () => FakeWebSocket.last();

beforeEach(() => {
  FakeWebSocket.reset();
  mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
});

afterEach(() => {
  mock.timers.reset();
});

describe('channel dialect', () => {
  test('the socket opening is the handshake: no first frame is awaited', () => {
    const sb = open({ token: 'tok' });
    assert.equal(sb.status(), 'connecting');
    last().open();
    assert.equal(sb.status(), 'connected');
    const u = new URL(last().url);
    assert.equal(u.pathname, '/ws/room1');
    assert.equal(u.searchParams.get('device'), 'phone', 'metadata kept');
    assert.equal(u.searchParams.get('auth'), 'tok');
    assert.equal(sb.info().channel_id, 'room1');
    assert.deepEqual(sb.channels(), ['room1']);
  });

  test('join, leave and members resolve with their replies, errors reject with the code', async () => {
    const sb = open();
    last().open();
    const joined = sb.join('room2');
    assert.deepEqual(last().frames.at(-1), { cmd: 'join', channel: 'room2' });
    last().receive({ channel: 'room2', cmd: 'joined', param: { members: 3 } });
    assert.deepEqual(await joined, { channel: 'room2', members: 3 });
    assert.deepEqual(sb.channels().sort(), ['room1', 'room2']);

    const members = sb.members('room2');
    last().receive({ channel: 'room2', cmd: 'members', param: { members: [{ id: 'a', userID: 'a', username: '' }] } });
    assert.deepEqual(await members, [{ id: 'a', userID: 'a', username: '' }]);

    const refused = sb.join('private.x');
    last().receive({ channel: 'private.x', cmd: 'error', param: { code: 'auth_required', message: 'login' } });
    await assert.rejects(refused, (err) => err.code === 'auth_required' && err.channel === 'private.x');

    const left = sb.leave('room2');
    last().receive({ channel: 'room2', cmd: 'left', param: { members: 2 } });
    assert.deepEqual(await left, { channel: 'room2', members: 2 });
    assert.deepEqual(sb.channels(), ['room1']);
  });

  test('onPresence hears online-update frames', () => {
    const sb = open();
    last().open();
    const seen = [];
    sb.onPresence((p) => seen.push(p));
    last().receive({ from: 'c2', channel: 'room1', cmd: 'online-update', param: { userID: 'u2', connected: true } });
    last().receive({ from: 'c1', channel: 'room1', cmd: 'chat', param: {} });
    assert.deepEqual(seen, [{ channel: 'room1', from: 'c2', userID: 'u2', connected: true }]);
  });

  test('a reconnect joins again before the queue flushes', () => {
    const sb = open();
    last().open();
    sb.join('room2');
    last().receive({ channel: 'room2', cmd: 'joined', param: { members: 1 } });
    last().serverClose(1006);
    sb.sendTo('room2', 'chat', { n: 1 });
    mock.timers.tick(100);
    last().open();
    assert.deepEqual(last().frames, [
      { cmd: 'join', channel: 'room2' },
      { channel: 'room2', cmd: 'chat', param: { n: 1 } },
    ]);
  });

  test('walker calls are refused: the dialect has none', async () => {
    const sb = open();
    await assert.rejects(sb.walker('x'), TypeError);
  });

  test('channelOfUrl reads the path channel', () => {
    assert.equal(channelOfUrl('ws://h/ws/a.b:c'), 'a.b:c');
    assert.equal(channelOfUrl('ws://h/websocket'), null);
  });
});

describe("seed 004's Socket", () => {
  function socket() {
    const events = [];
    const s = new Socket(
      false,
      () => events.push('open'),
      (m) => events.push(m),
      (service, message) => events.push(`err:${service}:${message}`),
      URL_,
      { WebSocket: FakeWebSocket, heartbeatMs: 0, connectTimeoutMs: 0, reconnect: { baseDelayMs: 100, jitter: 0 } },
    );
    return { s, events };
  }

  test('onOpen, onRecv with the whole message, onErr for error frames', () => {
    const { events } = socket();
    last().open();
    last().receive({ from: 'x', channel: 'room1', cmd: 'notification', param: { id: 1 } });
    last().receive({ cmd: 'error', param: { code: 'not_joined', message: 'join first' } });
    assert.deepEqual(events, [
      'open',
      { from: 'x', channel: 'room1', cmd: 'notification', param: { id: 1 } },
      'err:socket:join first',
    ]);
  });

  test('while disconnected at most 100 messages wait, oldest dropped, flushed in order', () => {
    const { s } = socket();
    for (let i = 0; i < 105; i++) s.send({ channel: 'room1', cmd: 'n', param: i });
    last().open();
    const sent = last().frames.map((f) => f.param);
    assert.equal(sent.length, 100);
    assert.deepEqual(sent.slice(0, 2), [5, 6]);
    assert.equal(sent.at(-1), 104);
  });

  test('close-connection stops reconnecting', () => {
    const { s } = socket();
    last().open();
    const count = FakeWebSocket.instances.length;
    last().receive({ cmd: 'close-connection' });
    last().serverClose(4400);
    mock.timers.tick(60000);
    assert.equal(FakeWebSocket.instances.length, count, 'no new socket');
    assert.equal(s.conn.status(), 'disconnected');
  });

  test('a relayed close-connection (it carries from) is not obeyed', () => {
    const { s } = socket();
    last().open();
    last().receive({ from: 'peer', channel: 'room1', cmd: 'close-connection' });
    assert.equal(s.conn.status(), 'connected');
  });

  test('a lost connection reconnects with backoff', () => {
    socket();
    last().open();
    last().serverClose(1006);
    const count = FakeWebSocket.instances.length;
    mock.timers.tick(100);
    assert.equal(FakeWebSocket.instances.length, count + 1);
  });
});
