//! Property tests for what the server parses from untrusted input: Jac Cloud frames
//! (`dialect::jac::events::parse`) and tokens (`auth::TokenKeys::verify`, `auth::strip_bearer`).
//!
//! - No input panics either parser.
//! - Every error carries a non-empty message and a code listed in `docs/protocol-jac.md`.
//! - Every well-formed event parses back to what was written: the same ids, fields and, for
//!   `data` and `context`, the very same bytes.
//! - A valid token verifies, and every mutation of it (a character replaced, removed, inserted,
//!   swapped, a truncation, a re-signing with another key, altered claims) is refused.
//!
//! Quick by design (a few seconds in a debug build); the cargo-fuzz targets in `fuzz/` search the
//! same inputs for much longer.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::{Map, Number, Value, json};
use switchboard::auth::{AuthError, TokenKeys, strip_bearer};
use switchboard::dialect::jac::events::{ClientEvent, EventError, ParseLimits, parse};
use switchboard::store::UserRecord;

const LIMITS: ParseLimits = ParseLimits {
    max_ids_per_event: 8,
};

/// Failures are reported with their minimal input; nothing is written next to the sources.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The error codes of the Jac dialect as documented: every backticked code in the first column
/// of the table under "## Errors" in docs/protocol-jac.md.
static DOCUMENTED_CODES: LazyLock<BTreeSet<String>> = LazyLock::new(|| {
    let doc = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/protocol-jac.md"
    ));
    let errors = doc
        .split("\n## Errors")
        .nth(1)
        .expect("docs/protocol-jac.md has an `## Errors` section");
    let errors = errors.split("\n## ").next().unwrap_or(errors);
    let mut codes = BTreeSet::new();
    for line in errors.lines() {
        let Some(first_cell) = line
            .strip_prefix('|')
            .and_then(|rest| rest.split('|').next())
        else {
            continue;
        };
        for (i, piece) in first_cell.split('`').enumerate() {
            if i % 2 == 1 && !piece.is_empty() && piece != "code" {
                codes.insert(piece.to_string());
            }
        }
    }
    assert!(
        codes.contains("invalid_json") && codes.contains("too_many_ids"),
        "could not read the error table of docs/protocol-jac.md: {codes:?}"
    );
    codes
});

fn check_error(input: &str, err: &EventError) -> Result<(), TestCaseError> {
    prop_assert!(
        !err.message.trim().is_empty(),
        "empty message for {input:?}: {err:?}"
    );
    prop_assert!(
        DOCUMENTED_CODES.contains(err.code),
        "code `{}` is not in docs/protocol-jac.md (input {input:?})",
        err.code
    );
    Ok(())
}

/// Parse, and check what any result must satisfy.
fn parse_checked(text: &str, limits: ParseLimits) -> Result<Option<ClientEvent>, TestCaseError> {
    match parse(text, limits) {
        Ok(event) => {
            match &event {
                ClientEvent::User {
                    root_ids: ids,
                    data,
                }
                | ClientEvent::Channel {
                    channel_ids: ids,
                    data,
                }
                | ClientEvent::Client {
                    client_ids: ids,
                    data,
                } => {
                    prop_assert!(!ids.is_empty() && ids.len() <= limits.max_ids_per_event);
                    prop_assert!(
                        serde_json::from_slice::<&serde_json::value::RawValue>(data).is_ok(),
                        "data is not JSON: {data:?}"
                    );
                }
                ClientEvent::Walker(walker) => {
                    prop_assert!(
                        walker.context.get().starts_with('{'),
                        "context {} is not an object",
                        walker.context.get()
                    );
                    prop_assert!(matches!(
                        walker.id,
                        None | Some(Value::String(_) | Value::Number(_))
                    ));
                }
                ClientEvent::ChangeUser { .. } | ClientEvent::Connection | ClientEvent::Ping => {}
            }
            Ok(Some(event))
        }
        Err(err) => {
            check_error(text, &err)?;
            Ok(None)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Generators

/// Any string of up to `max` chars (any Unicode scalar, control characters included). Built from
/// chars because proptest's default `String` strategy goes through a regex and is slow.
fn any_text(max: usize) -> impl Strategy<Value = String> + Clone {
    prop::collection::vec(any::<char>(), 0..=max).prop_map(String::from_iter)
}

/// Any JSON value, nested a few levels, with strings that need escaping and numbers of every kind.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        any::<u64>().prop_map(|n| Value::Number(n.into())),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        any_text(16).prop_map(Value::String),
        "[a-z_]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((any_text(16), inner), 0..5)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Field names the parser looks at, and some it does not.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "type",
            "walker",
            "context",
            "response",
            "node",
            "id",
            "root_ids",
            "channel_ids",
            "client_ids",
            "data",
            "token",
        ])
        .prop_map(str::to_string),
        any_text(16),
    ]
}

fn event_type() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "walker", "user", "channel", "client", "change_user", "connection", "ping",
        ])
        .prop_map(|t| Value::String(t.to_string())),
        1 => json_value(),
    ]
}

/// Objects shaped like events: a known or odd `type`, then known and unknown fields holding any
/// value, so the parser's field checks are all reached.
fn event_like_object() -> impl Strategy<Value = Value> {
    (
        prop::option::weighted(0.9, event_type()),
        prop::collection::vec((field_name(), json_value()), 0..6),
    )
        .prop_map(|(kind, fields)| {
            let mut object = Map::new();
            if let Some(kind) = kind {
                object.insert("type".to_string(), kind);
            }
            for (name, value) in fields {
                object.entry(name).or_insert(value);
            }
            Value::Object(object)
        })
}

/// Text that looks a lot like JSON, so random strings get past the first character.
fn jsonish_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "\"",
        "\\",
        "\"type\"",
        "\"channel\"",
        "\"channel_ids\"",
        "\"data\"",
        "\"walker\"",
        "\"context\"",
        "null",
        "true",
        "-1.5e9",
        " ",
        "\\u0000",
    ]);
    prop::collection::vec(
        prop_oneof![
            4 => pieces.prop_map(str::to_string),
            1 => any::<char>().prop_map(String::from),
        ],
        0..40,
    )
    .prop_map(|pieces| pieces.concat())
}

/// Ids: any strings, including empty ones and ones that need escaping.
fn ids(max: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(prop_oneof![any_text(16), "[a-z0-9:_-]{1,40}"], 1..=max)
}

/// JSON text for a value, compact or pretty-printed (the parser must keep either byte for byte).
fn json_text(value: &Value, pretty: bool) -> String {
    if pretty {
        serde_json::to_string_pretty(value).expect("serialize")
    } else {
        serde_json::to_string(value).expect("serialize")
    }
}

/// An object from `(key, raw JSON text)` pairs, in the given order, with optional spacing.
fn object_text(fields: &[(&str, String)], spaced: bool) -> String {
    let (colon, comma) = if spaced { (" : ", " ,\n ") } else { (":", ",") };
    let body: Vec<String> = fields
        .iter()
        .map(|(key, raw)| format!("{}{colon}{raw}", json!(key)))
        .collect();
    if spaced {
        format!("{{ {} }}", body.join(comma))
    } else {
        format!("{{{}}}", body.join(comma))
    }
}

// ---------------------------------------------------------------------------------------------
// The Jac frame parser

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn arbitrary_strings_never_panic(text in any_text(200), limit in 0usize..4) {
        parse_checked(&text, ParseLimits { max_ids_per_event: limit })?;
    }

    #[test]
    fn jsonish_strings_never_panic(text in jsonish_text(), limit in 0usize..4) {
        parse_checked(&text, ParseLimits { max_ids_per_event: limit })?;
    }
}

proptest! {
    #![proptest_config(config(600))]

    #[test]
    fn arbitrary_json_values_never_panic(value in json_value(), pretty in any::<bool>()) {
        let text = json_text(&value, pretty);
        let parsed = parse_checked(&text, LIMITS)?;
        if !value.is_object() {
            prop_assert!(parsed.is_none());
            let err = parse(&text, LIMITS).unwrap_err();
            prop_assert_eq!(err.code, "not_an_object");
        }
    }

    #[test]
    fn event_like_objects_never_panic(value in event_like_object(), limit in 0usize..4) {
        let text = json_text(&value, false);
        let parsed = parse_checked(&text, ParseLimits { max_ids_per_event: limit })?;
        match value.get("type") {
            None | Some(Value::Null) => {
                prop_assert_eq!(parse(&text, LIMITS).unwrap_err().code, "missing_type");
            }
            Some(Value::String(_)) => {}
            Some(_) => {
                prop_assert!(parsed.is_none());
                prop_assert_eq!(parse(&text, LIMITS).unwrap_err().code, "invalid_field");
            }
        }
    }

    #[test]
    fn delivery_events_round_trip(
        kind in prop::sample::select(vec![
            ("user", "root_ids"),
            ("channel", "channel_ids"),
            ("client", "client_ids"),
        ]),
        ids in ids(LIMITS.max_ids_per_event),
        data in json_value(),
        pretty_data in any::<bool>(),
        spaced in any::<bool>(),
        data_first in any::<bool>(),
        extra in prop::option::of(("[a-z]{1,8}_x", json_value())),
    ) {
        let (kind, ids_field) = kind;
        let data_text = json_text(&data, pretty_data);
        let mut fields = vec![
            ("type", json!(kind).to_string()),
            (ids_field, serde_json::to_string(&ids).expect("ids")),
        ];
        if data_first {
            fields.insert(0, ("data", data_text.clone()));
        } else {
            fields.push(("data", data_text.clone()));
        }
        // An unknown field is ignored.
        if let Some((name, value)) = &extra {
            fields.push((name.as_str(), json_text(value, false)));
        }
        let text = object_text(&fields, spaced);
        let event = parse_checked(&text, LIMITS)?;
        let (got_ids, got_data) = match (kind, event) {
            ("user", Some(ClientEvent::User { root_ids, data })) => (root_ids, data),
            ("channel", Some(ClientEvent::Channel { channel_ids, data })) => (channel_ids, data),
            ("client", Some(ClientEvent::Client { client_ids, data })) => (client_ids, data),
            (_, other) => return Err(TestCaseError::fail(format!("{text} parsed to {other:?}"))),
        };
        prop_assert_eq!(got_ids, ids);
        prop_assert_eq!(
            std::str::from_utf8(&got_data).expect("utf-8"),
            data_text.as_str(),
            "data must be kept byte for byte"
        );
    }

    #[test]
    fn id_lists_out_of_bounds_are_refused(
        kind in prop::sample::select(vec![
            ("user", "root_ids"),
            ("channel", "channel_ids"),
            ("client", "client_ids"),
        ]),
        limit in 1usize..6,
        extra in 1usize..4,
        data in json_value(),
    ) {
        let (kind, field) = kind;
        let empty = json!({"type": kind, field: [], "data": data}).to_string();
        let err = parse(&empty, ParseLimits { max_ids_per_event: limit }).unwrap_err();
        check_error(&empty, &err)?;
        prop_assert_eq!(err.code, "empty_ids");
        prop_assert!(err.message.contains(field), "{}", err.message);

        let many: Vec<String> = (0..limit + extra).map(|i| format!("id{i}")).collect();
        let too_many = json!({"type": kind, field: many, "data": data}).to_string();
        let err = parse(&too_many, ParseLimits { max_ids_per_event: limit }).unwrap_err();
        check_error(&too_many, &err)?;
        prop_assert_eq!(err.code, "too_many_ids");
        prop_assert!(err.message.contains(field), "{}", err.message);

        let at_limit: Vec<String> = (0..limit).map(|i| format!("id{i}")).collect();
        let ok = json!({"type": kind, field: at_limit, "data": data}).to_string();
        let at_limit_ok = parse(&ok, ParseLimits { max_ids_per_event: limit }).is_ok();
        prop_assert!(at_limit_ok, "{} ids at a limit of {} must pass", limit, limit);
    }

    #[test]
    fn walker_events_round_trip(
        walker in any_text(16),
        context in prop::collection::vec((any_text(16), json_value()), 0..5),
        pretty_context in any::<bool>(),
        response in prop::option::of(any::<bool>()),
        node in prop::option::of(any_text(16)),
        id in prop::option::of(prop_oneof![
            any_text(16).prop_map(Value::String),
            any::<i64>().prop_map(|n| Value::Number(n.into())),
            any::<u64>().prop_map(|n| Value::Number(n.into())),
        ]),
        spaced in any::<bool>(),
    ) {
        let context = Value::Object(context.into_iter().collect());
        let context_text = json_text(&context, pretty_context);
        let mut fields = vec![
            ("type", "\"walker\"".to_string()),
            ("walker", json!(walker).to_string()),
            ("context", context_text.clone()),
        ];
        if let Some(response) = response {
            fields.push(("response", json!(response).to_string()));
        }
        if let Some(node) = &node {
            fields.push(("node", json!(node).to_string()));
        }
        if let Some(id) = &id {
            fields.push(("id", id.to_string()));
        }
        let text = object_text(&fields, spaced);
        let Some(ClientEvent::Walker(event)) = parse_checked(&text, LIMITS)? else {
            return Err(TestCaseError::fail(format!("{text} is not a walker event")));
        };
        prop_assert_eq!(event.walker, walker);
        prop_assert_eq!(event.context.get(), context_text.as_str());
        prop_assert_eq!(event.response, response.unwrap_or(false));
        prop_assert_eq!(event.node, node);
        prop_assert_eq!(event.id, id);
    }

    #[test]
    fn wrongly_typed_fields_are_named_in_the_error(
        case in prop::sample::select(vec![
            ("walker", "walker"),
            ("walker", "response"),
            ("walker", "node"),
            ("walker", "context"),
            ("user", "root_ids"),
            ("channel", "channel_ids"),
            ("client", "client_ids"),
            ("change_user", "token"),
        ]),
        bad in json_value(),
    ) {
        let (kind, field) = case;
        // Only values of the wrong type: the right type for each field is skipped.
        let fits = match field {
            "walker" | "node" | "token" => bad.is_string(),
            "response" => bad.is_boolean(),
            "context" => bad.is_object(),
            _ => bad.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        };
        prop_assume!(!fits && !bad.is_null());
        let mut event = json!({"type": kind, "walker": "w", "data": 1});
        event[field] = bad;
        let text = event.to_string();
        let err = parse(&text, LIMITS).expect_err(&text);
        check_error(&text, &err)?;
        prop_assert_eq!(err.code, "invalid_field", "{}", text);
        prop_assert!(err.message.contains(field), "{} does not name {}", err.message, field);
    }

    #[test]
    fn ping_connection_and_change_user_round_trip(
        token in prop::option::of(any_text(16)),
        via_connection in any::<bool>(),
    ) {
        let ping = parse(r#"{"type":"ping"}"#, LIMITS);
        prop_assert!(matches!(ping, Ok(ClientEvent::Ping)), "ping parsed to {:?}", ping);
        let kind = if via_connection { "connection" } else { "change_user" };
        let text = match &token {
            Some(token) => json!({"type": kind, "token": token}).to_string(),
            None => json!({"type": kind}).to_string(),
        };
        match (parse_checked(&text, LIMITS)?, &token) {
            (Some(ClientEvent::ChangeUser { token: got }), _) => prop_assert_eq!(got, token),
            (Some(ClientEvent::Connection), None) => prop_assert!(via_connection),
            (other, _) => return Err(TestCaseError::fail(format!("{text} parsed to {other:?}"))),
        }
    }
}

/// The codes the parser emits are all documented (a fixed check, beside the random ones).
#[test]
fn parser_codes_are_documented() {
    for text in [
        "",
        "nope",
        "[]",
        "{}",
        r#"{"type":1}"#,
        r#"{"type":"x"}"#,
        r#"{"type":"walker"}"#,
        r#"{"type":"user","root_ids":[],"data":1}"#,
        r#"{"type":"user","root_ids":["a","b","c","d","e","f","g","h","i"],"data":1}"#,
    ] {
        let err = parse(text, LIMITS).expect_err(text);
        assert!(DOCUMENTED_CODES.contains(err.code), "{text}: {err:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens

const SECRET: &[u8] = b"proptest secret, not used anywhere else";

static KEYS: LazyLock<TokenKeys> = LazyLock::new(|| TokenKeys::new(SECRET));

fn user() -> UserRecord {
    UserRecord {
        id: "0123456789abcdef01234567".to_string(),
        email: "prop@example.com".to_string(),
        username: None,
        password_hash: String::new(),
        root_id: "89abcdef0123456789abcdef".to_string(),
        token_version: 3,
        roles: vec!["ops".to_string()],
    }
}

/// One valid token, issued once for the whole run (valid for a year).
static VALID: LazyLock<String> = LazyLock::new(|| KEYS.issue(&user(), 365 * 86_400));

/// Characters a mutation may write: the token alphabet, its separator and some strangers. No
/// whitespace, because a token with spaces added around it is (on purpose) the same token.
fn token_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                .chars()
                .collect::<Vec<_>>()
        ),
        1 => prop::sample::select(vec!['.', '=', '+', '/', '%', '\0', 'é', '\u{feff}']),
        1 => any::<char>().prop_filter("not whitespace", |c| !c.is_whitespace()),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(prop::sample::Index, char),
    Remove(prop::sample::Index),
    Insert(prop::sample::Index, char),
    Swap(prop::sample::Index),
    Truncate(prop::sample::Index),
    Append(String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), token_char()).prop_map(|(i, c)| Mutation::Replace(i, c)),
        2 => any::<prop::sample::Index>().prop_map(Mutation::Remove),
        2 => (any::<prop::sample::Index>(), token_char()).prop_map(|(i, c)| Mutation::Insert(i, c)),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Swap),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        1 => "[A-Za-z0-9_.-]{1,8}".prop_map(Mutation::Append),
    ]
}

fn apply(token: &str, mutations: &[Mutation]) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    for m in mutations {
        let len = chars.len();
        match m {
            Mutation::Replace(i, c) if len > 0 => chars[i.index(len)] = *c,
            Mutation::Remove(i) if len > 0 => {
                chars.remove(i.index(len));
            }
            Mutation::Insert(i, c) => chars.insert(i.index(len + 1), *c),
            Mutation::Swap(i) if len > 1 => chars.swap(i.index(len - 1), i.index(len - 1) + 1),
            Mutation::Truncate(i) if len > 0 => chars.truncate(i.index(len)),
            Mutation::Append(s) => chars.extend(s.chars()),
            _ => {}
        }
    }
    chars.into_iter().collect()
}

/// Tokens built from parts: a header and claims of our choosing, each base64url-encoded, and a
/// signature that is random or a real HS256 one with the right key.
fn crafted_token() -> impl Strategy<Value = String> {
    let alg = prop::sample::select(vec!["HS256", "none", "None", "HS384", "HS512", "RS256", ""]);
    let claims = prop_oneof![
        json_value(),
        (
            prop::option::of(prop_oneof![
                Just(json!("0123456789abcdef01234567")),
                json_value()
            ]),
            prop::option::of(prop_oneof![
                Just(json!(u32::MAX)),
                Just(json!(0)),
                any::<i64>().prop_map(|n| json!(n)),
                json_value()
            ]),
            prop::option::of(json_value()),
        )
            .prop_map(|(sub, exp, ver)| {
                let mut claims = json!({"email": "x@example.com", "root_id": "r", "iat": 0});
                if let Some(sub) = sub {
                    claims["sub"] = sub;
                }
                if let Some(exp) = exp {
                    claims["exp"] = exp;
                }
                if let Some(ver) = ver {
                    claims["ver"] = ver;
                }
                claims
            }),
    ];
    (
        alg,
        claims,
        prop::option::of(prop::collection::vec(any::<u8>(), 0..48)),
    )
        .prop_map(|(alg, claims, signature)| {
            let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
            let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
            let signing_input = format!("{header}.{payload}");
            let signature = match signature {
                Some(bytes) => URL_SAFE_NO_PAD.encode(bytes),
                None => hs256(SECRET, signing_input.as_bytes()),
            };
            format!("{signing_input}.{signature}")
        })
}

/// HS256 over `input`, base64url: via jsonwebtoken's own signer, so the test does not need an
/// HMAC implementation of its own.
fn hs256(secret: &[u8], input: &[u8]) -> String {
    jsonwebtoken::crypto::sign(
        input,
        &jsonwebtoken::EncodingKey::from_secret(secret),
        jsonwebtoken::Algorithm::HS256,
    )
    .expect("sign")
}

#[test]
fn the_valid_token_verifies_with_and_without_bearer() {
    let token = VALID.as_str();
    for presented in [
        token.to_string(),
        format!("Bearer {token}"),
        format!("bearer {token}"),
        format!("  BEARER   {token}  "),
    ] {
        let verified = KEYS.verify(&presented).expect("valid token");
        assert_eq!(verified.user_id, user().id);
        assert_eq!(verified.token_version, 3);
    }
    assert!(matches!(
        KEYS.verify(&KEYS.issue(&user(), -3600)),
        Err(AuthError::Expired)
    ));
    assert!(matches!(
        TokenKeys::new(b"another secret").verify(token),
        Err(AuthError::Invalid)
    ));
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn verify_never_panics_on_arbitrary_strings(text in any_text(300)) {
        let _ = KEYS.verify(&text);
        let stripped = strip_bearer(&text);
        prop_assert_eq!(stripped, stripped.trim());
        prop_assert!(text.contains(stripped));
    }

    #[test]
    fn verify_never_panics_on_token_shaped_strings(
        parts in prop::collection::vec("[A-Za-z0-9_=+/-]{0,60}", 0..5),
        bearer in prop::sample::select(vec!["", "Bearer ", "bearer ", "BEARER  "]),
    ) {
        let text = format!("{bearer}{}", parts.join("."));
        let _ = KEYS.verify(&text);
    }

    #[test]
    fn every_mutation_of_a_valid_token_is_refused(
        mutations in prop::collection::vec(mutation(), 1..4),
        bearer in prop::sample::select(vec!["", "Bearer ", "bearer "]),
    ) {
        let token = VALID.as_str();
        let mutated = apply(token, &mutations);
        prop_assume!(strip_bearer(&mutated) != token);
        let presented = format!("{bearer}{mutated}");
        let result = KEYS.verify(&presented);
        prop_assert!(
            matches!(result, Err(AuthError::Invalid)),
            "mutation {:?} of the valid token was not refused as invalid: {:?}",
            mutations,
            result
        );
    }
}

proptest! {
    #![proptest_config(config(500))]

    #[test]
    fn crafted_tokens_never_panic_and_only_hs256_with_our_key_passes(token in crafted_token()) {
        match KEYS.verify(&token) {
            Ok(verified) => {
                // Only a real signature over an HS256 header, with a string `sub`.
                let header = token.split('.').next().unwrap_or_default();
                let header = URL_SAFE_NO_PAD.decode(header).expect("header");
                let header: Value = serde_json::from_slice(&header).expect("header json");
                prop_assert_eq!(&header["alg"], "HS256");
                let claims = token.split('.').nth(1).unwrap_or_default();
                let claims: Value =
                    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).expect("claims"))
                        .expect("claims json");
                prop_assert_eq!(&claims["sub"], &json!(verified.user_id));
            }
            Err(AuthError::Invalid | AuthError::Expired) => {}
            Err(other) => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
        }
    }

    #[test]
    fn claims_changed_under_the_old_signature_are_refused(
        sub in "[0-9a-f]{24}",
        ver in any::<i64>(),
    ) {
        let token = VALID.as_str();
        let mut parts = token.split('.');
        let (header, payload, signature) =
            (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        let mut claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        prop_assume!(claims["sub"] != json!(sub) || claims["ver"] != json!(ver));
        claims["sub"] = json!(sub);
        claims["ver"] = json!(ver);
        let forged = format!(
            "{header}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let result = KEYS.verify(&forged);
        prop_assert!(
            matches!(result, Err(AuthError::Invalid)),
            "claims changed under the old signature: {:?}",
            result
        );
        // Signed with another key: refused too.
        let resigned = format!(
            "{header}.{}",
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let other = hs256(b"not the server's secret", resigned.as_bytes());
        let resigned = format!("{resigned}.{other}");
        let result = KEYS.verify(&resigned);
        prop_assert!(
            matches!(result, Err(AuthError::Invalid)),
            "re-signed with another key: {:?}",
            result
        );
    }
}
