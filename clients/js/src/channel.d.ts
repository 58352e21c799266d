// Types of the channel dialect (channel.js; seed 004, `/ws/<channel>`).

import type { ConnectOptions, SendResult, SwitchboardConnection } from './switchboard.js';

/** Seed 004's message: `{channel, cmd, param}`, plus `from` (a connection id) when a client sent it. */
export interface Message<P = unknown> {
  readonly channel?: string;
  readonly cmd: string;
  readonly param?: P;
  readonly from?: string;
}

/** One member of a channel, as the `members` reply lists it. */
export interface Member {
  /** The connection id (a UUID). */
  id: string;
  /** The account's user id, or the connection id of an anonymous connection. */
  userID: string;
  /** The account's username, or `""` for an anonymous connection. */
  username: string;
}

/** An `online-update`: a connection joined or left `channel` (or disconnected). */
export interface PresenceChange {
  channel: string;
  /** The connection that joined or left. */
  from: string;
  userID: string;
  connected: boolean;
}

export interface MembershipReply {
  channel: string;
  /** The channel's member count after the change. */
  members: number;
}

export interface RequestOptions {
  timeoutMs?: number;
}

/** A connection on `/ws/<channel>` (`connect(url, {dialect: 'channel'})`). */
export interface ChannelConnection extends SwitchboardConnection {
  /** Join `channel`; rejects with a SwitchboardError (`auth_required`, `forbidden`, `too_many_channels`, ...). */
  join(channel: string, options?: RequestOptions): Promise<MembershipReply>;
  /** Leave `channel`; rejects with `not_joined` if not a member. */
  leave(channel: string, options?: RequestOptions): Promise<MembershipReply>;
  /** The members of `channel`, of every dialect. */
  members(channel: string, options?: RequestOptions): Promise<Member[]>;
  /** Send `{channel, cmd, param}`, queued while offline. */
  sendTo(channel: string, cmd: string, param?: unknown): SendResult;
  /** `cb(change, frame)` on every `online-update`. Returns an unsubscribe function. */
  onPresence(cb: (change: PresenceChange, frame: Message) => void): () => void;
  /** The channels this connection is in, as the replies so far tell. */
  channels(): string[];
}

/** Seed 004's client. */
export declare class Socket {
  constructor(
    debug: boolean,
    onOpen: () => void,
    onRecv: (message: Message) => void,
    onErr: (service: string, error: string) => void,
    url: string,
    options?: ConnectOptions,
  );
  readonly conn: ChannelConnection;
  readonly debug: boolean;
  /** Send at once when connected, else queue (at most 100, the oldest dropped). */
  send(message: Message): SendResult;
  connected(): boolean;
  close(): void;
}

export declare const ONLINE_UPDATE: 'online-update';
export declare function channelOfUrl(href: string): string | null;
