//! How any delivery looks to a channel-dialect connection: the cross-dialect mapping of
//! `docs/protocol-channel.md`.
//!
//! - A delivery naming an event (a channel-dialect message, presence, a server send) becomes
//!   `{"from"?,"channel","cmd":EVENT,"param":PAYLOAD}`.
//! - A payload without an event (a Jac client's `channel` event, `notify_channels`) that is
//!   exactly `{"type":T}` or `{"type":T,"data":D}` becomes `{"channel","cmd":T,"param":D}`.
//! - Any other payload travels whole: `{"channel","cmd":"message","param":PAYLOAD}`.
//!
//! The channel comes from the route (a channel fan-out) or the delivery (a direct send); the
//! frame names it, so the hub encodes once per channel and shares the bytes among its members.

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::value::RawValue;

use super::{NAME, frames};
use crate::hub::{Delivery, FrameEncoder, Route};

/// The `cmd` of a payload of no known shape.
pub const GENERIC_CMD: &str = "message";

#[derive(Debug)]
pub struct ChannelFrames;

/// A Jac-style payload: `type` and optionally `data`, nothing else.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Typed<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

impl FrameEncoder for ChannelFrames {
    /// Presence frames are meant for this dialect alone (`Delivery::only_for(NAME)`).
    fn dialect(&self) -> &'static str {
        NAME
    }

    fn frame_names_channel(&self) -> bool {
        true
    }

    fn encode(&self, delivery: &Delivery, route: &Route<'_>) -> Bytes {
        let channel = route.channel.or(delivery.channel());
        let from = delivery.sender();
        let payload = delivery.payload();
        if let Some(cmd) = delivery.event() {
            return frames::message(from, channel, cmd, payload);
        }
        match serde_json::from_slice::<Typed<'_>>(payload) {
            Ok(typed) => {
                let param = typed.data.map_or("null", RawValue::get);
                frames::message(from, channel, &typed.kind, param.as_bytes())
            }
            Err(_) => frames::message(from, channel, GENERIC_CMD, payload),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(delivery: &Delivery, channel: Option<&str>) -> String {
        let route = Route {
            channel,
            namespace: None,
        };
        String::from_utf8(ChannelFrames.encode(delivery, &route).to_vec()).unwrap()
    }

    #[test]
    fn jac_shaped_payloads_map_to_cmd_and_param() {
        let typed = Delivery::from_raw_json(Bytes::from_static(br#"{"type":"chat","data":[1]}"#));
        assert_eq!(
            encode(&typed, Some("room1")),
            r#"{"channel":"room1","cmd":"chat","param":[1]}"#
        );
        let bare = Delivery::from_raw_json(Bytes::from_static(br#"{"type":"tick"}"#));
        assert_eq!(
            encode(&bare, Some("r")),
            r#"{"channel":"r","cmd":"tick","param":null}"#
        );
    }

    #[test]
    fn other_payloads_travel_whole_as_message() {
        for payload in [
            &br#"{"type":"x","data":1,"id":2}"#[..],
            b"[1,2]",
            b"\"hi\"",
            br#"{"type":3}"#,
        ] {
            let delivery = Delivery::from_raw_json(Bytes::copy_from_slice(payload));
            assert_eq!(
                encode(&delivery, Some("r")),
                format!(
                    r#"{{"channel":"r","cmd":"message","param":{}}}"#,
                    std::str::from_utf8(payload).unwrap()
                )
            );
        }
    }

    #[test]
    fn event_deliveries_carry_sender_and_the_direct_channel() {
        let delivery = Delivery::from_raw_json(Bytes::from_static(b"{}"))
            .with_event("note")
            .with_sender("c-1".into(), None)
            .on_channel("user-7");
        assert_eq!(
            encode(&delivery, None),
            r#"{"from":"c-1","channel":"user-7","cmd":"note","param":{}}"#
        );
        assert_eq!(
            encode(&delivery, Some("room")),
            r#"{"from":"c-1","channel":"room","cmd":"note","param":{}}"#,
            "the route's channel wins"
        );
    }

    #[test]
    fn presence_is_carried_here_only() {
        let presence = Delivery::from_raw_json(Bytes::from_static(b"{}")).only_for(NAME);
        assert!(ChannelFrames.carries(&presence));
        let elsewhere = Delivery::from_raw_json(Bytes::from_static(b"{}")).only_for("other");
        assert!(!ChannelFrames.carries(&elsewhere));
    }
}
