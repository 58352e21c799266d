// Type declarations for @switchboard/client (hand-written; the SDK itself is src/switchboard.js).
import type { ChannelConnection, Socket as ChannelSocket } from './channel.js';


export declare const VERSION: string;

/** Connection statuses. `disconnected` and `auth-required` are terminal: no reconnect follows. */
export type ConnectionStatus = 'connecting' | 'connected' | 'reconnecting' | 'disconnected' | 'auth-required';

export declare const Status: Readonly<{
  CONNECTING: 'connecting';
  CONNECTED: 'connected';
  RECONNECTING: 'reconnecting';
  DISCONNECTED: 'disconnected';
  AUTH_REQUIRED: 'auth-required';
}>;

/** The close codes of docs/close-codes.md. 4400-4499 (and 1000 from the server) stop reconnection. */
export declare const CloseCode: Readonly<{
  NORMAL: 1000;
  GOING_AWAY: 1001;
  PROTOCOL_ERROR: 1002;
  INVALID_PAYLOAD: 1007;
  POLICY_VIOLATION: 1008;
  MESSAGE_TOO_BIG: 1009;
  INTERNAL_ERROR: 1011;
  TRY_AGAIN_LATER: 1013;
  HEARTBEAT_TIMEOUT: 4001;
  SLOW_CONSUMER: 4008;
  CLOSED_BY_SERVER: 4400;
  UNAUTHORIZED: 4401;
  FORBIDDEN: 4403;
  NOT_FOUND: 4404;
  REPLACED: 4409;
}>;

/** True for the codes after which the SDK does not reconnect: 1000 and 4400-4499. */
export declare function isTerminalCloseCode(code: number): boolean;

/** The public user's root id on the Jac Cloud dialect. */
export declare const PUBLIC_ROOT_ID: 'n::000000000000000000000001';

export interface ReconnectOptions {
  /** Delay before the first reconnect attempt, doubled on each further attempt. Default 1000. */
  baseDelayMs?: number;
  /** Upper bound of the delay. Default 30000. */
  maxDelayMs?: number;
  /** Attempts after which the status becomes `disconnected`. Default Infinity. */
  maxAttempts?: number;
  /** Fraction (0..1) of each delay taken off at random, so clients spread out. Default 0.5. */
  jitter?: number;
  /** After close code 1001 (server restarting), the first attempt waits up to this much more, at random. Default 3000. */
  restartSpreadMs?: number;
}

/** A WebSocket constructor: the browser's, or e.g. `WebSocket` from the `ws` package in Node. */
export interface WebSocketConstructor {
  new (url: string, ...rest: any[]): WebSocketLike;
}

/** The part of the WebSocket interface the SDK uses. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  /** The SDK sets these four; it reads `ev.data` of a message and `ev.code` / `ev.reason` of a close. */
  onopen: ((ev: any) => any) | null;
  onmessage: ((ev: any) => any) | null;
  onerror: ((ev: any) => any) | null;
  onclose: ((ev: any) => any) | null;
}

export type Dialect = 'jac' | 'namespace' | 'channel';

export interface ConnectOptions {
  /** Token sent as the `auth` query parameter (`<jwt>` or `Bearer <jwt>`). */
  token?: string | null;
  /** The connection's channel, sent as the `channel_id` query parameter on every (re)connect. */
  channel_id?: string | null;
  /** Alias of `channel_id`. */
  channelId?: string | null;
  reconnect?: ReconnectOptions;
  /** Interval of the application-level `{"type":"ping"}`; no frame heard for a whole interval after a ping = dead link. 0 disables. Default 25000. */
  heartbeatMs?: number;
  /** Time allowed from opening the socket to the server's handshake frame. 0 disables. Default 10000. */
  connectTimeoutMs?: number;
  /** Default timeout of `walker()` and `changeUser()`. 0 disables. Default 30000. */
  walkerTimeoutMs?: number;
  /** Frames kept while not connected; the oldest is dropped beyond it. Default 100. */
  queueLimit?: number;
  /** Where the persistent client uuid lives. Default `local` (`session` for the namespace dialect; falls back to memory without storage). */
  clientIdStorage?: 'local' | 'session' | 'memory';
  /** WebSocket implementation; required in Node 20 (e.g. `import { WebSocket } from 'ws'`). */
  WebSocket?: WebSocketConstructor;
  /** Log to console.debug (true) or to this function. */
  debug?: boolean | ((...args: unknown[]) => void);
  /** Wire dialect: `jac` (default, `/websocket`), `channel` (`/ws/<channel>`, see channel.d.ts) or `namespace` (`/api/1/ws/<name>`, see namespace.d.ts). */
  dialect?: Dialect;
}

/** What the server's `connection` frame says about this connection. */
export interface ConnectionInfo {
  client_id: string;
  root_id: string | null;
  channel_id: string | null;
}

/** A walker reply: `{"status":200,"reports":[...],"walker":NAME,"id":ID}`. */
export interface WalkerReply<R = unknown> {
  status: number;
  reports: R[];
  walker?: string;
  id?: string | number;
  [key: string]: unknown;
}

export interface WalkerOptions {
  /** Reject with code `timeout` after this long. Default: the connection's walkerTimeoutMs. */
  timeoutMs?: number;
  /** Node to run the walker on (the Jac `node` field). */
  node?: string;
}

/**
 * Errors from `walker()` and `changeUser()`. `code` is the server's machine code (`auth_required`,
 * `unknown_walker`, `invalid_context`, `walker_failed`, ...) or the SDK's own: `timeout`,
 * `connection_lost`, `queue_full`, `disconnected`.
 */
export declare class SwitchboardError extends Error {
  constructor(message: string, code: string, extra?: Record<string, unknown>);
  code: string;
  walker?: string;
  id?: string | number;
  /** The server's error frame, when there was one. */
  frame?: unknown;
}

/** A frame as the server sent it (the Jac dialect delivers notification payloads verbatim). */
export type Frame = any;

export type SendResult = 'sent' | 'queued' | 'dropped';

export declare class SwitchboardConnection {
  private constructor();
  /** The persistent client uuid (kept per `clientIdStorage`). */
  readonly clientUuid: string;
  status(): ConnectionStatus;
  isConnected(): boolean;
  /** `{client_id, root_id, channel_id}` of the current (or last) session; null before the first. */
  info(): ConnectionInfo | null;
  /** The URL the next (re)connect will use. */
  url(): string;
  onStatusChange(cb: (status: ConnectionStatus, previous: ConnectionStatus) => void): () => void;
  /** Every frame except `pong` and the walker replies consumed by `walker()`. For `jac`, `data === frame`. */
  onMessage(cb: (data: Frame, frame: Frame) => void): () => void;
  /** Frames whose `type` field equals `type` (`chat`, `connection`, `error`, ...). */
  on(type: string, cb: (data: Frame, frame: Frame) => void): () => void;
  /** Send a frame now, or queue it while not connected. `dropped` only after disconnect() (or queueLimit 0). */
  send(data: unknown): SendResult;
  walker<R = unknown>(name: string, context?: Record<string, unknown>, options?: WalkerOptions): Promise<WalkerReply<R>>;
  /** The `user` event: `data` becomes the whole frame at every connection of these users. */
  notifyUsers(rootIds: string | string[], data: unknown): SendResult;
  /** The `channel` event: `data` becomes the whole frame at every connection in these channels. */
  notifyChannels(channelIds: string | string[], data: unknown): SendResult;
  /** The `client` event: `data` becomes the whole frame at these connections. */
  notifyClients(clientIds: string | string[], data: unknown): SendResult;
  /** Re-authenticate (null: become public); the token is reused on every reconnect. */
  changeUser(token: string | null, options?: { timeoutMs?: number }): Promise<ConnectionInfo>;
  /** Close for good: no reconnect; queued frames dropped, pending calls rejected with `disconnected`. */
  disconnect(): void;
}

/** The reconnect delay for attempt `attempt` (1-based). */
export declare function backoffDelay(
  attempt: number,
  options: { baseDelayMs: number; maxDelayMs: number; jitter: number },
  random?: () => number,
): number;

export declare const DEFAULTS: Readonly<Required<Omit<ConnectOptions, 'WebSocket' | 'channelId' | 'reconnect' | 'token' | 'channel_id'>> & {
  token: null;
  channel_id: null;
  reconnect: Readonly<Required<ReconnectOptions>>;
}>;

/** Open a connection and keep it open. */
export declare function connect(url: string | URL, options: ConnectOptions & { dialect: 'channel' }): ChannelConnection;
export declare function connect(url: string | URL, options?: ConnectOptions): SwitchboardConnection;

export type { ChannelConnection, Member, Message, PresenceChange } from './channel.js';
export { Socket } from './channel.js';
export type { JPulseConnection, JPulseOptions, JPulseWs, NamespaceEnvelope } from './namespace.js';
import type { JPulseWs } from './namespace.js';

/** Seed 003's `jPulse.ws` over the namespace dialect. */
export declare const jpulse: { readonly ws: JPulseWs };

declare const _default: {
  connect: typeof connect;
  jpulse: { readonly ws: JPulseWs };
  Status: typeof Status;
  CloseCode: typeof CloseCode;
  isTerminalCloseCode: typeof isTerminalCloseCode;
  backoffDelay: typeof backoffDelay;
  SwitchboardError: typeof SwitchboardError;
  VERSION: string;
  Socket: typeof ChannelSocket;
};
export default _default;
