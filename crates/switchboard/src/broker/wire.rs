//! The bytes one node sends another over a backplane, and the channel names they travel on.
//!
//! A delivery is a fixed header followed by tagged fields:
//!
//! ```text
//! u8  version (1)          u8  kind (1 = delivery, 2 = order)
//! u8  origin length        origin node id (UTF-8)
//! u64 id (little endian)   unique per origin; copies of one multi-channel send share it
//! u8  target kind          0 everyone, 1 users, 2 channels, 3 clients, 4 namespace
//! u16 name count           then per name: u16 length, UTF-8 bytes
//! fields until the end:    u8 tag, u32 length, bytes
//! ```
//!
//! Every [`Delivery`] field is a field: 1 payload, 2 event, 3 sender, 4 sender name. A reader
//! skips tags it does not know, so a new optional field is one new tag (older nodes ignore it);
//! the version byte changes only for a change an older node must not misread.
//!
//! Presence travels as three more kinds, each after the origin and id: 3 *alive* (every node
//! sends one a second, with its figures: `u64` open connections and `u64` uptime in seconds; a
//! reader takes an alive without them as figures unknown), 4 *members request* (the channel, `u16` length and bytes)
//! and 5 *members reply* (the request's id as `u64`, a `u16` count, then per member its client
//! id, user id and username as `u16`-length strings, and `u8` flags: 1 authenticated, 2 has a
//! username).
//!
//! An order (kind 2) tells every node to act. After the origin and id comes `u8` order. An
//! account change, for that user's live connections (1 tokens revoked, 2 role granted), carries
//! the user id and the account's email, each `u16` length and UTF-8 bytes. A disconnect order (order 3,
//! `POST /api/disconnect`) is followed instead by `u8` target (1 users, 3 clients), a `u16`
//! count of ids, each `u16` length and bytes, the `u16` close code and the reason (`u16` length).
//! A publish id seen (order 4) carries the API key's name and the item's idempotency id, each
//! `u16` length and bytes, so every node answers a repeat as a duplicate.
//!
//! A *question* (kind 6) asks every node something the broker does not interpret (the cluster's
//! statistics): after the origin and id, the question's bytes to the end. Each node answers on
//! the asker's own subject with one or more *answer parts* (kind 7): the question's id as `u64`,
//! `u32` part index, `u32` part count, then that part's bytes to the end. An answer is cut into
//! parts of at most [`ANSWER_PART_BYTES`] so none exceeds a NATS server's default payload limit
//! (1 MiB), however large the answer.

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::hub::{Delivery, Target};
use crate::presence::Member;

/// The format this node writes; it reads only this version.
pub const VERSION: u8 = 1;

const KIND_DELIVERY: u8 = 1;
const KIND_ORDER: u8 = 2;
const KIND_ALIVE: u8 = 3;
const KIND_MEMBERS_REQUEST: u8 = 4;
const KIND_MEMBERS_REPLY: u8 = 5;
const KIND_QUESTION: u8 = 6;
const KIND_ANSWER_PART: u8 = 7;

/// The most answer bytes one message carries.
pub const ANSWER_PART_BYTES: usize = 256 * 1024;

const MEMBER_AUTHENTICATED: u8 = 1;
const MEMBER_HAS_USERNAME: u8 = 2;

const CHANGE_REVOKED: u8 = 1;
const CHANGE_ROLE_GRANTED: u8 = 2;
const CHANGE_DISCONNECT: u8 = 3;
const CHANGE_PUBLISH_ID_SEEN: u8 = 4;

const TARGET_EVERYONE: u8 = 0;
const TARGET_USERS: u8 = 1;
const TARGET_CHANNELS: u8 = 2;
const TARGET_CLIENTS: u8 = 3;
const TARGET_NAMESPACE: u8 = 4;

const FIELD_PAYLOAD: u8 = 1;
const FIELD_EVENT: u8 = 2;
const FIELD_SENDER: u8 = 3;
const FIELD_SENDER_NAME: u8 = 4;
/// The one dialect a delivery reaches (`Delivery::only_for`).
const FIELD_AUDIENCE: u8 = 5;
/// The channel a send speaks for (`Delivery::on_channel`).
const FIELD_CHANNEL: u8 = 6;
/// One client id the delivery skips on every node; repeated per id.
const FIELD_EXCEPT_CLIENT: u8 = 7;

/// What one node tells the others.
#[derive(Debug)]
pub enum Received {
    /// Boxed: a delivery carries its frame cache, far larger than an order.
    Delivery(Box<Message>),
    Order {
        origin: Arc<str>,
        change: ClusterOrder,
    },
    /// The origin is up (sent every second; a node silent for a while is gone), with its
    /// figures when it sent them.
    Alive {
        origin: Arc<str>,
        figures: Option<NodeFigures>,
    },
    /// The origin asks every node for its members of `channel`; reply to it quoting `id`.
    MembersRequest {
        origin: Arc<str>,
        id: u64,
        channel: String,
    },
    /// The origin's members, answering request `request`.
    MembersReply {
        origin: Arc<str>,
        request: u64,
        members: Vec<Member>,
    },
    /// The origin asks every node `question`; answer it quoting `id`.
    Question {
        origin: Arc<str>,
        id: u64,
        question: Bytes,
    },
    /// Part `index` of `count` of the origin's answer to question `question`.
    AnswerPart {
        origin: Arc<str>,
        question: u64,
        index: u32,
        count: u32,
        bytes: Bytes,
    },
}

/// What a node tells the others about itself every second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeFigures {
    /// WebSocket connections open on it.
    pub connections: u64,
    /// Seconds since it started.
    pub uptime_secs: u64,
}

/// An order every node applies: an account change to act on in its live connections, a
/// disconnect order, or an idempotency id one node has seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterOrder {
    /// Every token of the user was revoked.
    Revoked { user_id: String },
    /// The account (`email`) was granted a role.
    RoleGranted { user_id: String, email: String },
    /// Close the connections of these users or clients (`POST /api/disconnect`).
    Disconnect {
        target: DisconnectTarget,
        code: u16,
        reason: String,
    },
    /// `POST /api/publish` delivered an item with this idempotency `id` under the API key named
    /// `api_key`; a repeat within the window is a duplicate on every node.
    PublishIdSeen { api_key: String, id: String },
}

/// Whose connections a disconnect order closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectTarget {
    /// Account user ids (a Jac `n::<root_id>` address resolves to one first).
    Users(Vec<String>),
    /// Client ids.
    Clients(Vec<String>),
}

/// One delivery as another node receives it.
#[derive(Debug)]
pub struct Message {
    /// The node that published it.
    pub origin: Arc<str>,
    /// Unique per origin: lets a node that hears one send on several channels deliver it once.
    pub id: u64,
    pub target: Target,
    pub delivery: Delivery,
}

/// Why bytes from the backplane were not a message this node can read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("unsupported format version {0}")]
    Version(u8),
    #[error("unknown message kind {0}")]
    Kind(u8),
    #[error("unknown target kind {0}")]
    Target(u8),
    #[error("truncated message")]
    Truncated,
    #[error("a text field is not UTF-8")]
    Utf8,
    #[error("no payload")]
    NoPayload,
    #[error("unknown order {0}")]
    Change(u8),
    #[error("answer part {index} of {count}")]
    AnswerPart { index: u32, count: u32 },
}

/// Encode an order sent by `origin`.
pub fn encode_order(origin: &str, id: u64, change: &ClusterOrder) -> Bytes {
    let mut out = header(KIND_ORDER, origin, id);
    let (kind, user_id, email) = match change {
        ClusterOrder::Revoked { user_id } => (CHANGE_REVOKED, user_id, ""),
        ClusterOrder::RoleGranted { user_id, email } => {
            (CHANGE_ROLE_GRANTED, user_id, email.as_str())
        }
        ClusterOrder::PublishIdSeen { api_key, id } => {
            (CHANGE_PUBLISH_ID_SEEN, api_key, id.as_str())
        }
        ClusterOrder::Disconnect {
            target,
            code,
            reason,
        } => {
            out.put_u8(CHANGE_DISCONNECT);
            let (kind, ids) = match target {
                DisconnectTarget::Users(ids) => (TARGET_USERS, ids),
                DisconnectTarget::Clients(ids) => (TARGET_CLIENTS, ids),
            };
            out.put_u8(kind);
            let ids = &ids[..ids.len().min(u16::MAX as usize)];
            out.put_u16_le(ids.len() as u16);
            for id in ids {
                put_long(&mut out, id);
            }
            out.put_u16_le(*code);
            put_long(&mut out, reason);
            return out.freeze();
        }
    };
    out.put_u8(kind);
    put_long(&mut out, user_id);
    put_long(&mut out, email);
    out.freeze()
}

/// Encode a delivery published by `origin`.
pub fn encode(origin: &str, id: u64, target: &Target, delivery: &Delivery) -> Bytes {
    let names: &[String] = match target {
        Target::Everyone => &[],
        Target::Users(ids) | Target::Channels(ids) | Target::Clients(ids) => ids,
        Target::Namespace(name) => std::slice::from_ref(name),
    };
    let mut out = BytesMut::with_capacity(
        16 + origin.len()
            + names.iter().map(|n| n.len() + 2).sum::<usize>()
            + delivery.payload().len()
            + 40,
    );
    out.put_u8(VERSION);
    out.put_u8(KIND_DELIVERY);
    put_short(&mut out, origin);
    out.put_u64_le(id);
    out.put_u8(match target {
        Target::Everyone => TARGET_EVERYONE,
        Target::Users(_) => TARGET_USERS,
        Target::Channels(_) => TARGET_CHANNELS,
        Target::Clients(_) => TARGET_CLIENTS,
        Target::Namespace(_) => TARGET_NAMESPACE,
    });
    let names = &names[..names.len().min(u16::MAX as usize)];
    out.put_u16_le(names.len() as u16);
    for name in names {
        let name = clip(name, u16::MAX as usize);
        out.put_u16_le(name.len() as u16);
        out.put_slice(name.as_bytes());
    }
    put_field(&mut out, FIELD_PAYLOAD, delivery.payload());
    for (tag, value) in [
        (FIELD_EVENT, delivery.event()),
        (FIELD_SENDER, delivery.sender()),
        (FIELD_SENDER_NAME, delivery.sender_name()),
        (FIELD_AUDIENCE, delivery.audience()),
        (FIELD_CHANNEL, delivery.channel()),
    ] {
        if let Some(value) = value {
            put_field(&mut out, tag, value.as_bytes());
        }
    }
    for client in delivery.excluded_clients() {
        put_field(&mut out, FIELD_EXCEPT_CLIENT, client.as_bytes());
    }
    out.freeze()
}

fn header(kind: u8, origin: &str, id: u64) -> BytesMut {
    let mut out = BytesMut::with_capacity(64);
    out.put_u8(VERSION);
    out.put_u8(kind);
    put_short(&mut out, origin);
    out.put_u64_le(id);
    out
}

fn put_long(out: &mut BytesMut, text: &str) {
    let text = clip(text, u16::MAX as usize);
    out.put_u16_le(text.len() as u16);
    out.put_slice(text.as_bytes());
}

/// `origin` is up, with its figures.
pub fn encode_alive(origin: &str, id: u64, figures: NodeFigures) -> Bytes {
    let mut out = header(KIND_ALIVE, origin, id);
    out.put_u64_le(figures.connections);
    out.put_u64_le(figures.uptime_secs);
    out.freeze()
}

/// Ask every node for its members of `channel`.
pub fn encode_members_request(origin: &str, id: u64, channel: &str) -> Bytes {
    let mut out = header(KIND_MEMBERS_REQUEST, origin, id);
    put_long(&mut out, channel);
    out.freeze()
}

/// This node's members, answering `request`.
pub fn encode_members_reply(origin: &str, id: u64, request: u64, members: &[Member]) -> Bytes {
    let mut out = header(KIND_MEMBERS_REPLY, origin, id);
    out.put_u64_le(request);
    let members = &members[..members.len().min(u16::MAX as usize)];
    out.put_u16_le(members.len() as u16);
    for member in members {
        put_long(&mut out, &member.client_id);
        put_long(&mut out, &member.user_id);
        put_long(&mut out, member.username.as_deref().unwrap_or(""));
        put_long(&mut out, &member.dialect);
        let mut flags = 0;
        if member.authenticated {
            flags |= MEMBER_AUTHENTICATED;
        }
        if member.username.is_some() {
            flags |= MEMBER_HAS_USERNAME;
        }
        out.put_u8(flags);
    }
    out.freeze()
}

/// Ask every node `question`.
pub fn encode_question(origin: &str, id: u64, question: &[u8]) -> Bytes {
    let mut out = header(KIND_QUESTION, origin, id);
    out.put_slice(question);
    out.freeze()
}

/// This node's `answer` to question `question`, as one message per [`ANSWER_PART_BYTES`] (at
/// least one, for an empty answer); `next_id` numbers each.
pub fn encode_answer(
    origin: &str,
    mut next_id: impl FnMut() -> u64,
    question: u64,
    answer: &[u8],
) -> Vec<Bytes> {
    let parts: Vec<&[u8]> = if answer.is_empty() {
        vec![answer]
    } else {
        answer.chunks(ANSWER_PART_BYTES).collect()
    };
    let count = parts.len() as u32;
    parts
        .into_iter()
        .enumerate()
        .map(|(index, part)| {
            let mut out = header(KIND_ANSWER_PART, origin, next_id());
            out.reserve(16 + part.len());
            out.put_u64_le(question);
            out.put_u32_le(index as u32);
            out.put_u32_le(count);
            out.put_slice(part);
            out.freeze()
        })
        .collect()
}

fn decode_members(bytes: &mut Bytes) -> Result<Vec<Member>, DecodeError> {
    if bytes.remaining() < 2 {
        return Err(DecodeError::Truncated);
    }
    let count = bytes.get_u16_le() as usize;
    let mut members = Vec::with_capacity(count.min(bytes.remaining() / 7));
    for _ in 0..count {
        let client_id = take_long_str(bytes)?;
        let user_id = take_long_str(bytes)?;
        let username = take_long_str(bytes)?;
        let dialect = take_long_str(bytes)?;
        let flags = take_u8(bytes)?;
        members.push(Member {
            client_id: Arc::from(client_id),
            user_id: Arc::from(user_id),
            username: (flags & MEMBER_HAS_USERNAME != 0).then_some(username),
            authenticated: flags & MEMBER_AUTHENTICATED != 0,
            dialect: Arc::from(dialect),
        });
    }
    Ok(members)
}

/// Decode a message. A delivery's payload is shared with `bytes`, not copied.
pub fn decode(mut bytes: Bytes) -> Result<Received, DecodeError> {
    let version = take_u8(&mut bytes)?;
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let kind = take_u8(&mut bytes)?;
    if !(KIND_DELIVERY..=KIND_ANSWER_PART).contains(&kind) {
        return Err(DecodeError::Kind(kind));
    }
    let origin_len = take_u8(&mut bytes)? as usize;
    let origin: Arc<str> = Arc::from(take_str(&mut bytes, origin_len)?);
    if bytes.remaining() < 8 {
        return Err(DecodeError::Truncated);
    }
    let id = bytes.get_u64_le();
    if kind == KIND_ORDER {
        let change = take_u8(&mut bytes)?;
        if change == CHANGE_DISCONNECT {
            let change = decode_disconnect(&mut bytes)?;
            return Ok(Received::Order { origin, change });
        }
        let user_id = take_long_str(&mut bytes)?;
        let email = take_long_str(&mut bytes)?;
        let change = match change {
            CHANGE_REVOKED => ClusterOrder::Revoked { user_id },
            CHANGE_ROLE_GRANTED => ClusterOrder::RoleGranted { user_id, email },
            CHANGE_PUBLISH_ID_SEEN => ClusterOrder::PublishIdSeen {
                api_key: user_id,
                id: email,
            },
            other => return Err(DecodeError::Change(other)),
        };
        return Ok(Received::Order { origin, change });
    }
    match kind {
        KIND_ALIVE => {
            let figures = (bytes.remaining() >= 16).then(|| NodeFigures {
                connections: bytes.get_u64_le(),
                uptime_secs: bytes.get_u64_le(),
            });
            return Ok(Received::Alive { origin, figures });
        }
        KIND_MEMBERS_REQUEST => {
            let channel = take_long_str(&mut bytes)?;
            return Ok(Received::MembersRequest {
                origin,
                id,
                channel,
            });
        }
        KIND_MEMBERS_REPLY => {
            if bytes.remaining() < 8 {
                return Err(DecodeError::Truncated);
            }
            let request = bytes.get_u64_le();
            let members = decode_members(&mut bytes)?;
            return Ok(Received::MembersReply {
                origin,
                request,
                members,
            });
        }
        KIND_QUESTION => {
            return Ok(Received::Question {
                origin,
                id,
                question: bytes,
            });
        }
        KIND_ANSWER_PART => {
            if bytes.remaining() < 16 {
                return Err(DecodeError::Truncated);
            }
            let question = bytes.get_u64_le();
            let index = bytes.get_u32_le();
            let count = bytes.get_u32_le();
            if index >= count {
                return Err(DecodeError::AnswerPart { index, count });
            }
            return Ok(Received::AnswerPart {
                origin,
                question,
                index,
                count,
                bytes,
            });
        }
        _ => {}
    }
    decode_delivery(origin, id, bytes).map(|m| Received::Delivery(Box::new(m)))
}

fn decode_disconnect(bytes: &mut Bytes) -> Result<ClusterOrder, DecodeError> {
    let kind = take_u8(bytes)?;
    if bytes.remaining() < 2 {
        return Err(DecodeError::Truncated);
    }
    let count = bytes.get_u16_le() as usize;
    let mut ids = Vec::with_capacity(count.min(bytes.remaining() / 2));
    for _ in 0..count {
        ids.push(take_long_str(bytes)?);
    }
    let target = match kind {
        TARGET_USERS => DisconnectTarget::Users(ids),
        TARGET_CLIENTS => DisconnectTarget::Clients(ids),
        other => return Err(DecodeError::Target(other)),
    };
    if bytes.remaining() < 2 {
        return Err(DecodeError::Truncated);
    }
    let code = bytes.get_u16_le();
    let reason = take_long_str(bytes)?;
    Ok(ClusterOrder::Disconnect {
        target,
        code,
        reason,
    })
}

fn decode_delivery(origin: Arc<str>, id: u64, mut bytes: Bytes) -> Result<Message, DecodeError> {
    let target_kind = take_u8(&mut bytes)?;
    if bytes.remaining() < 2 {
        return Err(DecodeError::Truncated);
    }
    let count = bytes.get_u16_le() as usize;
    let mut names = Vec::with_capacity(count.min(bytes.remaining() / 2));
    for _ in 0..count {
        if bytes.remaining() < 2 {
            return Err(DecodeError::Truncated);
        }
        let len = bytes.get_u16_le() as usize;
        names.push(take_str(&mut bytes, len)?.to_string());
    }
    let target = match target_kind {
        TARGET_EVERYONE => Target::Everyone,
        TARGET_USERS => Target::Users(names),
        TARGET_CHANNELS => Target::Channels(names),
        TARGET_CLIENTS => Target::Clients(names),
        TARGET_NAMESPACE => Target::Namespace(names.into_iter().next().unwrap_or_default()),
        other => return Err(DecodeError::Target(other)),
    };
    let (mut payload, mut event, mut sender, mut sender_name) = (None, None, None, None);
    let (mut audience, mut channel, mut except_clients) = (None, None, Vec::new());
    while bytes.has_remaining() {
        let tag = take_u8(&mut bytes)?;
        if bytes.remaining() < 4 {
            return Err(DecodeError::Truncated);
        }
        let len = bytes.get_u32_le() as usize;
        if bytes.remaining() < len {
            return Err(DecodeError::Truncated);
        }
        let value = bytes.split_to(len);
        match tag {
            FIELD_PAYLOAD => payload = Some(value),
            FIELD_EVENT => event = Some(text(value)?),
            FIELD_SENDER => sender = Some(text(value)?),
            FIELD_SENDER_NAME => sender_name = Some(text(value)?),
            FIELD_AUDIENCE => audience = Some(text(value)?),
            FIELD_CHANNEL => channel = Some(text(value)?),
            FIELD_EXCEPT_CLIENT => except_clients.push(text(value)?),
            // A field from a newer node: skipped.
            _ => {}
        }
    }
    let mut delivery = Delivery::from_raw_json(payload.ok_or(DecodeError::NoPayload)?);
    if let Some(event) = event {
        delivery = delivery.with_event(event);
    }
    match (sender, sender_name) {
        (Some(sender), name) => delivery = delivery.with_sender(sender, name),
        (None, Some(name)) => delivery = delivery.with_sender_name(name),
        (None, None) => {}
    }
    if let Some(audience) = audience {
        delivery = delivery.only_for(audience);
    }
    if let Some(channel) = channel {
        delivery = delivery.on_channel(channel);
    }
    if !except_clients.is_empty() {
        delivery = delivery.excluding_clients(except_clients);
    }
    Ok(Message {
        origin,
        id,
        target,
        delivery,
    })
}

/// Where messages travel on the backplane, under one cluster's prefix.
#[derive(Debug, Clone)]
pub struct Subjects {
    prefix: Arc<str>,
}

impl Subjects {
    /// `prefix` names the cluster: nodes with another prefix share nothing on the same server.
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: Arc::from(escape(prefix)),
        }
    }

    /// Every node listens here: user, client, namespace and everyone targets.
    pub fn all(&self) -> String {
        format!("{}.all", self.prefix)
    }

    /// Only node `node_id` listens here: answers to its presence requests.
    pub fn node(&self, node_id: &str) -> String {
        format!("{}.node.{}", self.prefix, escape(node_id))
    }

    /// Only nodes with a local member of `channel` listen here.
    pub fn channel(&self, channel: &str) -> String {
        format!("{}.ch.{}", self.prefix, escape(channel))
    }
}

/// A name safe as one token of a NATS subject (and a readable Redis channel): letters, digits,
/// `-` and `_` as they are, every other byte as `~` and two hex digits. Distinct names stay
/// distinct, so no node hears another channel's traffic.
fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("~{byte:02x}"));
        }
    }
    if out.is_empty() {
        out.push('~');
    }
    out
}

fn put_short(out: &mut BytesMut, value: &str) {
    let value = clip(value, u8::MAX as usize);
    out.put_u8(value.len() as u8);
    out.put_slice(value.as_bytes());
}

fn put_field(out: &mut BytesMut, tag: u8, value: &[u8]) {
    out.put_u8(tag);
    out.put_u32_le(value.len() as u32);
    out.put_slice(value);
}

/// The longest prefix of `value` within `max` bytes that ends on a character boundary.
fn clip(value: &str, max: usize) -> &str {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

fn take_u8(bytes: &mut Bytes) -> Result<u8, DecodeError> {
    if bytes.has_remaining() {
        Ok(bytes.get_u8())
    } else {
        Err(DecodeError::Truncated)
    }
}

fn take_str(bytes: &mut Bytes, len: usize) -> Result<String, DecodeError> {
    if bytes.remaining() < len {
        return Err(DecodeError::Truncated);
    }
    String::from_utf8(bytes.split_to(len).to_vec()).map_err(|_| DecodeError::Utf8)
}

fn take_long_str(bytes: &mut Bytes) -> Result<String, DecodeError> {
    if bytes.remaining() < 2 {
        return Err(DecodeError::Truncated);
    }
    let len = bytes.get_u16_le() as usize;
    take_str(bytes, len)
}

fn text(value: Bytes) -> Result<Arc<str>, DecodeError> {
    std::str::from_utf8(&value)
        .map(Arc::from)
        .map_err(|_| DecodeError::Utf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(target: Target, delivery: Delivery) -> Message {
        match decode(encode("node-a", 7, &target, &delivery)).expect("decodes") {
            Received::Delivery(message) => *message,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn presence_messages_survive_the_trip() {
        let members = vec![
            Member {
                client_id: "c1".into(),
                user_id: "u1".into(),
                username: Some("ada@example.com".into()),
                authenticated: true,
                dialect: "channel".into(),
            },
            Member {
                client_id: "c2".into(),
                user_id: "public".into(),
                username: None,
                authenticated: false,
                dialect: "jac".into(),
            },
        ];
        let reply = encode_members_reply("b", 9, 4, &members);
        match decode(reply.clone()).expect("decodes") {
            Received::MembersReply {
                origin,
                request,
                members: got,
            } => {
                assert_eq!((&*origin, request), ("b", 4));
                assert_eq!(got, members);
            }
            other => panic!("{other:?}"),
        }
        for cut in 0..reply.len() {
            assert!(decode(reply.slice(..cut)).is_err(), "cut {cut}");
        }
        match decode(encode_members_request("a", 4, "room")).expect("decodes") {
            Received::MembersRequest {
                origin,
                id,
                channel,
            } => {
                assert_eq!((&*origin, id, channel.as_str()), ("a", 4, "room"));
            }
            other => panic!("{other:?}"),
        }
        let figures = NodeFigures {
            connections: 12,
            uptime_secs: 345,
        };
        match decode(encode_alive("a", 1, figures)) {
            Ok(Received::Alive {
                origin,
                figures: got,
            }) => assert_eq!((&*origin, got), ("a", Some(figures))),
            other => panic!("{other:?}"),
        }
        // From a node that sends no figures.
        assert!(matches!(
            decode(header(KIND_ALIVE, "a", 2).freeze()),
            Ok(Received::Alive { figures: None, .. })
        ));
    }

    #[test]
    fn orders_survive_the_trip() {
        for change in [
            ClusterOrder::Revoked {
                user_id: "u1".into(),
            },
            ClusterOrder::RoleGranted {
                user_id: "u1".into(),
                email: "ada@example.com".into(),
            },
            ClusterOrder::Disconnect {
                target: DisconnectTarget::Users(vec!["u1".into(), "u2".into()]),
                code: 4100,
                reason: "bye".into(),
            },
            ClusterOrder::PublishIdSeen {
                api_key: "backend".into(),
                id: "order-17".into(),
            },
            ClusterOrder::Disconnect {
                target: DisconnectTarget::Clients(vec!["c1".into()]),
                code: 4000,
                reason: String::new(),
            },
        ] {
            let bytes = encode_order("node-a", 3, &change);
            match decode(bytes.clone()).expect("decodes") {
                Received::Order {
                    origin,
                    change: got,
                } => {
                    assert_eq!(&*origin, "node-a");
                    assert_eq!(got, change);
                }
                other => panic!("{other:?}"),
            }
            for cut in 0..bytes.len() {
                assert!(decode(bytes.slice(..cut)).is_err(), "cut {cut}");
            }
        }
    }

    #[test]
    fn every_delivery_field_and_target_survives_the_trip() {
        let delivery = Delivery::from_raw_json(Bytes::from_static(b"{\"x\":1}"))
            .with_event("online-update")
            .with_sender("client-1".into(), Some("ada@example.com".into()))
            .only_for("channel")
            .on_channel("room")
            .excluding_clients(["c1".into(), "c2".into()]);
        let message = round_trip(Target::Channels(vec!["room".into(), "é".into()]), delivery);
        assert_eq!(message.delivery.audience(), Some("channel"));
        assert_eq!(message.delivery.channel(), Some("room"));
        assert_eq!(
            message.delivery.excluded_clients(),
            [Arc::<str>::from("c1"), Arc::from("c2")]
        );
        assert_eq!(&*message.origin, "node-a");
        assert_eq!(message.id, 7);
        assert_eq!(
            message.target,
            Target::Channels(vec!["room".into(), "é".into()])
        );
        assert_eq!(&message.delivery.payload()[..], b"{\"x\":1}");
        assert_eq!(message.delivery.event(), Some("online-update"));
        assert_eq!(message.delivery.sender(), Some("client-1"));
        assert_eq!(message.delivery.sender_name(), Some("ada@example.com"));
        for target in [
            Target::Everyone,
            Target::Users(vec!["u".into()]),
            Target::Clients(vec!["c1".into(), "c2".into()]),
            Target::Namespace("chat".into()),
        ] {
            let plain = Delivery::from_raw_json(Bytes::from_static(b"1"));
            let message = round_trip(target.clone(), plain);
            assert_eq!(message.target, target);
            assert_eq!(message.delivery.event(), None);
            assert_eq!(message.delivery.sender(), None);
            assert_eq!(message.delivery.audience(), None);
            assert!(message.delivery.excluded_clients().is_empty());
        }
        // A name without a sender (a namespace's `broadcast_from`) crosses too.
        let named =
            Delivery::from_raw_json(Bytes::from_static(b"1")).with_sender_name("ada".into());
        let message = round_trip(Target::Namespace("chat".into()), named);
        assert_eq!(message.delivery.sender_name(), Some("ada"));
        assert_eq!(message.delivery.sender(), None);
    }

    #[test]
    fn an_unknown_field_is_skipped_and_damage_is_refused() {
        let delivery = Delivery::from_raw_json(Bytes::from_static(b"1"));
        let original = encode("a", 1, &Target::Everyone, &delivery);
        let mut bytes = BytesMut::from(&original[..]);
        put_field(&mut bytes, 200, b"from a newer node");
        let Received::Delivery(message) = decode(bytes.clone().freeze()).expect("decodes") else {
            panic!("not a delivery");
        };
        assert_eq!(&message.delivery.payload()[..], b"1");
        for cut in 0..original.len() {
            assert!(decode(original.slice(..cut)).is_err(), "cut {cut}");
        }
        let mut newer = bytes.clone();
        newer[0] = 9;
        assert_eq!(decode(newer.freeze()).unwrap_err(), DecodeError::Version(9));
    }

    #[test]
    fn a_large_answer_travels_in_parts_that_join_back() {
        let Received::Question {
            origin,
            id,
            question,
        } = decode(encode_question("a", 7, b"{\"log\":true}")).expect("decodes")
        else {
            panic!("not a question");
        };
        assert_eq!(
            (&*origin, id, &question[..]),
            ("a", 7, &b"{\"log\":true}"[..])
        );

        let answer: Vec<u8> = (0..ANSWER_PART_BYTES * 2 + 10).map(|i| i as u8).collect();
        let mut ids = 100..;
        let parts = encode_answer("b", || ids.next().unwrap(), 7, &answer);
        assert_eq!(parts.len(), 3);
        let mut joined = Vec::new();
        for (n, part) in parts.into_iter().enumerate() {
            assert!(
                part.len() <= ANSWER_PART_BYTES + 64,
                "part {n} is {}",
                part.len()
            );
            let Received::AnswerPart {
                origin,
                question,
                index,
                count,
                bytes,
            } = decode(part).expect("decodes")
            else {
                panic!("not an answer part");
            };
            assert_eq!((&*origin, question, index, count), ("b", 7, n as u32, 3));
            joined.extend_from_slice(&bytes);
        }
        assert_eq!(joined, answer);

        let empty = encode_answer("b", || 1, 7, b"");
        assert_eq!(empty.len(), 1, "an empty answer is still an answer");
        let mut bad = BytesMut::from(&empty[0][..]);
        let at = bad.len() - 8;
        bad[at..at + 4].copy_from_slice(&5u32.to_le_bytes());
        assert_eq!(
            decode(bad.freeze()).unwrap_err(),
            DecodeError::AnswerPart { index: 5, count: 1 }
        );
    }

    #[test]
    fn channel_subjects_are_one_token_and_distinct() {
        let subjects = Subjects::new("test.1");
        assert_eq!(subjects.all(), "test~2e1.all");
        assert_eq!(subjects.channel("room-1"), "test~2e1.ch.room-1");
        assert_eq!(subjects.channel("a.b *>"), "test~2e1.ch.a~2eb~20~2a~3e");
        assert_ne!(subjects.channel("a~2e"), subjects.channel("a."));
        assert_eq!(subjects.channel(""), "test~2e1.ch.~");
    }
}
