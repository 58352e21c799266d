//! WebSocket frame headers (RFC 6455 section 5.2): parsing what clients send, encoding what the
//! server sends. Pure functions over byte slices.

/// Frame opcodes. Reserved opcodes are a protocol error and never reach this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A parsed client frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub fin: bool,
    /// RSV1: "this message is compressed" under permessage-deflate; the stream decides whether
    /// it is allowed.
    pub rsv1: bool,
    pub opcode: OpCode,
    pub mask: [u8; 4],
    pub payload_len: u64,
    /// Bytes the header itself took.
    pub header_len: usize,
}

/// Why a header is refused; each maps to close code 1002 (protocol error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// RSV2 or RSV3 set (no extension defines them), or RSV1 on a control frame.
    ReservedBits,
    ReservedOpcode,
    /// Clients must mask every frame.
    Unmasked,
    /// Control frames must be final and at most 125 bytes.
    BadControlFrame,
    /// The 64-bit length had its most significant bit set.
    LengthOverflow,
}

impl HeaderError {
    /// The close reason naming the broken rule.
    pub fn reason(self) -> &'static str {
        match self {
            HeaderError::ReservedBits => "reserved bit set",
            HeaderError::ReservedOpcode => "reserved opcode",
            HeaderError::Unmasked => "client frame not masked",
            HeaderError::BadControlFrame => "control frame fragmented or over 125 bytes",
            HeaderError::LengthOverflow => "frame length over 2^63",
        }
    }
}

/// Parse a client frame header from the start of `buf`. `Ok(None)`: not enough bytes yet.
pub fn parse_header(buf: &[u8]) -> Result<Option<Header>, HeaderError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    if b0 & 0x30 != 0 {
        return Err(HeaderError::ReservedBits);
    }
    let fin = b0 & 0x80 != 0;
    let rsv1 = b0 & 0x40 != 0;
    let opcode = OpCode::from_bits(b0 & 0x0F).ok_or(HeaderError::ReservedOpcode)?;
    if rsv1 && opcode.is_control() {
        return Err(HeaderError::ReservedBits);
    }
    if b1 & 0x80 == 0 {
        return Err(HeaderError::Unmasked);
    }
    let (payload_len, len_bytes) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 2),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let mut raw = [0u8; 8];
                raw.copy_from_slice(b);
                let len = u64::from_be_bytes(raw);
                if len >> 63 != 0 {
                    return Err(HeaderError::LengthOverflow);
                }
                (len, 8)
            }
            None => return Ok(None),
        },
        short => (u64::from(short), 0),
    };
    if opcode.is_control() && (!fin || payload_len > 125) {
        return Err(HeaderError::BadControlFrame);
    }
    let mask_at = 2 + len_bytes;
    let Some(mask) = buf.get(mask_at..mask_at + 4) else {
        return Ok(None);
    };
    Ok(Some(Header {
        fin,
        rsv1,
        opcode,
        mask: [mask[0], mask[1], mask[2], mask[3]],
        payload_len,
        header_len: mask_at + 4,
    }))
}

/// Unmask a payload in place.
pub fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let mask_word = u32::from_ne_bytes(mask);
    let whole = payload.len() / 4 * 4;
    let (words, tail) = payload.split_at_mut(whole);
    for chunk in words.chunks_exact_mut(4) {
        let word = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ mask_word;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    for (i, byte) in tail.iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
}

/// A final, unmasked server frame header for `payload_len` bytes: up to 10 bytes.
pub fn encode_header(opcode: OpCode, payload_len: usize) -> ([u8; 10], usize) {
    let mut out = [0u8; 10];
    out[0] = 0x80 | opcode.bits();
    let len = if payload_len < 126 {
        out[1] = payload_len as u8;
        2
    } else if let Ok(short) = u16::try_from(payload_len) {
        out[1] = 126;
        out[2..4].copy_from_slice(&short.to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
        10
    };
    (out, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(first: u8, len_field: &[u8]) -> Vec<u8> {
        let mut v = vec![first];
        v.extend_from_slice(len_field);
        v[1] |= 0x80;
        v.extend_from_slice(&[1, 2, 3, 4]);
        v
    }

    #[test]
    fn parses_the_three_length_forms() {
        let h = parse_header(&masked(0x81, &[5])).unwrap().unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.payload_len, h.header_len),
            (true, OpCode::Text, 5, 6)
        );
        let h = parse_header(&masked(0x02, &[126, 1, 0])).unwrap().unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.payload_len, h.header_len),
            (false, OpCode::Binary, 256, 8)
        );
        let h = parse_header(&masked(0x82, &[127, 0, 0, 0, 0, 0, 1, 0, 0]))
            .unwrap()
            .unwrap();
        assert_eq!((h.payload_len, h.header_len), (65536, 14));
        assert_eq!(h.mask, [1, 2, 3, 4]);
    }

    #[test]
    fn incomplete_headers_ask_for_more() {
        let full = masked(0x81, &[126, 1, 0]);
        for cut in 0..full.len() {
            assert_eq!(parse_header(&full[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn protocol_violations_are_refused() {
        // RSV2, RSV3, and RSV1 on a control frame; RSV1 on a data frame is the stream's call.
        assert_eq!(
            parse_header(&masked(0xA1, &[0])),
            Err(HeaderError::ReservedBits)
        );
        assert_eq!(
            parse_header(&masked(0x91, &[0])),
            Err(HeaderError::ReservedBits)
        );
        assert_eq!(
            parse_header(&masked(0xC9, &[0])),
            Err(HeaderError::ReservedBits)
        );
        assert!(parse_header(&masked(0xC1, &[0])).unwrap().unwrap().rsv1);
        assert_eq!(
            parse_header(&masked(0x83, &[0])),
            Err(HeaderError::ReservedOpcode)
        );
        assert_eq!(parse_header(&[0x81, 0x00]), Err(HeaderError::Unmasked));
        assert_eq!(
            parse_header(&masked(0x09, &[0])),
            Err(HeaderError::BadControlFrame)
        );
        assert_eq!(
            parse_header(&masked(0x89, &[126, 0, 126])),
            Err(HeaderError::BadControlFrame)
        );
        assert_eq!(
            parse_header(&masked(0x82, &[127, 0x80, 0, 0, 0, 0, 0, 0, 0])),
            Err(HeaderError::LengthOverflow)
        );
    }

    #[test]
    fn unmask_is_its_own_inverse_at_every_length() {
        for len in 0..20 {
            let original: Vec<u8> = (0..len as u8).collect();
            let mut data = original.clone();
            unmask(&mut data, [9, 8, 7, 6]);
            if len > 0 {
                assert_ne!(data, original);
            }
            unmask(&mut data, [9, 8, 7, 6]);
            assert_eq!(data, original);
        }
    }

    #[test]
    fn server_headers_use_the_shortest_length() {
        assert_eq!(
            encode_header(OpCode::Text, 5),
            ([0x81, 5, 0, 0, 0, 0, 0, 0, 0, 0], 2)
        );
        let (h, n) = encode_header(OpCode::Binary, 300);
        assert_eq!((&h[..n], n), (&[0x82, 126, 1, 44][..], 4));
        let (h, n) = encode_header(OpCode::Text, 70_000);
        assert_eq!(&h[..n], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }
}
