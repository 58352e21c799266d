//! The closed sets of label values some metrics carry (why a message was dropped, why a handshake
//! failed, how a walker call ended). Each set is an enum so the hot path picks a counter built at
//! start by position, and a client can never make up a new label value.

/// An enum of label values: `ALL` lists them in declaration order (a variant's position is its
/// index into an array of pre-built metrics) and `label` gives each one's Prometheus value.
macro_rules! label_values {
    ($(#[$meta:meta])* $name:ident { $($(#[doc = $doc:literal])* $variant:ident => $label:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[doc = $doc])* $variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The label value in `/metrics`.
            pub fn label(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)*
                }
            }
        }
    };
}

label_values! {
    /// Why a message did not reach a client: the `reason` of `switchboard_dropped_total`.
    DropReason {
        /// Queued for a slow consumer whose queue overflowed; dropped with its connection (4008).
        SlowConsumer => "slow_consumer",
        /// Addressed to a connection that had already begun closing.
        RecipientClosed => "recipient_closed",
        /// A client message refused by the sender's rate limit.
        RateLimited => "rate_limited",
    }
}

label_values! {
    /// Why a WebSocket handshake was refused: the `reason` of
    /// `switchboard_handshake_failures_total`.
    HandshakeFailure {
        /// A browser page from an origin not in `allowed_origins` (HTTP 403).
        OriginRefused => "origin_refused",
        /// The total, per-address or per-user connection limit (close 1013).
        ConnectionLimit => "connection_limit",
        /// The endpoint needs a login and the token presented was refused (close 4001/4003).
        BadToken => "bad_token",
        /// The endpoint needs a login and no token was presented.
        LoginRequired => "login_required",
        /// The user lacks a role the endpoint requires.
        Forbidden => "forbidden",
        /// No namespace is registered at the requested path (HTTP 404).
        UnknownNamespace => "unknown_namespace",
        /// Bad connect parameters: a malformed query string or channel name (HTTP 400).
        InvalidRequest => "invalid_request",
        /// Not a valid WebSocket upgrade: wrong method, missing headers or version.
        NotWebSocket => "not_websocket",
        /// The server is shutting down (HTTP 503).
        ShuttingDown => "shutting_down",
        /// The backend that admits connections (`on_connect = "upstream"`) refused (close 4403).
        UpstreamRefused => "upstream_refused",
        /// The backend that admits connections failed, timed out or was unavailable (close 1011
        /// or 1013).
        UpstreamFailed => "upstream_failed",
    }
}

label_values! {
    /// How a call of a registered walker ended: the `outcome` of the walker metrics.
    WalkerOutcome {
        /// The body ran and returned reports.
        Ok => "ok",
        /// The body ran and failed (its error, an invalid context, an upstream failure, a panic).
        Error => "error",
        /// The call never ran: method not exposed, login or role missing, too many in flight on
        /// the connection, or the server shutting down.
        Refused => "refused",
    }
}

impl HandshakeFailure {
    /// A refusal because the endpoint needs a login: `BadToken` when a token was presented and
    /// refused, `LoginRequired` when none was.
    pub fn login_needed(token_refused: bool) -> Self {
        if token_refused {
            HandshakeFailure::BadToken
        } else {
            HandshakeFailure::LoginRequired
        }
    }
}
