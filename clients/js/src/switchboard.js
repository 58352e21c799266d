// @switchboard/client: the JavaScript SDK of Switchboard (browsers and Node 20+).
//
// ES modules, no runtime dependencies: this file and the dialect modules beside it, channel.js
// (the channel dialect) and namespace.js (the namespace dialect). The server serves all three as
// they are, at `/switchboard.js`, `/channel.js` and `/namespace.js`.
//
//   import { connect } from '@switchboard/client';
//   const sb = connect('ws://localhost:8000/websocket', { channel_id: 'room-1', token });
//   sb.on('chat', (msg) => console.log(msg.data.message));
//   const reply = await sb.walker('chat_service', { message: 'hi' });
//
// Layout of this file:
//   1. constants (statuses, close codes, defaults)
//   2. small helpers (ids, storage, URLs, errors)
//   3. dialects: how frames look on the wire (`jac` here, `channel` in channel.js, `namespace` in
//      namespace.js)
//   4. SwitchboardConnection: status machine, reconnection, heartbeat, queue, walker calls
//   5. connect()

import { channelDialect, attachChannelApi, Socket } from './channel.js';
import { namespaceDialect, createJpulseWs } from './namespace.js';

export const VERSION = '0.1.0';

// ---------------------------------------------------------------------------------------------
// 1. Constants
// ---------------------------------------------------------------------------------------------

/** Connection statuses. `auth-required` and `disconnected` are terminal: no reconnect follows. */
export const Status = Object.freeze({
  CONNECTING: 'connecting',
  CONNECTED: 'connected',
  RECONNECTING: 'reconnecting',
  DISCONNECTED: 'disconnected',
  AUTH_REQUIRED: 'auth-required',
});

/**
 * The close codes the server uses (docs/close-codes.md). The SDK decides by range, so a code that
 * is not in this table is still handled: 4400-4499 stop, everything else reconnects.
 */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  TRY_AGAIN_LATER: 1013,
  HEARTBEAT_TIMEOUT: 4001,
  SLOW_CONSUMER: 4008,
  CLOSED_BY_SERVER: 4400,
  UNAUTHORIZED: 4401,
  FORBIDDEN: 4403,
  NOT_FOUND: 4404,
  REPLACED: 4409,
});

/**
 * Whether a close code received from the server forbids reconnecting: the 4400-4499 range, and
 * 1000 (the server sends it only when the session ended on purpose).
 */
export function isTerminalCloseCode(code) {
  return code === CloseCode.NORMAL || (code >= 4400 && code <= 4499);
}

/** The default options; `connect()` merges the caller's options over these. */
export const DEFAULTS = Object.freeze({
  token: null,
  channel_id: null,
  reconnect: Object.freeze({
    baseDelayMs: 1000,
    maxDelayMs: 30000,
    maxAttempts: Infinity,
    jitter: 0.5,
    restartSpreadMs: 3000,
  }),
  heartbeatMs: 25000,
  connectTimeoutMs: 10000,
  walkerTimeoutMs: 30000,
  queueLimit: 100,
  clientIdStorage: 'local',
  dialect: 'jac',
  debug: false,
});

const PUBLIC_ROOT_ID = 'n::000000000000000000000001';
const STORAGE_KEY = 'switchboard.client_uuid';
const WS_OPEN = 1; // WebSocket.OPEN, the same in browsers and `ws`

// ---------------------------------------------------------------------------------------------
// 2. Helpers
// ---------------------------------------------------------------------------------------------

/** An Error with a machine-readable `code` (the server's code, or one of the SDK's own). */
export class SwitchboardError extends Error {
  constructor(message, code, extra = {}) {
    super(message);
    this.name = 'SwitchboardError';
    this.code = code;
    Object.assign(this, extra);
  }
}

function uuidv4() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  const b = new Uint8Array(16);
  if (c && typeof c.getRandomValues === 'function') c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/**
 * The persistent client uuid: kept in localStorage (`local`), sessionStorage (`session`) or only in
 * this connection object (`memory`). Falls back to memory where storage is missing (Node) or
 * refused (private browsing, sandboxed iframes).
 */
function loadClientUuid(kind) {
  let store = null;
  try {
    if (kind === 'local') store = globalThis.localStorage ?? null;
    else if (kind === 'session') store = globalThis.sessionStorage ?? null;
  } catch {
    store = null;
  }
  if (store) {
    try {
      let value = store.getItem(STORAGE_KEY);
      if (!value || !UUID_RE.test(value)) {
        value = uuidv4();
        store.setItem(STORAGE_KEY, value);
      }
      return value;
    } catch {
      // fall through to memory
    }
  }
  return uuidv4();
}

/** Resolve `url` (absolute, or relative to the page) to a ws:// or wss:// URL object. */
function resolveUrl(url) {
  let base;
  try {
    base = globalThis.location?.href;
  } catch {
    base = undefined;
  }
  let u;
  try {
    u = base ? new URL(url, base) : new URL(url);
  } catch {
    throw new TypeError(
      `switchboard: invalid URL ${JSON.stringify(url)} (outside a browser give an absolute ws:// or wss:// URL)`,
    );
  }
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
    throw new TypeError(`switchboard: unsupported URL scheme ${u.protocol} (use ws:, wss:, http: or https:)`);
  }
  u.hash = '';
  return u;
}

function asIdList(ids, what) {
  const list = typeof ids === 'string' || typeof ids === 'number' ? [ids] : ids;
  if (!Array.isArray(list) || list.length === 0) {
    throw new TypeError(`switchboard: ${what} must be a non-empty array of ids`);
  }
  return list.map(String);
}

function textOf(data) {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new TextDecoder().decode(new Uint8Array(data));
  if (ArrayBuffer.isView(data)) {
    return new TextDecoder().decode(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  if (Array.isArray(data)) {
    // `ws` may hand over fragments as an array of Buffers
    return data.map(textOf).join('');
  }
  return String(data);
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------
// 3. Dialects
// ---------------------------------------------------------------------------------------------
//
// A dialect knows the shape of frames on one kind of endpoint. The connection object only asks it:
//   query(state)                 -> [name, value][] added to the URL on every (re)connect
//   ping() / isPong(frame)       -> the application-level heartbeat
//   classify(frame)              -> { kind: 'handshake', info, type?, data? }  (listeners get
//                                   `data` under `type`; default: the frame under 'connection')
//                                 | { kind: 'reply', id, ok, value | error }
//                                 | { kind: 'message', type, data }
//   walker(name, context, id, o) -> a request frame whose answer comes back with the same `id`
//   notify(target, ids, data)    -> a user / channel / client delivery frame
//   changeUser(token)            -> a re-authentication frame answered by a new handshake
//
// A dialect without a first frame sets `openIsHandshake` and `openInfo(conn)`; `resume(conn)` runs
// after each (re)connect, before the offline queue flushes. A dialect may also name its
// `clientIdStorage` default. `namespace` (seed 003: envelopes, `?uuid=`) lives in namespace.js;
// `channel` (seed 004: {channel, cmd, param}) in channel.js.

const jacDialect = Object.freeze({
  name: 'jac',

  query({ token, channelId }) {
    const q = [];
    if (token) q.push(['auth', token]);
    if (channelId) q.push(['channel_id', channelId]);
    return q;
  },

  ping() {
    return { type: 'ping' };
  },

  isPong(frame) {
    return isPlainObject(frame) && frame.type === 'pong';
  },

  classify(frame) {
    if (!isPlainObject(frame)) return { kind: 'message', type: undefined, data: frame };
    if (frame.type === 'connection' && isPlainObject(frame.data) && typeof frame.data.client_id === 'string') {
      const d = frame.data;
      return {
        kind: 'handshake',
        info: { client_id: d.client_id, root_id: d.root_id ?? null, channel_id: d.channel_id ?? null },
      };
    }
    if ('id' in frame && frame.id !== null && frame.id !== undefined) {
      // A walker reply: {"status":200,"reports":[...],"walker":NAME,"id":ID}
      if (typeof frame.status === 'number' && Array.isArray(frame.reports)) {
        if (frame.status >= 200 && frame.status < 300) {
          return { kind: 'reply', id: frame.id, ok: true, value: frame };
        }
        return {
          kind: 'reply',
          id: frame.id,
          ok: false,
          error: { message: `walker answered with status ${frame.status}`, code: `status_${frame.status}` },
        };
      }
      // A walker error: {"type":"walker","walker":NAME,"error":MSG,"code":CODE,"id":ID}
      if (frame.type === 'walker' && 'error' in frame) {
        return {
          kind: 'reply',
          id: frame.id,
          ok: false,
          error: { message: String(frame.error), code: frame.code ?? 'walker_error' },
        };
      }
    }
    return { kind: 'message', type: typeof frame.type === 'string' ? frame.type : undefined, data: frame };
  },

  walker(name, context, id, { node } = {}) {
    const frame = { type: 'walker', walker: name, context: context ?? {}, response: true, id };
    if (node !== undefined && node !== null) frame.node = node;
    return frame;
  },

  notify(target, ids, data) {
    switch (target) {
      case 'user':
        return { type: 'user', root_ids: ids, data };
      case 'channel':
        return { type: 'channel', channel_ids: ids, data };
      case 'client':
        return { type: 'client', client_ids: ids, data };
      default:
        throw new TypeError(`switchboard: unknown notify target ${target}`);
    }
  },

  changeUser(token) {
    return token ? { type: 'change_user', token } : { type: 'change_user' };
  },
});

// Looked up when a connection is made, not when this module loads: the dialect modules import this
// module too, and whichever loads first must not find the other half-initialised.
function dialectNamed(name) {
  return { jac: jacDialect, channel: channelDialect, namespace: namespaceDialect }[name];
}

// ---------------------------------------------------------------------------------------------
// 4. The connection
// ---------------------------------------------------------------------------------------------

function mergeOptions(options) {
  const o = { ...DEFAULTS, ...(options ?? {}) };
  o.reconnect = { ...DEFAULTS.reconnect, ...((options && options.reconnect) ?? {}) };
  if (options && options.channelId !== undefined && options.channel_id === undefined) {
    o.channel_id = options.channelId;
  }
  const r = o.reconnect;
  r.baseDelayMs = Math.max(0, Number(r.baseDelayMs) || 0);
  r.maxDelayMs = Math.max(r.baseDelayMs, Number(r.maxDelayMs) || 0);
  r.maxAttempts = r.maxAttempts === null || r.maxAttempts === undefined ? Infinity : Math.max(0, Number(r.maxAttempts));
  r.jitter = Math.min(1, Math.max(0, Number(r.jitter) || 0));
  r.restartSpreadMs = Math.max(0, Number(r.restartSpreadMs) || 0);
  o.heartbeatMs = Math.max(0, Number(o.heartbeatMs) || 0);
  o.connectTimeoutMs = Math.max(0, Number(o.connectTimeoutMs) || 0);
  o.walkerTimeoutMs = Math.max(0, Number(o.walkerTimeoutMs) || 0);
  o.queueLimit = Math.max(0, Math.floor(Number(o.queueLimit) || 0));
  return o;
}

/**
 * The delay before reconnect attempt `attempt` (1-based): exponential from baseDelayMs, capped at
 * maxDelayMs, then reduced by up to `jitter` (a fraction) at random so many clients spread out.
 */
export function backoffDelay(attempt, { baseDelayMs, maxDelayMs, jitter }, random = Math.random) {
  const exp = baseDelayMs * 2 ** Math.max(0, attempt - 1);
  const capped = Math.min(maxDelayMs, exp);
  return Math.round(capped * (1 - jitter * random()));
}

export class SwitchboardConnection {
  /** Use `connect(url, options)`. */
  constructor(url, options) {
    this._opts = mergeOptions(options);
    const dialect = dialectNamed(this._opts.dialect);
    if (!dialect) {
      throw new TypeError(`switchboard: unknown dialect ${JSON.stringify(this._opts.dialect)}`);
    }
    this._dialect = dialect;
    if (!(options && options.clientIdStorage) && dialect.clientIdStorage) {
      this._opts.clientIdStorage = dialect.clientIdStorage;
    }
    this._WebSocket = this._opts.WebSocket ?? globalThis.WebSocket;
    if (typeof this._WebSocket !== 'function') {
      throw new TypeError(
        'switchboard: no WebSocket implementation; in Node 20 pass one, e.g. connect(url, { WebSocket: (await import("ws")).WebSocket })',
      );
    }
    this._baseUrl = resolveUrl(url);
    this._token = this._opts.token || null;
    this._channelId = this._opts.channel_id || null;
    this.clientUuid = loadClientUuid(this._opts.clientIdStorage);

    this._status = Status.CONNECTING;
    this._ws = null;
    this._socketToken = null; // the token the current socket was opened with
    this._info = null;
    this._attempts = 0;
    this._stopped = false; // disconnect() was called, or a terminal close code arrived
    this._userDisconnected = false; // disconnect() was called: nothing is sent any more
    this._gaveUp = false; // maxAttempts exhausted (an `online` event may revive)
    this._timers = { reconnect: null, heartbeat: null, connect: null };
    this._awaitingPong = false;

    this._queue = []; // [{ text, onSent?, onDrop? }]
    this._pending = new Map(); // walker id -> { resolve, reject, timer, name, sent }
    this._nextId = 1;
    this._userWaiters = []; // changeUser() promises waiting for the next handshake

    this._messageListeners = new Set();
    this._statusListeners = new Set();
    this._typeListeners = new Map();

    this._onOnline = () => this._handleOnline();
    if (typeof globalThis.addEventListener === 'function') {
      globalThis.addEventListener('online', this._onOnline);
    }

    this._log('connect', this._baseUrl.href);
    this._open();
  }

  // ---- public API -----------------------------------------------------------------------------

  /** The current status: connecting, connected, reconnecting, disconnected or auth-required. */
  status() {
    return this._status;
  }

  /** True when frames go out at once (the handshake arrived and the socket is open). */
  isConnected() {
    return this._status === Status.CONNECTED && !!this._ws && this._ws.readyState === WS_OPEN;
  }

  /** `{client_id, root_id, channel_id}` of the current (or last) session, or null before the first. */
  info() {
    return this._info ? { ...this._info } : null;
  }

  /** The URL the next (re)connect will use, with `auth` and `channel_id` filled in. */
  url() {
    return this._buildUrl();
  }

  /** `cb(status, previous)` on every change. Returns an unsubscribe function. */
  onStatusChange(cb) {
    return this._subscribe(this._statusListeners, cb);
  }

  /** `cb(data, frame)` for every frame except `pong` and walker replies a `walker()` call consumed. */
  onMessage(cb) {
    return this._subscribe(this._messageListeners, cb);
  }

  /** `cb(data, frame)` for frames whose `type` field is `type` (e.g. `chat`, `connection`, `error`). */
  on(type, cb) {
    let set = this._typeListeners.get(type);
    if (!set) {
      set = new Set();
      this._typeListeners.set(type, set);
    }
    const unsubscribe = this._subscribe(set, cb);
    return () => {
      unsubscribe();
      if (set.size === 0 && this._typeListeners.get(type) === set) this._typeListeners.delete(type);
    };
  }

  /**
   * Send one frame (any JSON value). Goes out at once when connected ('sent'); otherwise it waits
   * in a queue of at most `queueLimit` frames, oldest dropped first, flushed in order after the next
   * handshake ('queued'). After disconnect() nothing is sent ('dropped').
   */
  send(data) {
    const text = JSON.stringify(data);
    if (typeof text !== 'string') throw new TypeError('switchboard: send() needs a JSON-serialisable value');
    return this._sendOrQueue(text);
  }

  /**
   * Run a walker and resolve with its reply `{status, reports, walker, id}`. Rejects with a
   * SwitchboardError whose `code` is the server's (`auth_required`, `unknown_walker`, ...) or the
   * SDK's own: `timeout`, `connection_lost` (the socket closed before the reply), `queue_full`
   * (dropped from the offline queue), `disconnected` (disconnect() was called).
   */
  walker(name, context = {}, { timeoutMs, node } = {}) {
    if (typeof name !== 'string' || name === '') {
      return Promise.reject(new TypeError('switchboard: walker name must be a non-empty string'));
    }
    const id = this._nextId++;
    let text;
    try {
      text = JSON.stringify(this._dialect.walker(name, context, id, { node }));
    } catch (err) {
      return Promise.reject(err);
    }
    const limit = timeoutMs ?? this._opts.walkerTimeoutMs;
    return new Promise((resolve, reject) => {
      const entry = { resolve, reject, timer: null, name, sent: false, item: null };
      this._pending.set(id, entry);
      if (limit > 0) {
        entry.timer = setTimeout(() => {
          this._settle(id, false, new SwitchboardError(`walker ${name} timed out after ${limit} ms`, 'timeout', { walker: name, id }));
        }, limit);
      }
      const item = {
        text,
        onSent: () => {
          entry.sent = true;
        },
        onDrop: (code, message) => {
          this._settle(id, false, new SwitchboardError(message, code, { walker: name, id }));
        },
      };
      entry.item = item;
      const outcome = this._sendOrQueue(text, item);
      if (outcome === 'dropped' && this._userDisconnected) {
        item.onDrop('disconnected', 'switchboard: the connection was closed by disconnect()');
      }
    });
  }

  /** Deliver `data`, verbatim, as a whole frame to every connection of these users (root ids). */
  notifyUsers(rootIds, data) {
    return this._sendOrQueue(JSON.stringify(this._dialect.notify('user', asIdList(rootIds, 'rootIds'), data)));
  }

  /** Deliver `data` to every connection subscribed to these channels (this one too, if it is). */
  notifyChannels(channelIds, data) {
    return this._sendOrQueue(JSON.stringify(this._dialect.notify('channel', asIdList(channelIds, 'channelIds'), data)));
  }

  /** Deliver `data` to the connections with these client ids. */
  notifyClients(clientIds, data) {
    return this._sendOrQueue(JSON.stringify(this._dialect.notify('client', asIdList(clientIds, 'clientIds'), data)));
  }

  /**
   * Re-authenticate with `token` (null or '' makes the connection public) and resolve with the new
   * `{client_id, root_id, channel_id}` once the server answers with a new `connection` frame. The
   * token is remembered, so every reconnect after this authenticates with it. Called while
   * `auth-required` or `disconnected`, it starts connecting again.
   */
  changeUser(token, { timeoutMs } = {}) {
    if (this._userDisconnected) {
      return Promise.reject(new SwitchboardError('switchboard: the connection was closed by disconnect()', 'disconnected'));
    }
    this._token = token || null;
    const limit = timeoutMs ?? this._opts.walkerTimeoutMs;
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject, timer: null };
      if (limit > 0) {
        waiter.timer = setTimeout(() => {
          this._userWaiters = this._userWaiters.filter((w) => w !== waiter);
          reject(new SwitchboardError(`changeUser timed out after ${limit} ms`, 'timeout'));
        }, limit);
      }
      this._userWaiters.push(waiter);
      if (this.isConnected()) {
        this._sendNow(JSON.stringify(this._dialect.changeUser(this._token)));
        this._socketToken = this._token;
      } else if (this._status === Status.DISCONNECTED || this._status === Status.AUTH_REQUIRED) {
        this._restart();
      }
      // connecting / reconnecting: the next handshake uses the new token (see _onHandshake)
    });
  }

  /** Close for good: no reconnect, queued frames dropped, pending calls rejected. */
  disconnect() {
    if (this._userDisconnected) return;
    this._log('disconnect()');
    this._userDisconnected = true;
    this._stopped = true;
    this._gaveUp = false;
    this._clearTimers();
    this._closeSocket(CloseCode.NORMAL, 'client disconnect');
    this._failInFlight('disconnected', 'switchboard: the connection was closed by disconnect()', true);
    this._dropQueue('disconnected', 'switchboard: the connection was closed by disconnect()');
    this._failUserWaiters('disconnected', 'switchboard: the connection was closed by disconnect()');
    if (typeof globalThis.removeEventListener === 'function') {
      globalThis.removeEventListener('online', this._onOnline);
    }
    this._setStatus(Status.DISCONNECTED);
  }

  // ---- socket lifecycle -----------------------------------------------------------------------

  _buildUrl() {
    const u = new URL(this._baseUrl.href);
    const q = this._dialect.query({ token: this._token, channelId: this._channelId, clientUuid: this.clientUuid });
    for (const [k, v] of q) u.searchParams.set(k, v);
    return u.href;
  }

  _open() {
    this._timers.reconnect = null;
    const href = this._buildUrl();
    this._socketToken = this._token;
    let ws;
    try {
      ws = new this._WebSocket(href);
    } catch (err) {
      this._log('WebSocket constructor threw', err);
      this._lost(1006, String(err && err.message ? err.message : err));
      return;
    }
    this._ws = ws;
    ws.onopen = () => {
      if (this._ws !== ws) return;
      if (this._dialect.openIsHandshake) {
        this._onHandshake(this._dialect.openInfo(this));
        return;
      }
      this._log('socket open, waiting for the handshake');
    };
    ws.onmessage = (ev) => {
      if (this._ws !== ws) return;
      this._onRaw(ev.data);
    };
    ws.onerror = (ev) => {
      if (this._ws !== ws) return;
      this._log('socket error', ev && (ev.message || ev.error || ev.type));
    };
    ws.onclose = (ev) => {
      if (this._ws !== ws) return;
      this._detach(ws);
      this._ws = null;
      this._onClose(ev ? ev.code : 1006, ev ? ev.reason : '');
    };
    if (this._opts.connectTimeoutMs > 0) {
      this._timers.connect = setTimeout(() => {
        this._timers.connect = null;
        this._log(`no handshake within ${this._opts.connectTimeoutMs} ms`);
        this._killSocket('connect timeout');
        this._lost(4001, 'connect timeout');
      }, this._opts.connectTimeoutMs);
    }
  }

  _detach(ws) {
    ws.onopen = null;
    ws.onmessage = null;
    ws.onerror = null;
    ws.onclose = null;
  }

  /** Close the current socket without waiting for its close event (which a dead link may never fire). */
  _killSocket(reason) {
    const ws = this._ws;
    if (!ws) return;
    this._ws = null;
    this._detach(ws);
    // `ws` reports errors on a socket closed before it opened; keep one handler to swallow them.
    ws.onerror = () => {};
    try {
      ws.close(4000, reason);
    } catch {
      try {
        ws.close();
      } catch {
        // already closed
      }
    }
  }

  _closeSocket(code, reason) {
    const ws = this._ws;
    if (!ws) return;
    this._ws = null;
    this._detach(ws);
    ws.onerror = () => {};
    try {
      ws.close(code, reason);
    } catch {
      // already closed
    }
  }

  _onClose(code, reason) {
    this._log('socket closed', code, reason);
    if (this._stopped) return;
    if (isTerminalCloseCode(code)) {
      this._stopSession(code === CloseCode.UNAUTHORIZED ? Status.AUTH_REQUIRED : Status.DISCONNECTED, code, reason);
      return;
    }
    this._lost(code, reason);
  }

  /** A terminal close: stop, keep the queue (changeUser() may restart), fail what was in flight. */
  _stopSession(status, code, reason) {
    this._stopped = true;
    this._clearTimers();
    const why = `switchboard: closed by the server with ${code}${reason ? ` (${reason})` : ''}`;
    this._failInFlight('connection_lost', why, false);
    this._failUserWaiters(status === Status.AUTH_REQUIRED ? 'auth_required' : 'disconnected', why);
    this._setStatus(status);
  }

  /** The link is gone but may come back: fail calls in flight, back off, try again. */
  _lost(code, reason) {
    this._clearTimers();
    this._failInFlight('connection_lost', `switchboard: connection lost (${code}${reason ? ` ${reason}` : ''}) before the reply`, false);
    if (this._stopped) return;
    this._scheduleReconnect(code);
  }

  _scheduleReconnect(code) {
    const r = this._opts.reconnect;
    if (this._attempts >= r.maxAttempts) {
      this._log(`gave up after ${this._attempts} reconnect attempts`);
      this._gaveUp = true;
      this._failUserWaiters('disconnected', 'switchboard: gave up reconnecting');
      this._setStatus(Status.DISCONNECTED);
      return;
    }
    this._attempts += 1;
    let delay = backoffDelay(this._attempts, r);
    if (code === CloseCode.GOING_AWAY && this._attempts === 1 && r.restartSpreadMs > 0) {
      // The server is restarting and closed every socket at once: spread the first attempts out
      // so that the restart does not turn into a thundering herd.
      delay += Math.round(Math.random() * r.restartSpreadMs);
    }
    this._log(`reconnect attempt ${this._attempts} in ${delay} ms`);
    this._setStatus(Status.RECONNECTING);
    this._timers.reconnect = setTimeout(() => this._open(), delay);
  }

  _restart() {
    this._log('restart');
    this._stopped = false;
    this._gaveUp = false;
    this._attempts = 0;
    this._clearTimers();
    this._closeSocket(CloseCode.NORMAL, 'restart');
    this._setStatus(Status.CONNECTING);
    this._open();
  }

  _handleOnline() {
    if (this._stopped) return;
    if (this._gaveUp) {
      this._log('online: trying again after giving up');
      this._restart();
      return;
    }
    if (this._status === Status.RECONNECTING && this._timers.reconnect) {
      this._log('online: reconnecting now');
      clearTimeout(this._timers.reconnect);
      this._timers.reconnect = null;
      this._open();
    }
  }

  _clearTimers() {
    for (const k of Object.keys(this._timers)) {
      if (this._timers[k] !== null) {
        clearTimeout(this._timers[k]);
        clearInterval(this._timers[k]);
        this._timers[k] = null;
      }
    }
    this._awaitingPong = false;
  }

  // ---- heartbeat --------------------------------------------------------------------------------

  _startHeartbeat() {
    if (this._timers.heartbeat !== null) clearInterval(this._timers.heartbeat);
    this._timers.heartbeat = null;
    this._awaitingPong = false;
    const every = this._opts.heartbeatMs;
    if (!(every > 0)) return;
    this._timers.heartbeat = setInterval(() => {
      if (!this._ws) return;
      if (this._awaitingPong) {
        // Nothing heard for a whole interval since the last ping: the link is dead even if the
        // socket never fired `close` (sleeping laptop, dropped NAT mapping, half-open TCP).
        this._log(`heartbeat: no answer within ${every} ms, reconnecting`);
        this._killSocket('heartbeat timeout');
        this._lost(CloseCode.HEARTBEAT_TIMEOUT, 'heartbeat timeout');
        return;
      }
      this._awaitingPong = true;
      this._sendNow(JSON.stringify(this._dialect.ping()));
    }, every);
  }

  // ---- receiving --------------------------------------------------------------------------------

  _onRaw(raw) {
    this._awaitingPong = false; // any frame proves the link is alive
    const text = textOf(raw);
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      this._log('non-JSON frame', text);
      this._deliver(text, text, undefined);
      return;
    }
    if (this._dialect.isPong(frame)) return;
    const c = this._dialect.classify(frame);
    if (c.kind === 'handshake') {
      this._onHandshake(c.info);
      this._deliver(c.data ?? frame, frame, c.type ?? 'connection');
      return;
    }
    if (c.kind === 'reply') {
      if (this._pending.has(c.id)) {
        if (c.ok) this._settle(c.id, true, c.value);
        else {
          const entry = this._pending.get(c.id);
          this._settle(
            c.id,
            false,
            new SwitchboardError(c.error.message, c.error.code, { walker: entry.name, id: c.id, frame }),
          );
        }
        return;
      }
      this._deliver(frame, frame, isPlainObject(frame) ? frame.type : undefined);
      return;
    }
    this._deliver(c.data, frame, c.type);
  }

  _onHandshake(info) {
    this._info = { ...info };
    if (info.channel_id) this._channelId = info.channel_id; // keep the channel across reconnects
    if (this._status !== Status.CONNECTED) {
      if (this._timers.connect !== null) {
        clearTimeout(this._timers.connect);
        this._timers.connect = null;
      }
      this._attempts = 0;
      this._gaveUp = false;
      this._startHeartbeat();
      if (this._dialect.resume) this._dialect.resume(this);
      if (this._socketToken !== this._token) {
        // changeUser() was called while this socket was opening: switch before anything else.
        this._sendNow(JSON.stringify(this._dialect.changeUser(this._token)));
        this._socketToken = this._token;
        this._flushQueue();
        this._setStatus(Status.CONNECTED);
        return; // the waiters resolve on the handshake that answers change_user
      }
      this._flushQueue();
      this._setStatus(Status.CONNECTED);
    }
    const waiters = this._userWaiters;
    this._userWaiters = [];
    for (const w of waiters) {
      if (w.timer !== null) clearTimeout(w.timer);
      w.resolve({ ...this._info });
    }
  }

  _deliver(data, frame, type) {
    for (const cb of [...this._messageListeners]) this._call(cb, data, frame);
    if (type !== undefined) {
      const set = this._typeListeners.get(type);
      if (set) for (const cb of [...set]) this._call(cb, data, frame);
    }
  }

  // ---- sending ----------------------------------------------------------------------------------

  _sendOrQueue(text, item = { text }) {
    if (this._userDisconnected) return 'dropped';
    item.text = text;
    if (this.isConnected() && this._queue.length === 0) {
      if (this._sendNow(text)) {
        if (item.onSent) item.onSent();
        return 'sent';
      }
    }
    if (this._opts.queueLimit === 0) {
      if (item.onDrop) item.onDrop('queue_full', 'switchboard: not connected and queueLimit is 0');
      return 'dropped';
    }
    this._queue.push(item);
    while (this._queue.length > this._opts.queueLimit) {
      const dropped = this._queue.shift();
      this._log('queue full, dropped the oldest frame');
      if (dropped.onDrop) dropped.onDrop('queue_full', 'switchboard: dropped from the offline queue (queueLimit reached)');
    }
    if (this.isConnected()) this._flushQueue();
    return 'queued';
  }

  _sendNow(text) {
    const ws = this._ws;
    if (!ws || ws.readyState !== WS_OPEN) return false;
    try {
      ws.send(text);
      return true;
    } catch (err) {
      this._log('send failed', err);
      return false;
    }
  }

  _flushQueue() {
    while (this._queue.length > 0) {
      const item = this._queue[0];
      if (!this._sendNow(item.text)) return;
      this._queue.shift();
      if (item.onSent) item.onSent();
    }
  }

  _dropQueue(code, message) {
    const q = this._queue;
    this._queue = [];
    for (const item of q) if (item.onDrop) item.onDrop(code, message);
  }

  _settle(id, ok, value) {
    const entry = this._pending.get(id);
    if (!entry) return;
    this._pending.delete(id);
    if (entry.timer !== null) clearTimeout(entry.timer);
    if (entry.item) {
      const i = this._queue.indexOf(entry.item);
      if (i >= 0) this._queue.splice(i, 1); // a timed-out call still queued is not sent later
    }
    if (ok) entry.resolve(value);
    else entry.reject(value);
  }

  /** Reject walker calls already on the wire (`all` also those still queued). */
  _failInFlight(code, message, all) {
    for (const [id, entry] of [...this._pending]) {
      if (all || entry.sent) this._settle(id, false, new SwitchboardError(message, code, { walker: entry.name, id }));
    }
  }

  _failUserWaiters(code, message) {
    const waiters = this._userWaiters;
    this._userWaiters = [];
    for (const w of waiters) {
      if (w.timer !== null) clearTimeout(w.timer);
      w.reject(new SwitchboardError(message, code));
    }
  }

  // ---- plumbing ---------------------------------------------------------------------------------

  _setStatus(status) {
    const previous = this._status;
    if (previous === status) return;
    this._status = status;
    this._log(`status ${previous} -> ${status}`);
    for (const cb of [...this._statusListeners]) this._call(cb, status, previous);
  }

  _subscribe(set, cb) {
    if (typeof cb !== 'function') throw new TypeError('switchboard: callback must be a function');
    // wrap so the same function may be registered twice and removed one registration at a time
    const entry = (...args) => cb(...args);
    set.add(entry);
    return () => {
      set.delete(entry);
    };
  }

  _call(cb, ...args) {
    try {
      cb(...args);
    } catch (err) {
      // A listener's bug must not break the connection.
      if (typeof console !== 'undefined') console.error('switchboard: a listener threw', err);
    }
  }

  _log(...args) {
    const d = this._opts.debug;
    if (!d) return;
    if (typeof d === 'function') d(...args);
    else if (typeof console !== 'undefined') console.debug('[switchboard]', ...args);
  }
}

// ---------------------------------------------------------------------------------------------
// 5. Entry point
// ---------------------------------------------------------------------------------------------

/**
 * Open a connection and keep it open: reconnection with backoff, heartbeat, offline queue.
 * The returned object is live at once; listeners added right after `connect()` see every event.
 */
export function connect(url, options = {}) {
  const conn = new SwitchboardConnection(url, options);
  // A channel-dialect connection also gets join / leave / members / sendTo / onPresence.
  return conn._dialect === channelDialect ? attachChannelApi(conn) : conn;
}

/**
 * Seed 003's `jPulse.ws` API over the namespace dialect: `jpulse.ws.connect(path, options)` returns
 * a handle with `send`, `onMessage`, `onStatusChange`, `getStatus`, `isConnected`, `disconnect`.
 */
export const jpulse = Object.freeze({ ws: createJpulseWs(connect) });

export { PUBLIC_ROOT_ID, Socket };

export default { connect, jpulse, Status, CloseCode, isTerminalCloseCode, backoffDelay, SwitchboardError, VERSION, Socket };
