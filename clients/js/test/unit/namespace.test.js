// Unit tests of the namespace dialect and the jPulse facade against a fake WebSocket.
import { test, describe, beforeEach, afterEach, mock } from 'node:test';
import assert from 'node:assert/strict';

import { connect, jpulse } from '../../src/switchboard.js';
import { jpulseOptions, namespaceDialect } from '../../src/namespace.js';
import { FakeWebSocket } from '../../testing/fake-websocket.js';

const URL_ = 'ws://switchboard.test/api/1/ws/chat';
const UUID = '3f2504e0-4f89-41d3-9a0c-0305e82c3301';

function open(options = {}) {
  const conn = connect(URL_, {
    WebSocket: FakeWebSocket,
    heartbeatMs: 0,
    connectTimeoutMs: 0,
    clientIdStorage: 'memory',
    dialect: 'namespace',
    ...options,
    reconnect: { baseDelayMs: 100, maxDelayMs: 1000, jitter: 0, restartSpreadMs: 0, ...(options.reconnect ?? {}) },
  });
  const statuses = [];
  conn.onStatusChange((s, prev) => statuses.push(`${prev}->${s}`));
  const messages = [];
  conn.onMessage((data, frame) => messages.push({ data, frame }));
  return { conn, statuses, messages };
}

const last = () => FakeWebSocket.last();

function welcome(socket, { clientId = UUID, username = '' } = {}) {
  socket.open();
  socket.receive({ success: true, data: { type: 'connected', clientId, namespace: '/api/1/ws/chat', username } });
}

function advance(ms) {
  const before = FakeWebSocket.instances.length;
  mock.timers.tick(ms);
  return FakeWebSocket.instances.length > before;
}

beforeEach(() => {
  FakeWebSocket.reset();
  mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
});

afterEach(() => {
  mock.timers.reset();
  delete globalThis.sessionStorage;
  delete globalThis.localStorage;
});

/** A Storage stand-in (Node has none). */
function storage() {
  const map = new Map();
  return {
    getItem: (k) => (map.has(k) ? map.get(k) : null),
    setItem: (k, v) => map.set(k, String(v)),
    removeItem: (k) => map.delete(k),
  };
}

describe('namespace dialect', () => {
  test('the uuid and token go in the query; the connected envelope is the handshake', () => {
    const { conn, statuses, messages } = open({ token: 'Bearer t' });
    const url = new URL(last().url);
    assert.equal(url.pathname, '/api/1/ws/chat');
    assert.equal(url.searchParams.get('uuid'), conn.clientUuid);
    assert.equal(url.searchParams.get('auth'), 'Bearer t');
    welcome(last(), { username: 'ada' });
    assert.equal(conn.status(), 'connected');
    assert.deepEqual(conn.info(), { client_id: UUID, namespace: '/api/1/ws/chat', username: 'ada' });
    assert.deepEqual(statuses, ['connecting->connected']);
    assert.equal(messages[0].data.type, 'connected', 'listeners see the data of the welcome');
  });

  test('success envelopes deliver their data; error envelopes deliver null; pongs are consumed', () => {
    const { conn, messages } = open();
    welcome(last());
    const errors = [];
    conn.on('error', (data, frame) => errors.push({ data, frame }));
    const chats = [];
    conn.on('chat', (data) => chats.push(data));
    const chat = { success: true, data: { type: 'chat', text: 'hi', from: 'x', username: 'ada' } };
    last().receive(chat);
    const error = { success: false, error: 'Invalid message format', code: 400, username: '' };
    last().receive(error);
    last().receive({ success: true, data: { type: 'pong', timestamp: 1, username: '' } });
    assert.deepEqual(messages.slice(1), [
      { data: chat.data, frame: chat },
      { data: null, frame: error },
    ]);
    assert.deepEqual(chats, [chat.data]);
    assert.deepEqual(errors, [{ data: null, frame: error }]);
  });

  test('the heartbeat sends {"type":"ping"} and a pong keeps the link alive', () => {
    open({ heartbeatMs: 1000 });
    welcome(last());
    mock.timers.tick(1000);
    assert.deepEqual(last().frames, [{ type: 'ping' }]);
    last().receive({ success: true, data: { type: 'pong', timestamp: 1, username: '' } });
    mock.timers.tick(1000);
    assert.equal(FakeWebSocket.instances.length, 1, 'no reconnect after a pong');
  });

  test('no reconnect after 4401 (auth-required), 4403 or 4404 (disconnected)', () => {
    for (const [code, status] of [
      [4401, 'auth-required'],
      [4403, 'disconnected'],
      [4404, 'disconnected'],
    ]) {
      FakeWebSocket.reset();
      const { conn, messages } = open();
      last().open();
      last().receive({ success: false, error: 'no', code: code - 4000, username: '' });
      last().serverClose(code, '');
      assert.equal(conn.status(), status, `${code}`);
      assert.equal(messages[0].data, null);
      assert.equal(advance(60000), false, `no reconnect after ${code}`);
    }
  });

  test('a lost connection reconnects with the same uuid', () => {
    const { conn } = open();
    welcome(last());
    last().serverClose(1006);
    assert.equal(conn.status(), 'reconnecting');
    assert.ok(advance(100));
    assert.equal(new URL(last().url).searchParams.get('uuid'), conn.clientUuid);
  });

  test('the uuid lives in sessionStorage by default, shared by connections of the page', () => {
    globalThis.sessionStorage = storage();
    globalThis.localStorage = storage();
    const first = connect(URL_, { WebSocket: FakeWebSocket, dialect: 'namespace' });
    const second = connect('ws://switchboard.test/api/1/ws/cursors', { WebSocket: FakeWebSocket, dialect: 'namespace' });
    assert.equal(first.clientUuid, second.clientUuid);
    assert.equal(globalThis.sessionStorage.getItem('switchboard.client_uuid'), first.clientUuid);
    assert.equal(globalThis.localStorage.getItem('switchboard.client_uuid'), null);
    const local = connect(URL_, { WebSocket: FakeWebSocket, dialect: 'namespace', clientIdStorage: 'local' });
    assert.equal(globalThis.localStorage.getItem('switchboard.client_uuid'), local.clientUuid);
    const memory = connect(URL_, { WebSocket: FakeWebSocket, dialect: 'namespace', clientIdStorage: 'memory' });
    assert.notEqual(memory.clientUuid, first.clientUuid);
    for (const c of [first, second, local, memory]) c.disconnect();
  });

  test('walker, notify and changeUser are not part of the dialect', () => {
    assert.throws(() => namespaceDialect.walker('x', {}, 1), /not part of the namespace dialect/);
    const { conn } = open();
    welcome(last());
    assert.throws(() => conn.notifyClients(['a'], {}), /not part of the namespace dialect/);
  });
});

describe('jpulse facade', () => {
  test('seed 003 option names map onto the backoff and heartbeat', () => {
    const o = jpulseOptions({ reconnectBaseInterval: 3000, reconnectMaxInterval: 20000, maxReconnectAttempts: 15 });
    assert.equal(o.dialect, 'namespace');
    assert.deepEqual(
      [o.reconnect.baseDelayMs, o.reconnect.maxDelayMs, o.reconnect.maxAttempts, o.heartbeatMs, o.queueLimit],
      [3000, 20000, 15, 30000, 0],
    );
    const d = jpulseOptions();
    assert.deepEqual([d.reconnect.baseDelayMs, d.reconnect.maxDelayMs, d.reconnect.maxAttempts], [5000, 30000, 10]);
  });

  test('connect returns a chainable handle; send is true only when connected', () => {
    const seen = [];
    const statuses = [];
    const ws = jpulse.ws
      .connect(URL_, { WebSocket: FakeWebSocket, clientIdStorage: 'memory', pingInterval: 0, connectTimeoutMs: 0 })
      .onMessage((data, message) => seen.push([data, message]))
      .onStatusChange((status, old) => statuses.push(`${old}->${status}`));
    assert.equal(ws.getStatus(), 'connecting');
    assert.equal(ws.isConnected(), false);
    assert.equal(ws.send({ type: 'early' }), false, 'nothing is queued');
    welcome(last());
    assert.equal(ws.isConnected(), true);
    assert.equal(ws.send({ type: 'hello' }), true);
    assert.deepEqual(last().frames, [{ type: 'hello' }]);
    assert.deepEqual(jpulse.ws.getConnections(), [ws]);
    ws.disconnect();
    assert.equal(ws.getStatus(), 'disconnected');
    assert.deepEqual(jpulse.ws.getConnections(), []);
    assert.deepEqual(statuses, ['connecting->connected', 'connected->disconnected']);
    assert.equal(seen[0][0].type, 'connected');
  });

  test('after maxReconnectAttempts the status is disconnected', () => {
    const ws = jpulse.ws.connect(URL_, {
      WebSocket: FakeWebSocket,
      clientIdStorage: 'memory',
      pingInterval: 0,
      connectTimeoutMs: 0,
      reconnectBaseInterval: 100,
      reconnectMaxInterval: 100,
      maxReconnectAttempts: 2,
      reconnect: { jitter: 0 },
    });
    welcome(last());
    for (let i = 0; i < 2; i++) {
      last().serverClose(1006);
      assert.equal(ws.getStatus(), 'reconnecting');
      assert.ok(advance(100));
    }
    last().serverClose(1006);
    assert.equal(ws.getStatus(), 'disconnected');
    assert.equal(advance(60000), false);
  });
});
