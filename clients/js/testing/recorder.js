// Records what a connection sees, and waits for it, in integration tests.
import { waitUntil } from './server.js';

export function record(sb) {
  const messages = [];
  const statuses = [sb.status()];
  sb.onMessage((data) => messages.push(data));
  sb.onStatusChange((s) => statuses.push(s));
  let cursor = 0;
  return {
    messages,
    statuses,
    /** Messages whose `type` is `type`. */
    ofType(type) {
      return messages.filter((m) => m && m.type === type);
    },
    /** Wait for the status `status`. */
    async status(status, timeoutMs = 15000) {
      await waitUntil(() => sb.status() === status, `status ${status} (now ${sb.status()})`, timeoutMs);
    },
    /** Wait for a message received after the previous `next()` that matches `pred`; returns it. */
    async next(pred, what, timeoutMs = 10000) {
      return waitUntil(
        () => {
          for (let i = cursor; i < messages.length; i++) {
            if (pred(messages[i])) {
              cursor = i + 1;
              return messages[i];
            }
          }
          return null;
        },
        `${what}; got ${JSON.stringify(messages.slice(cursor)).slice(0, 500)}`,
        timeoutMs,
      );
    },
    /** Forget what was received so far for `next()`. */
    skip() {
      cursor = messages.length;
    },
  };
}

export const isChat = (message) => (m) => m && m.type === 'chat' && m.data && m.data.message === message;
