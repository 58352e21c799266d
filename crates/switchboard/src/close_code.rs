//! Close codes as a contract: the only codes the server closes a WebSocket with.
//!
//! The rule an SDK follows is by range: 4400-4499 means "do not reconnect", everything else means
//! "reconnect with backoff". `docs/close-codes.md` is the human-readable copy of this table and the
//! JavaScript SDK obeys the same ranges.

/// A close code with the short reason sent beside it (under 123 bytes, as the protocol requires).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseCode {
    pub code: u16,
    pub reason: &'static str,
}

impl CloseCode {
    const fn new(code: u16, reason: &'static str) -> Self {
        Self { code, reason }
    }

    /// A code a backend chose through `POST /api/disconnect` (4000-4999; the range rule below
    /// still decides whether clients reconnect). The backend's reason is sent beside it.
    pub const fn application(code: u16) -> Self {
        Self::new(code, "closed by the application")
    }

    /// Whether a client should reconnect after being closed with this code.
    pub fn should_reconnect(self) -> bool {
        !(self.code == 1000 || (4400..=4499).contains(&self.code))
    }
}

/// The session ended on purpose.
pub const NORMAL: CloseCode = CloseCode::new(1000, "normal closure");
/// The server is shutting down; reconnect (with jitter) to this or another node.
pub const GOING_AWAY: CloseCode = CloseCode::new(1001, "server shutting down, reconnect");
/// The peer broke the WebSocket framing rules (RFC 6455): masking, reserved bits, fragmentation,
/// control frames, close codes. The WebSocket layer sends it with a reason naming the rule.
pub const PROTOCOL_ERROR: CloseCode = CloseCode::new(1002, "protocol error");
/// A text message (or close reason) that is not UTF-8, or compressed data that does not inflate.
pub const INVALID_PAYLOAD: CloseCode = CloseCode::new(1007, "invalid payload data");
/// Sustained abuse of the message rate limit.
pub const POLICY_VIOLATION: CloseCode =
    CloseCode::new(1008, "policy violation: message rate over the limit");
/// A frame or message over the size limit.
pub const MESSAGE_TOO_BIG: CloseCode = CloseCode::new(1009, "message too big");
/// Unexpected server failure; the cause is logged, never sent.
pub const INTERNAL_ERROR: CloseCode = CloseCode::new(1011, "internal error");
/// Over the server's total connection limit; try again later.
pub const TRY_AGAIN_LATER: CloseCode = CloseCode::new(
    1013,
    "connection limit reached: server full, try again later",
);
/// Over the per-address connection limit.
pub const TOO_MANY_FROM_ADDRESS: CloseCode = CloseCode::new(
    1013,
    "connection limit reached: too many connections from this address",
);
/// Over the per-user connection limit.
pub const TOO_MANY_FOR_USER: CloseCode = CloseCode::new(
    1013,
    "connection limit reached: too many connections for this user",
);
/// Nothing heard from the peer for the ping interval plus the timeout.
pub const HEARTBEAT_TIMEOUT: CloseCode = CloseCode::new(4001, "heartbeat timeout");
/// The outbound queue was full: the client did not read fast enough.
pub const SLOW_CONSUMER: CloseCode = CloseCode::new(4008, "slow consumer: outbound queue full");
/// The application closed this connection and asked it to stay closed.
pub const CLOSED_BY_SERVER: CloseCode = CloseCode::new(4400, "closed by server, do not reconnect");
/// A valid token is required.
pub const UNAUTHORIZED: CloseCode = CloseCode::new(4401, "unauthorized");
/// Authenticated but lacking a required role.
pub const FORBIDDEN: CloseCode = CloseCode::new(4403, "forbidden");
/// Unknown namespace or endpoint.
pub const NOT_FOUND: CloseCode = CloseCode::new(4404, "not found");
/// A newer connection with the same client id took over.
pub const REPLACED: CloseCode = CloseCode::new(4409, "replaced by a newer connection");

/// Every code, for documentation and tests.
pub const ALL: &[CloseCode] = &[
    NORMAL,
    GOING_AWAY,
    PROTOCOL_ERROR,
    INVALID_PAYLOAD,
    POLICY_VIOLATION,
    MESSAGE_TOO_BIG,
    INTERNAL_ERROR,
    TRY_AGAIN_LATER,
    TOO_MANY_FROM_ADDRESS,
    TOO_MANY_FOR_USER,
    HEARTBEAT_TIMEOUT,
    SLOW_CONSUMER,
    CLOSED_BY_SERVER,
    UNAUTHORIZED,
    FORBIDDEN,
    NOT_FOUND,
    REPLACED,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_fit_in_a_close_frame() {
        for code in ALL {
            assert!(code.reason.len() < 123, "{code:?}");
        }
    }

    #[test]
    fn only_the_4400_range_and_normal_closure_are_terminal() {
        let terminal: Vec<u16> = ALL
            .iter()
            .filter(|c| !c.should_reconnect())
            .map(|c| c.code)
            .collect();
        assert_eq!(terminal, vec![1000, 4400, 4401, 4403, 4404, 4409]);
    }
}
