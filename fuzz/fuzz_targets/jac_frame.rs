//! The Jac Cloud frame parser on arbitrary UTF-8 text. The first byte picks a small id limit
//! (0-7), so both sides of `too_many_ids` are reached. Parsing must never panic; an error must
//! carry a non-empty message and one of the documented codes; an accepted event must satisfy the
//! limits it was parsed under.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::dialect::jac::events::{ClientEvent, ParseLimits, parse};

/// The codes of the error table in docs/protocol-jac.md that the parser can produce.
const PARSER_CODES: &[&str] = &[
    "invalid_json",
    "not_an_object",
    "missing_type",
    "unknown_type",
    "missing_field",
    "invalid_field",
    "empty_ids",
    "too_many_ids",
];

fuzz_target!(|input: &[u8]| {
    let Some((&limit, rest)) = input.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let limits = ParseLimits {
        max_ids_per_event: usize::from(limit % 8),
    };
    match parse(text, limits) {
        Err(err) => {
            assert!(!err.message.trim().is_empty(), "empty message: {err:?}");
            assert!(
                PARSER_CODES.contains(&err.code),
                "undocumented code: {err:?}"
            );
        }
        Ok(
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
            },
        ) => {
            assert!(!ids.is_empty() && ids.len() <= limits.max_ids_per_event);
            // `data` is the raw JSON text of the field, kept verbatim from the frame.
            let data = std::str::from_utf8(&data).expect("data is UTF-8");
            assert!(text.contains(data));
            assert!(
                serde_json::from_str::<&serde_json::value::RawValue>(data).is_ok(),
                "data is not JSON: {data}"
            );
        }
        Ok(ClientEvent::Walker(walker)) => {
            assert!(walker.context.get().starts_with('{'));
        }
        Ok(ClientEvent::ChangeUser { .. } | ClientEvent::Connection | ClientEvent::Ping) => {}
    }
});
