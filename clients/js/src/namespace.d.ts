// Type declarations for the namespace dialect of @switchboard/client (src/namespace.js).

import type { ConnectOptions, ConnectionStatus, SwitchboardConnection } from './switchboard.js';

/** A frame of the namespace dialect (docs/protocol-namespace.md). */
export type NamespaceEnvelope =
  | { success: true; data: Record<string, unknown> & { username: string }; requestId?: unknown }
  | { success: false; error: string; code: number; username: ''; requestId?: unknown };

/** Seed 003's connect options, plus any of the SDK's own. */
export interface JPulseOptions extends Omit<ConnectOptions, 'dialect'> {
  /** First reconnect delay in ms, doubled per attempt. Default 5000. */
  reconnectBaseInterval?: number;
  /** Largest reconnect delay in ms. Default 30000. */
  reconnectMaxInterval?: number;
  /** Attempts before the status becomes `disconnected`. Default 10. */
  maxReconnectAttempts?: number;
  /** Application-level ping interval in ms. Default 30000. */
  pingInterval?: number;
}

/** Seed 003's connection handle. */
export declare class JPulseConnection {
  private constructor();
  /** The SDK connection underneath. */
  readonly connection: SwitchboardConnection;
  /** True if sent now; false if not connected (nothing is queued). */
  send(data: unknown): boolean;
  /** `data` is the envelope's `data`, or null for an error envelope (read `message.error`, `message.code`). */
  onMessage(cb: (data: Record<string, unknown> | null, message: NamespaceEnvelope) => void): this;
  onStatusChange(cb: (status: ConnectionStatus, oldStatus: ConnectionStatus) => void): this;
  getStatus(): ConnectionStatus;
  isConnected(): boolean;
  /** Close and stop reconnecting. */
  disconnect(): void;
}

/** `jPulse.ws`. */
export interface JPulseWs {
  connect(path: string, options?: JPulseOptions): JPulseConnection;
  /** The handles not yet disconnected. */
  getConnections(): JPulseConnection[];
}
