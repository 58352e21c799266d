//! permessage-deflate (RFC 7692), as a receiver: negotiation and decompression of client
//! messages.
//!
//! Switchboard accepts compressed messages from clients and always answers uncompressed (the
//! extension lets each message choose; RSV1 clear means "not compressed"). It asks for no
//! context takeover in both directions, so every compressed message is inflated on its own: a
//! connection keeps no compression state between messages and idle connections cost nothing
//! extra. Outgoing messages stay uncompressed because they are shared bytes, written as-is to
//! every recipient.

use std::cell::RefCell;

use flate2::{Decompress, FlushDecompress, Status};

/// The trailer RFC 7692 section 7.2.2 removes from each compressed message; inflating needs it back.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The `Sec-WebSocket-Extensions` response value accepting the first acceptable
/// permessage-deflate offer in `offers`, or `None` to decline.
pub fn negotiate<'a>(offers: impl IntoIterator<Item = &'a str>) -> Option<String> {
    offers
        .into_iter()
        .flat_map(|header| header.split(','))
        .find_map(accept_offer)
}

/// One offer: `permessage-deflate; param[=value]; ...`.
fn accept_offer(offer: &str) -> Option<String> {
    let mut parts = offer.split(';').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case("permessage-deflate") {
        return None;
    }
    let mut response =
        String::from("permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    let mut seen: Vec<String> = Vec::new();
    for param in parts {
        if param.is_empty() {
            continue;
        }
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (
                n.trim().to_ascii_lowercase(),
                Some(v.trim().trim_matches('"')),
            ),
            None => (param.to_ascii_lowercase(), None),
        };
        if seen.contains(&name) {
            return None; // a parameter twice makes the offer invalid
        }
        seen.push(name.clone());
        match (name.as_str(), value) {
            ("server_no_context_takeover" | "client_no_context_takeover", None) => {}
            // We never compress, so any window limit on our side is honoured.
            ("server_max_window_bits", Some(bits)) if window_bits(bits) => {
                response.push_str("; server_max_window_bits=");
                response.push_str(bits);
            }
            // Inflating with the largest window reads anything the client sends.
            ("client_max_window_bits", None) => {}
            ("client_max_window_bits", Some(bits)) if window_bits(bits) => {}
            _ => return None,
        }
    }
    Some(response)
}

fn window_bits(value: &str) -> bool {
    value.len() <= 2
        && value
            .parse::<u8>()
            .is_ok_and(|bits| (8..=15).contains(&bits))
}

/// Why a compressed message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// It inflates to more than the message limit.
    TooBig,
    /// It is not valid DEFLATE data.
    Corrupt,
}

thread_local! {
    /// One inflate state per worker thread: without context takeover every message starts from a
    /// reset state, so reusing it saves allocating and zeroing tens of KiB per message.
    static INFLATER: RefCell<Decompress> = RefCell::new(Decompress::new(false));
}

/// Inflate one message compressed without context takeover, to at most `limit` bytes.
pub fn inflate(compressed: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
    INFLATER.with_borrow_mut(|inflater| {
        inflater.reset(false);
        inflate_with(inflater, compressed, limit)
    })
}

fn inflate_with(
    inflater: &mut Decompress,
    compressed: &[u8],
    limit: usize,
) -> Result<Vec<u8>, InflateError> {
    let mut out: Vec<u8> = Vec::with_capacity((compressed.len() * 4).clamp(64, limit.max(64)));
    for chunk in [compressed, &TAIL[..]] {
        let mut consumed = 0;
        loop {
            if out.len() == out.capacity() {
                if out.len() > limit {
                    return Err(InflateError::TooBig);
                }
                out.reserve(out.capacity().min(limit + 1 - out.len()).max(64));
            }
            let (in_before, out_before) = (inflater.total_in(), out.len());
            let status = inflater
                .decompress_vec(&chunk[consumed..], &mut out, FlushDecompress::Sync)
                .map_err(|_| InflateError::Corrupt)?;
            consumed += (inflater.total_in() - in_before) as usize;
            if out.len() > limit {
                return Err(InflateError::TooBig);
            }
            if status == Status::StreamEnd {
                return Ok(out);
            }
            let progressed = inflater.total_in() > in_before || out.len() > out_before;
            let output_pending = out.len() == out.capacity();
            if consumed >= chunk.len() && !output_pending {
                break;
            }
            if !progressed && !output_pending {
                return Err(InflateError::Corrupt);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    /// Compress as a client does: raw DEFLATE, sync flush, trailer removed.
    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut compressor = Compress::new(Compression::default(), false);
        let mut out = Vec::with_capacity(data.len() + 64);
        compressor
            .compress_vec(data, &mut out, FlushCompress::Sync)
            .unwrap();
        assert!(out.ends_with(&TAIL));
        out.truncate(out.len() - 4);
        out
    }

    #[test]
    fn round_trip() {
        let text = "hello hello hello hello, compressed world".repeat(50);
        assert_eq!(
            inflate(&deflate(text.as_bytes()), 1 << 20).unwrap(),
            text.as_bytes()
        );
        assert_eq!(inflate(&deflate(b""), 10).unwrap(), b"");
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        let zeros = vec![0u8; 1 << 20];
        assert_eq!(inflate(&deflate(&zeros), 4096), Err(InflateError::TooBig));
    }

    #[test]
    fn garbage_is_corrupt() {
        assert_eq!(
            inflate(&[0xff, 0xff, 0xff, 0xff, 0xff], 4096),
            Err(InflateError::Corrupt)
        );
    }

    #[test]
    fn negotiation_accepts_valid_offers_and_declines_the_rest() {
        let base = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
        assert_eq!(negotiate(["permessage-deflate"]).as_deref(), Some(base));
        assert_eq!(
            negotiate(["permessage-deflate; client_max_window_bits"]).as_deref(),
            Some(base)
        );
        assert_eq!(
            negotiate(["permessage-deflate; server_max_window_bits=10"]).as_deref(),
            Some(format!("{base}; server_max_window_bits=10").as_str())
        );
        assert_eq!(
            negotiate(["permessage-deflate; server_max_window_bits=20"]),
            None
        );
        assert_eq!(negotiate(["permessage-deflate; mystery=1"]), None);
        assert_eq!(
            negotiate([
                "permessage-deflate; client_no_context_takeover; client_no_context_takeover"
            ]),
            None
        );
        assert_eq!(negotiate(["x-webkit-deflate-frame"]), None);
        // The first acceptable offer wins.
        assert_eq!(
            negotiate(["permessage-deflate; server_max_window_bits=99, permessage-deflate"])
                .as_deref(),
            Some(base)
        );
    }
}
