//! Token parsing: `auth::strip_bearer` and `TokenKeys::verify` on arbitrary strings, and on
//! mutations of a valid token. The first byte chooses the mode:
//!
//! - even: the rest, as (lossy) UTF-8, is presented as a token. Nothing may panic; the stripped
//!   token is a trimmed substring of the input.
//! - odd: the rest is a list of edits (3 bytes each: operation, position, byte) applied to a
//!   valid token. The edited token must verify only if the edits left it unchanged.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use switchboard::auth::{TokenKeys, strip_bearer};
use switchboard::store::UserRecord;

static KEYS: LazyLock<TokenKeys> = LazyLock::new(|| TokenKeys::new(b"fuzzing secret"));

/// Valid for ten years from the start of the run.
static VALID: LazyLock<String> = LazyLock::new(|| {
    let user = UserRecord {
        id: "0123456789abcdef01234567".to_string(),
        email: "fuzz@example.com".to_string(),
        password_hash: String::new(),
        root_id: "89abcdef0123456789abcdef".to_string(),
        token_version: 1,
        roles: Vec::new(),
    };
    KEYS.issue(&user, 10 * 365 * 86_400)
});

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let text = String::from_utf8_lossy(rest);
        let stripped = strip_bearer(&text);
        assert_eq!(stripped, stripped.trim());
        assert!(text.contains(stripped));
        if let Ok(verified) = KEYS.verify(&text) {
            // Only a token signed with our key can get here.
            assert!(!stripped.is_empty(), "{verified:?}");
        }
        return;
    }
    let valid = VALID.as_str();
    assert!(KEYS.verify(valid).is_ok(), "the valid token must verify");
    let mut bytes = valid.as_bytes().to_vec();
    for edit in rest.chunks_exact(3) {
        let (op, pos, byte) = (edit[0], usize::from(edit[1]), edit[2]);
        let len = bytes.len();
        match op % 4 {
            0 if len > 0 => bytes[pos % len] = byte,
            1 if len > 0 => {
                bytes.remove(pos % len);
            }
            2 => bytes.insert(pos % (len + 1), byte),
            3 => bytes.truncate(pos % (len + 1)),
            _ => {}
        }
    }
    let edited = String::from_utf8_lossy(&bytes);
    if strip_bearer(&edited) == valid {
        return;
    }
    assert!(
        KEYS.verify(&edited).is_err(),
        "an edited token was accepted: {edited:?}"
    );
});
