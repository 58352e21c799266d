// The channel dialect of the SDK (seed 004, `/ws/<channel>`; docs/protocol-channel.md):
//
//   import { connect } from '@switchboard/client';
//   const room = connect('ws://localhost:8000/ws/room1', { dialect: 'channel', token });
//   room.onPresence(({ channel, userID, connected }) => ...);
//   await room.join('room2');            // -> { channel, members }
//   room.sendTo('room2', 'chat', { text: 'hi' });
//   const people = await room.members('room2');
//
// and seed 004's own client, unchanged for an app written against it:
//
//   const socket = new Socket(debug, onOpen, onRecv, onErr, '/ws/notifications');
//   socket.send({ channel: 'notifications', cmd: 'read', param: { id: 7 } });
//
// Layout: 1. the dialect (frame shapes, plugged into SwitchboardConnection by switchboard.js);
// 2. the channel methods every channel-dialect connection gets; 3. the `Socket` facade.

import { connect, SwitchboardError, Status } from './switchboard.js';

// ---------------------------------------------------------------------------------------------
// 1. The dialect
// ---------------------------------------------------------------------------------------------

/** The `cmd` of presence frames. */
export const ONLINE_UPDATE = 'online-update';

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The channel named in the path of a `/ws/<channel>` URL, or null. */
export function channelOfUrl(href) {
  const match = /\/ws\/([^/?#]+)$/.exec(new URL(href).pathname);
  return match ? decodeURIComponent(match[1]) : null;
}

/**
 * How frames look on `/ws/<channel>`. The server sends no first frame, so the socket opening is
 * the handshake (`openIsHandshake`); there are no walker calls and no in-band user switch.
 */
export const channelDialect = Object.freeze({
  name: 'channel',
  openIsHandshake: true,

  // The path carries the channel and the URL's own query carries the metadata; only the token
  // is added.
  query({ token }) {
    return token ? [['auth', token]] : [];
  },

  /** The connection's info once open: the channel it joined on connect. */
  openInfo(conn) {
    return { client_id: null, root_id: null, channel_id: channelOfUrl(conn.url()) };
  },

  ping() {
    return { cmd: 'ping' };
  },

  isPong(frame) {
    return isPlainObject(frame) && frame.cmd === 'pong';
  },

  classify(frame) {
    return { kind: 'message', type: isPlainObject(frame) && typeof frame.cmd === 'string' ? frame.cmd : undefined, data: frame };
  },

  walker() {
    throw new TypeError('switchboard: the channel dialect has no walker calls; send a message to a channel handler');
  },

  notify() {
    throw new TypeError('switchboard: the channel dialect addresses channels with sendTo(channel, cmd, param)');
  },

  changeUser() {
    throw new TypeError('switchboard: the channel dialect cannot switch users in place; connect again with the new token');
  },

  /** After a reconnect, before the offline queue flushes: join again what was joined. */
  resume(conn) {
    const state = conn._channels;
    if (!state) return;
    for (const channel of state.joined) {
      if (channel !== channelOfUrl(conn.url())) conn._sendNow(JSON.stringify({ cmd: 'join', channel }));
    }
  },
});

// ---------------------------------------------------------------------------------------------
// 2. Channel methods
// ---------------------------------------------------------------------------------------------

/**
 * Give a channel-dialect connection `join`, `leave`, `members`, `sendTo` and `onPresence`. The
 * replies to `join`, `leave` and `members` carry no request id, so each is matched to the oldest
 * request of the same kind for the same channel; an error frame naming that channel fails it.
 */
export function attachChannelApi(conn) {
  const state = {
    joined: new Set(),
    waiting: new Map(), // "<reply cmd>:<channel>" -> [{ resolve, reject, timer }]
    presence: new Set(),
  };
  conn._channels = state;
  const home = channelOfUrl(conn.url());
  if (home) state.joined.add(home);

  const settle = (key, ok, value) => {
    const queue = state.waiting.get(key);
    if (!queue || queue.length === 0) return false;
    const w = queue.shift();
    if (queue.length === 0) state.waiting.delete(key);
    if (w.timer !== null) clearTimeout(w.timer);
    if (ok) w.resolve(value);
    else w.reject(value);
    return true;
  };

  const request = (reply, channel, frame, { timeoutMs } = {}) => {
    if (typeof channel !== 'string' || channel === '') {
      return Promise.reject(new TypeError('switchboard: a channel name must be a non-empty string'));
    }
    const key = `${reply}:${channel}`;
    const limit = timeoutMs ?? conn._opts.walkerTimeoutMs;
    return new Promise((resolve, reject) => {
      const w = { resolve, reject, timer: null };
      if (limit > 0) {
        w.timer = setTimeout(() => {
          const queue = state.waiting.get(key) ?? [];
          const i = queue.indexOf(w);
          if (i >= 0) queue.splice(i, 1);
          reject(new SwitchboardError(`${frame.cmd} ${channel} timed out after ${limit} ms`, 'timeout'));
        }, limit);
      }
      if (!state.waiting.has(key)) state.waiting.set(key, []);
      state.waiting.get(key).push(w);
      const outcome = conn.send(frame);
      if (outcome === 'dropped') settle(key, false, new SwitchboardError('switchboard: not sent', 'disconnected'));
    });
  };

  conn.onMessage((frame) => {
    if (!isPlainObject(frame)) return;
    const { channel, cmd, param } = frame;
    switch (cmd) {
      case 'joined':
        state.joined.add(channel);
        settle(`joined:${channel}`, true, { channel, members: param?.members });
        return;
      case 'left':
        state.joined.delete(channel);
        settle(`left:${channel}`, true, { channel, members: param?.members });
        return;
      case 'members':
        settle(`members:${channel}`, true, Array.isArray(param?.members) ? param.members : []);
        return;
      case 'error':
        if (typeof channel === 'string') {
          const error = new SwitchboardError(String(param?.message ?? 'error'), param?.code ?? 'error', { channel, frame });
          for (const reply of ['joined', 'left', 'members']) if (settle(`${reply}:${channel}`, false, error)) return;
        }
        return;
      case ONLINE_UPDATE:
        for (const cb of [...state.presence]) {
          conn._call(cb, { channel, from: frame.from, userID: param?.userID, connected: param?.connected === true }, frame);
        }
        return;
      case 'close-connection':
        // Seed 004: the server asks the client to go away for good. Only the server's own frame
        // counts (a relayed one would carry `from`; the server refuses to relay it anyway).
        if (frame.from === undefined) conn.disconnect();
        return;
      default:
    }
  });

  /** Join `channel`; resolves with `{channel, members}` or rejects with the server's error code. */
  conn.join = (channel, options) => request('joined', channel, { cmd: 'join', channel }, options);
  /** Leave `channel`; resolves with `{channel, members}`. */
  conn.leave = (channel, options) => request('left', channel, { cmd: 'leave', channel }, options);
  /** The members of `channel`: `[{id, userID, username}]`. */
  conn.members = (channel, options) => request('members', channel, { cmd: 'members', channel }, options);
  /** Send `{channel, cmd, param}` (queued while offline, like send()). */
  conn.sendTo = (channel, cmd, param) => conn.send({ channel, cmd, param });
  /** `cb({channel, from, userID, connected}, frame)` on every `online-update`. */
  conn.onPresence = (cb) => conn._subscribe(state.presence, cb);
  /** The channels this connection is in, as far as the replies so far tell. */
  conn.channels = () => [...state.joined];
  return conn;
}

// ---------------------------------------------------------------------------------------------
// 3. Seed 004's Socket
// ---------------------------------------------------------------------------------------------

/**
 * Seed 004's client: `new Socket(debug, onOpen, onRecv, onErr, url)`. Reconnects with backoff,
 * queues at most 100 messages while disconnected (the oldest dropped first) and sends them in
 * order once connected again; a `close-connection` command from the server stops it for good.
 * `onErr(service, message)` hears error frames and lost connections. `options` (not in the seed)
 * passes SDK options such as `token` or, in Node 20, `WebSocket`.
 */
export class Socket {
  constructor(debug, onOpen, onRecv, onErr, url, options = {}) {
    this.debug = !!debug;
    this._onErr = typeof onErr === 'function' ? onErr : () => {};
    this.conn = connect(url, { queueLimit: 100, ...options, debug: this.debug, dialect: 'channel' });
    this.conn.onStatusChange((status, previous) => {
      if (status === Status.CONNECTED && typeof onOpen === 'function') onOpen();
      else if (status === Status.RECONNECTING && previous === Status.CONNECTED) this._onErr('socket', 'connection lost; reconnecting');
    });
    this.conn.onMessage((frame) => {
      if (!isPlainObject(frame)) return;
      if (frame.cmd === 'error') {
        this._onErr('socket', String(frame.param?.message ?? 'error'));
        return;
      }
      if (typeof onRecv === 'function') onRecv(frame);
    });
  }

  /** Send `{channel, cmd, param}`: at once when connected, else queued (at most 100). */
  send(message) {
    return this.conn.send(message);
  }

  /** Whether messages go out at once. */
  connected() {
    return this.conn.isConnected();
  }

  /** Close for good. */
  close() {
    this.conn.disconnect();
  }
}
