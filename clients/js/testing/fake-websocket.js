// A scriptable stand-in for the WebSocket class, for unit tests. Lives outside test/ so that
// `node --test test/` does not run it as a test file.

export class FakeWebSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;

  /** Every socket constructed, oldest first. */
  static instances = [];

  static reset() {
    FakeWebSocket.instances = [];
  }

  static last() {
    return FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
  }

  constructor(url) {
    this.url = url;
    this.readyState = FakeWebSocket.CONNECTING;
    this.sent = []; // raw strings
    this.closedWith = null; // {code, reason} when the client called close()
    this.onopen = null;
    this.onmessage = null;
    this.onerror = null;
    this.onclose = null;
    FakeWebSocket.instances.push(this);
  }

  /** Parsed frames the client sent. */
  get frames() {
    return this.sent.map((s) => JSON.parse(s));
  }

  /** Frames the client sent, without heartbeat pings. */
  get appFrames() {
    return this.frames.filter((f) => !(f && f.type === 'ping'));
  }

  send(data) {
    if (this.readyState !== FakeWebSocket.OPEN) throw new Error('InvalidStateError: not open');
    this.sent.push(data);
  }

  close(code = 1000, reason = '') {
    this.closedWith = { code, reason };
    this.readyState = FakeWebSocket.CLOSED;
  }

  // ---- the server's side ----

  /** The socket opens. */
  open() {
    this.readyState = FakeWebSocket.OPEN;
    this.onopen?.({ type: 'open' });
  }

  /** The server sends a frame (object -> JSON text). */
  receive(frame) {
    const data = typeof frame === 'string' ? frame : JSON.stringify(frame);
    this.onmessage?.({ type: 'message', data });
  }

  /** Open and send the Jac `connection` handshake. */
  accept(info = {}) {
    this.open();
    this.receive({
      type: 'connection',
      data: {
        client_id: info.client_id ?? `1730887348:${'a'.repeat(32)}`,
        root_id: info.root_id ?? 'n::000000000000000000000001',
        channel_id: info.channel_id ?? `1730887348:${'b'.repeat(32)}`,
      },
    });
  }

  /** The server (or the network) closes the socket. */
  serverClose(code = 1006, reason = '') {
    this.readyState = FakeWebSocket.CLOSED;
    this.onerror?.({ type: 'error' });
    this.onclose?.({ type: 'close', code, reason, wasClean: code !== 1006 });
  }

  /** The connection attempt fails (connection refused): error then close 1006. */
  fail() {
    this.serverClose(1006, '');
  }
}
