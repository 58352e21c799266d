//! A message on its way to many connections, encoded at most once per dialect.

use std::sync::OnceLock;

use bytes::Bytes;
use serde::Serialize;

use crate::dialect::Dialect;

/// The payload of one notify call. Recipients share the encoded bytes: a message to N
/// connections of one dialect is serialized once, not N times.
#[derive(Debug)]
pub struct Delivery {
    payload: Bytes,
    encoded: [OnceLock<Bytes>; Dialect::COUNT],
}

impl Delivery {
    /// From raw JSON text that is already valid (for example a client's `data`, kept verbatim).
    pub fn from_raw_json(payload: Bytes) -> Self {
        Self {
            payload,
            encoded: Default::default(),
        }
    }

    /// Serialize `data` once.
    pub fn from_json<T: Serialize + ?Sized>(data: &T) -> Result<Self, serde_json::Error> {
        Ok(Self::from_raw_json(Bytes::from(serde_json::to_vec(data)?)))
    }

    /// The JSON payload as given.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The frame for a connection of `dialect`, encoded on first use and shared afterwards.
    pub fn frame_for(&self, dialect: Dialect) -> Bytes {
        self.encoded[dialect.index()]
            .get_or_init(|| dialect.encode_notification(&self.payload))
            .clone()
    }
}
