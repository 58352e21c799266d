//! Every machine `code` a client can receive in an error, as a contract beside
//! [`crate::close_code`]: WebSocket error frames (`{"type":"error"|"walker","code":...}`) and
//! HTTP error bodies (`{"error":...,"code":...}`) draw from this one list, and
//! `docs/error-codes.md` documents each. A test reads the sources and fails if any place emits a
//! code that is not listed here, or if the document misses one.
//!
//! Codes are stable: a client may branch on them. Messages are for people and may change.

macro_rules! error_codes {
    ($( $(#[doc = $doc:literal])* $name:ident = $code:literal ),* $(,)?) => {
        $( $(#[doc = $doc])* pub const $name: &str = $code; )*

        /// Every code with its one-line meaning, in the order documented.
        pub const ALL: &[(&str, &str)] = &[ $( ($code, concat!($($doc),*)) ),* ];
    };
}

error_codes! {
    // Frames and bodies a client sent.
    /// The frame or body is not valid JSON (or not UTF-8).
    INVALID_JSON = "invalid_json",
    /// JSON, but not an object.
    NOT_AN_OBJECT = "not_an_object",
    /// A frame without a `type` string.
    MISSING_TYPE = "missing_type",
    /// A `type` the dialect does not know.
    UNKNOWN_TYPE = "unknown_type",
    /// A required field is absent (the message names it).
    MISSING_FIELD = "missing_field",
    /// A field has the wrong type or an invalid value (the message names it).
    INVALID_FIELD = "invalid_field",
    /// An id list is empty.
    EMPTY_IDS = "empty_ids",
    /// An id list is longer than `limits.max_ids_per_event`.
    TOO_MANY_IDS = "too_many_ids",
    /// A binary frame on a dialect that speaks JSON text.
    BINARY_NOT_SUPPORTED = "binary_not_supported",
    /// Over the message rate limit; the message was dropped (`retry_after_ms` says when to retry).
    RATE_LIMITED = "rate_limited",
    /// The query string cannot be parsed.
    INVALID_QUERY = "invalid_query",
    /// An HTTP body over `limits.max_http_body_bytes`.
    BODY_TOO_LARGE = "body_too_large",
    /// A request body not declared `Content-Type: application/json` (HTTP 415).
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type",

    // Walkers.
    /// No walker of that name.
    UNKNOWN_WALKER = "unknown_walker",
    /// The walker or endpoint is not exposed on this method.
    METHOD_NOT_ALLOWED = "method_not_allowed",
    /// A login is required.
    AUTH_REQUIRED = "auth_required",
    /// The caller lacks a required role.
    FORBIDDEN = "forbidden",
    /// The context does not fit the walker's fields (the message names the field).
    INVALID_CONTEXT = "invalid_context",
    /// More walker calls in flight on this connection than `limits.max_inflight_walkers`.
    TOO_MANY_INFLIGHT = "too_many_inflight",
    /// The walker returned an error; its public message is included.
    WALKER_FAILED = "walker_failed",
    /// The server is shutting down: new walker calls and upgrades are refused.
    SHUTTING_DOWN = "shutting_down",

    // The server API for backends (`/api/*`).
    /// The API key is missing or wrong (one answer for both; HTTP 401).
    INVALID_API_KEY = "invalid_api_key",
    /// Too many idempotency keys remembered in the last two minutes; retry the item later.
    IDEMPOTENCY_FULL = "idempotency_full",

    // Upstream (HTTP) handlers.
    /// The upstream did not answer within `upstream.timeout_ms` (REST: 504).
    UPSTREAM_TIMEOUT = "upstream_timeout",
    /// The upstream answered non-2xx, could not be reached, or answered a body of the wrong
    /// shape (REST: 502).
    UPSTREAM_ERROR = "upstream_error",
    /// The upstream's circuit is open after repeated failures; retry later (REST: 503).
    UPSTREAM_UNAVAILABLE = "upstream_unavailable",
    /// More upstream calls in flight than `upstream.max_in_flight` (REST: 503).
    UPSTREAM_BUSY = "upstream_busy",

    // Tokens and accounts.
    /// The token is malformed, signed with another key, or names no account.
    TOKEN_INVALID = "token_invalid",
    /// The token has expired.
    TOKEN_EXPIRED = "token_expired",
    /// The token was revoked (`/user/revoke`); a live connection using it became public.
    TOKEN_REVOKED = "token_revoked",
    /// Not a valid email address.
    INVALID_EMAIL = "invalid_email",
    /// The password is shorter than `auth.min_password_len`.
    WEAK_PASSWORD = "weak_password",
    /// The password is longer than 1024 characters.
    PASSWORD_TOO_LONG = "password_too_long",
    /// An account with this email exists.
    EMAIL_TAKEN = "email_taken",
    /// A username outside `[A-Za-z0-9_.-]{1,32}` (HTTP 400).
    INVALID_USERNAME = "invalid_username",
    /// An account with this username exists, in any letter case (HTTP 409).
    USERNAME_TAKEN = "username_taken",
    /// Wrong email or password (one answer for both).
    INVALID_CREDENTIALS = "invalid_credentials",
    /// No such endpoint or account.
    NOT_FOUND = "not_found",
    /// Too many login or registration attempts from this address or for this email (HTTP 429
    /// with `Retry-After`).
    TOO_MANY_ATTEMPTS = "too_many_attempts",
    /// Every password-hashing slot is busy and the wait queue is full (HTTP 503 with
    /// `Retry-After`).
    HASHING_BUSY = "hashing_busy",

    // Connections.
    /// `change_user` to a user at `limits.max_connections_per_user`; the connection keeps its user.
    TOO_MANY_CONNECTIONS = "too_many_connections",
    /// A browser origin that is neither the server's own nor in `allowed_origins`.
    ORIGIN_NOT_ALLOWED = "origin_not_allowed",
    /// A plain HTTP request to a WebSocket endpoint.
    UPGRADE_REQUIRED = "upgrade_required",
    /// `Sec-WebSocket-Version` is not 13.
    UNSUPPORTED_VERSION = "unsupported_version",
    /// `Sec-WebSocket-Key` is missing or malformed.
    INVALID_KEY = "invalid_key",

    // The channel dialect (`/ws/<channel>`).
    /// A channel-dialect frame without a `cmd` string.
    MISSING_CMD = "missing_cmd",
    /// A channel name that is not 1 to 128 of `A-Z a-z 0-9 _ . : -` (HTTP 400 on the path).
    INVALID_CHANNEL = "invalid_channel",
    /// Connection metadata over 16 query parameters, a key over 64 bytes or a value over 256
    /// bytes (HTTP 400).
    METADATA_TOO_LARGE = "metadata_too_large",
    /// Joining one more channel than the channel rule's `max_channels_per_connection`.
    TOO_MANY_CHANNELS = "too_many_channels",
    /// Leaving, or sending to, a channel the connection is not a member of.
    NOT_JOINED = "not_joined",

    /// The server failed; the cause is in its log, never in the answer.
    INTERNAL_ERROR = "internal_error",
}

/// Whether `code` is in the contract.
pub fn is_listed(code: &str) -> bool {
    ALL.iter().any(|(listed, _)| *listed == code)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Calls whose first snake_case string literal is an error code.
    const CODE_SITES: &[&str] = &[
        "ApiError::new(",
        "ApiError::bad_request(",
        "EventError::new(",
        "CommandError::new(",
        "send_error(",
        "frames::error(",
        "walker_error(",
        "with_code(",
        "error_value(",
    ];

    fn is_code_shaped(literal: &str) -> bool {
        !literal.is_empty()
            && literal.starts_with(|c: char| c.is_ascii_lowercase())
            && literal.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    }

    /// The first string literal within `window` bytes after `from`, before the call's first `)`.
    fn first_literal(text: &str, from: usize, window: usize) -> Option<&str> {
        let end = (from + window).min(text.len());
        let span = text.get(from..end)?;
        let span = &span[..span.find(')').unwrap_or(span.len())];
        let open = span.find('"')?;
        let rest = &span[open + 1..];
        rest.find('"').map(|close| &rest[..close])
    }

    /// Literals of the `=> "code"` arms of every `fn code(&self)`.
    fn code_fn_literals(text: &str) -> Vec<&str> {
        let mut found = Vec::new();
        for (start, _) in text.match_indices("fn code(&self) -> &'static str {") {
            let body = &text[start..];
            let end = body.find("\n    }\n").unwrap_or(body.len());
            for arm in body[..end].split("=> ").skip(1) {
                if let Some(literal) = arm.strip_prefix('"').and_then(|a| a.split('"').next()) {
                    found.push(literal);
                }
            }
        }
        found
    }

    fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).expect("src readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs")
                && !path.ends_with("error_code.rs")
            {
                let text = std::fs::read_to_string(&path).expect("source readable");
                out.push((path.display().to_string(), text));
            }
        }
    }

    #[test]
    fn every_code_the_server_emits_is_listed() {
        let mut files = Vec::new();
        sources(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let mut unlisted = Vec::new();
        let mut seen = 0;
        for (path, text) in &files {
            let mut literals: Vec<&str> = code_fn_literals(text);
            for site in CODE_SITES {
                for (at, _) in text.match_indices(site) {
                    let before = text[..at].chars().next_back();
                    if text[..at].ends_with("fn ")
                        || before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                    {
                        continue; // a definition, or another name ending the same way
                    }
                    if let Some(literal) = first_literal(text, at + site.len(), 160) {
                        literals.push(literal);
                    }
                }
            }
            for literal in literals.into_iter().filter(|l| is_code_shaped(l)) {
                seen += 1;
                if !is_listed(literal) {
                    unlisted.push(format!("{path}: {literal}"));
                }
            }
        }
        assert!(
            seen > 20,
            "the scan found only {seen} codes; is it still looking?"
        );
        assert!(
            unlisted.is_empty(),
            "codes missing from error_code::ALL: {unlisted:#?}"
        );
    }

    #[test]
    fn the_document_lists_every_code() {
        let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/error-codes.md");
        let text = std::fs::read_to_string(&doc).expect("docs/error-codes.md");
        let missing: Vec<&str> = ALL
            .iter()
            .map(|(code, _)| *code)
            .filter(|code| !text.contains(&format!("`{code}`")))
            .collect();
        assert!(missing.is_empty(), "docs/error-codes.md misses {missing:?}");
    }

    #[test]
    fn codes_are_unique_and_snake_case() {
        let mut codes: Vec<&str> = ALL.iter().map(|(c, _)| *c).collect();
        assert!(codes.iter().all(|c| is_code_shaped(c)));
        codes.sort_unstable();
        let before = codes.len();
        codes.dedup();
        assert_eq!(before, codes.len(), "a code is listed twice");
    }
}
