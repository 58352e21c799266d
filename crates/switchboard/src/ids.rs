//! Identifier formats the Jac Cloud wire protocol fixes: client ids, root ids, random channels.

use std::time::{SystemTime, UNIX_EPOCH};

/// The root id of every unauthenticated connection.
pub const PUBLIC_ROOT_ID: &str = "n::000000000000000000000001";

/// The prefix that turns a stored user root id into the connection's `root_id`.
pub const ROOT_ID_PREFIX: &str = "n::";

/// Seconds since the Unix epoch.
pub fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `<unix seconds>:<32 hex uuid>`, the form of client ids and of random channel ids.
pub fn new_client_id() -> String {
    format!("{}:{}", unix_seconds(), uuid::Uuid::new_v4().simple())
}

/// 24 lowercase hex digits (12 random bytes), the form of stored user and root ids.
pub fn new_object_id() -> String {
    let bytes: [u8; 12] = rand::random();
    let mut out = String::with_capacity(24);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_have_the_reference_form() {
        let id = new_client_id();
        let (secs, hex) = id.split_once(':').expect("colon");
        assert!(secs.parse::<u64>().is_ok());
        assert_eq!(hex.len(), 32);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn object_ids_are_24_hex() {
        let id = new_object_id();
        assert_eq!(id.len(), 24);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
