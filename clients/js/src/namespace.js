// The namespace dialect of @switchboard/client (seed 003, jPulse): Switchboard's `/api/1/ws/<name>`
// endpoints, whose frames are envelopes.
//
//   import { connect, jpulse } from '@switchboard/client';
//   const chat = connect('/api/1/ws/chat', { dialect: 'namespace' });
//   chat.onMessage((data, message) => { if (data) show(data.username, data.text); });
//   chat.send({ type: 'chat', text: 'hi' });
//
//   // or seed 003's own shape:
//   const ws = jpulse.ws.connect('/api/1/ws/chat', { reconnectBaseInterval: 3000 })
//     .onMessage((data, message) => { ... })
//     .onStatusChange((status, oldStatus) => { ... });
//
// The wire contract is docs/protocol-namespace.md. This module has no imports: switchboard.js
// registers the dialect and builds the facade around its own `connect`, so either file can be
// loaded first.
//
// Layout of this file:
//   1. namespaceDialect: how envelopes map onto the connection's handshake, messages and pings
//   2. createJpulseWs(): seed 003's `jPulse.ws` API on top of `connect()`

// ---------------------------------------------------------------------------------------------
// 1. The dialect
// ---------------------------------------------------------------------------------------------

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function unsupported(what) {
  return () => {
    throw new TypeError(
      `switchboard: ${what} is not part of the namespace dialect; send a message and let the namespace's server code answer it`,
    );
  };
}

/**
 * Envelopes in and out (see the dialect contract in switchboard.js, section 3):
 * - `{"success":true,"data":{"type":"connected","clientId":C,...}}` is the handshake;
 * - `{"success":true,"data":{"type":"pong",...}}` answers the heartbeat's `{"type":"ping"}`;
 * - any other success envelope is a message: listeners get `(data, envelope)`;
 * - an error envelope `{"success":false,"error":E,"code":N,...}` is a message with `data` null
 *   (listeners read `envelope.error` and `envelope.code`), also dispatched to `on('error')`.
 */
export const namespaceDialect = Object.freeze({
  name: 'namespace',

  /** Two tabs share sessionStorage: each keeps its own uuid across reloads unless told otherwise. */
  clientIdStorage: 'session',

  query({ token, clientUuid }) {
    const q = [];
    if (clientUuid) q.push(['uuid', clientUuid]);
    if (token) q.push(['auth', token]);
    return q;
  },

  ping() {
    return { type: 'ping' };
  },

  isPong(frame) {
    return isObject(frame) && frame.success === true && isObject(frame.data) && frame.data.type === 'pong';
  },

  classify(frame) {
    if (!isObject(frame)) return { kind: 'message', type: undefined, data: frame };
    if (frame.success === false) return { kind: 'message', type: 'error', data: null };
    const data = frame.data;
    if (frame.success === true && isObject(data) && data.type === 'connected' && typeof data.clientId === 'string') {
      return {
        kind: 'handshake',
        type: 'connected',
        data,
        info: {
          client_id: data.clientId,
          namespace: typeof data.namespace === 'string' ? data.namespace : null,
          username: typeof data.username === 'string' ? data.username : '',
        },
      };
    }
    return { kind: 'message', type: isObject(data) && typeof data.type === 'string' ? data.type : undefined, data };
  },

  walker: unsupported('walker()'),
  notify: unsupported('notifyUsers/notifyChannels/notifyClients'),
  changeUser: unsupported('changeUser()'),
});

// ---------------------------------------------------------------------------------------------
// 2. The jPulse-shaped facade
// ---------------------------------------------------------------------------------------------

/** Seed 003's defaults: 5 s first retry, 30 s at most, 10 attempts, a ping every 30 s. */
export const JPULSE_DEFAULTS = Object.freeze({
  reconnectBaseInterval: 5000,
  reconnectMaxInterval: 30000,
  maxReconnectAttempts: 10,
  pingInterval: 30000,
});

/**
 * Seed 003's connect options (plus the SDK's own, passed through) as `connect()` options: the
 * dialect, the backoff, the heartbeat, and no offline queue (seed 003's `send` returns false while
 * disconnected instead of queueing).
 */
export function jpulseOptions(options = {}) {
  const {
    reconnectBaseInterval = JPULSE_DEFAULTS.reconnectBaseInterval,
    reconnectMaxInterval = JPULSE_DEFAULTS.reconnectMaxInterval,
    maxReconnectAttempts = JPULSE_DEFAULTS.maxReconnectAttempts,
    pingInterval = JPULSE_DEFAULTS.pingInterval,
    reconnect = {},
    ...rest
  } = options ?? {};
  return {
    queueLimit: 0,
    heartbeatMs: pingInterval,
    ...rest,
    dialect: 'namespace',
    reconnect: {
      baseDelayMs: reconnectBaseInterval,
      maxDelayMs: reconnectMaxInterval,
      maxAttempts: maxReconnectAttempts,
      ...reconnect,
    },
  };
}

/**
 * `jPulse.ws` for Switchboard, built around the SDK's `connect` (passed in, so this module needs no
 * import): `ws.connect(path, options)` returns a handle with seed 003's methods, chainable where
 * seed 003's are. `ws.getConnections()` lists the handles not yet disconnected.
 */
export function createJpulseWs(connect) {
  const open = new Set();

  class JPulseConnection {
    constructor(path, options) {
      this._connection = connect(path, jpulseOptions(options));
      open.add(this);
    }

    /** The SDK connection underneath (status events, `info()`, `url()`). */
    get connection() {
      return this._connection;
    }

    /** Send `data`; true if it went out, false if the connection is not open (nothing is queued). */
    send(data) {
      return this._connection.send(data) === 'sent';
    }

    /** `cb(data, message)`: `data` is the envelope's `data`, or null for an error envelope. */
    onMessage(cb) {
      this._connection.onMessage(cb);
      return this;
    }

    /** `cb(status, oldStatus)`: connecting, connected, reconnecting, disconnected, auth-required. */
    onStatusChange(cb) {
      this._connection.onStatusChange(cb);
      return this;
    }

    getStatus() {
      return this._connection.status();
    }

    isConnected() {
      return this._connection.isConnected();
    }

    /** Close and stop reconnecting. */
    disconnect() {
      open.delete(this);
      this._connection.disconnect();
    }
  }

  return Object.freeze({
    connect(path, options = {}) {
      return new JPulseConnection(path, options);
    },
    getConnections() {
      return [...open];
    },
  });
}
