//! A message on its way to many connections, and how each dialect turns it into a frame.
//!
//! The hub knows no dialect: each registered dialect contributes a [`FrameEncoder`], found by the
//! connection's [`DialectId`]. A delivery's frame is encoded at most once per dialect, or once per
//! dialect and channel for encoders whose frame names the channel, and shared as `Bytes` by every
//! recipient.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde::Serialize;

/// Most dialects one app can register; the size of each delivery's frame cache.
pub const MAX_DIALECTS: usize = 8;

/// Index of a registered dialect's encoder in the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DialectId(pub(crate) u8);

impl DialectId {
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// Where one copy of a delivery is going: what an encoder may put into its frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct Route<'a> {
    /// The channel the recipient is reached through, for channel deliveries.
    pub channel: Option<&'a str>,
    /// The namespace the recipient is reached through, for namespace deliveries.
    pub namespace: Option<&'a str>,
}

/// Turns a delivery into the frame one dialect sends.
pub trait FrameEncoder: Send + Sync + std::fmt::Debug + 'static {
    /// The name of the dialect whose frames these are (`jac`, `namespace`, `channel`): what
    /// [`Delivery::only_for`] and presence listings name it by.
    fn dialect(&self) -> &'static str;

    /// Whether the frame depends on [`Route::channel`]; if not, one frame serves every channel.
    fn frame_names_channel(&self) -> bool {
        false
    }

    /// The frame for `delivery` going along `route`.
    fn encode(&self, delivery: &Delivery, route: &Route<'_>) -> Bytes;

    /// Whether this dialect's connections receive `delivery` at all. A delivery meant for one
    /// dialect only (see [`Delivery::only_for`]) reaches no other by default; an encoder whose
    /// dialect is that audience says yes. Asked once per dialect and delivery, never per
    /// recipient.
    fn carries(&self, delivery: &Delivery) -> bool {
        delivery
            .audience()
            .is_none_or(|audience| audience == self.dialect())
    }
}

/// The payload of one send, plus what dialects may need to frame it. Recipients share the
/// encoded bytes: a message to N connections is serialized once per distinct frame, not N times.
#[derive(Debug)]
pub struct Delivery {
    payload: Bytes,
    /// An application event name (e.g. `online-update`), for dialects whose frames carry one.
    event: Option<Arc<str>>,
    /// The client id of the connection that sent it, when a client did.
    sender: Option<Arc<str>>,
    /// The sender's username, when a client did and it has one.
    sender_name: Option<Arc<str>>,
    /// A connection of this node that must not receive it (the sender, for "everyone but me"
    /// sends). Keys are per node, so a copy relayed to another node excludes no one there.
    except: Option<super::ConnKey>,
    /// Client ids that must not receive it, on any node (a server send "to all but these").
    except_clients: Box<[Arc<str>]>,
    /// The name of the only dialect whose connections receive it (presence frames exist in the
    /// channel dialect only). A name, not a [`DialectId`], so it means the same on every node.
    audience: Option<Arc<str>>,
    /// The channel a send speaks for when its route names none (a direct or broadcast send of a
    /// channel-dialect message).
    channel: Option<Arc<str>>,
    /// Frames of route-independent encoders, by dialect.
    encoded: [OnceLock<Bytes>; MAX_DIALECTS],
}

impl Delivery {
    /// From raw JSON text that is already valid (for example a client's `data`, kept verbatim).
    pub fn from_raw_json(payload: Bytes) -> Self {
        Self {
            payload,
            event: None,
            sender: None,
            sender_name: None,
            except: None,
            except_clients: Box::default(),
            audience: None,
            channel: None,
            encoded: Default::default(),
        }
    }

    /// Serialize `data` once.
    pub fn from_json<T: Serialize + ?Sized>(data: &T) -> Result<Self, serde_json::Error> {
        Ok(Self::from_raw_json(Bytes::from(serde_json::to_vec(data)?)))
    }

    /// Name the application event this payload is.
    pub fn with_event(mut self, event: impl Into<Arc<str>>) -> Self {
        self.event = Some(event.into());
        self
    }

    /// Record which connection (client id, username) sent it.
    pub fn with_sender(mut self, client_id: Arc<str>, username: Option<Arc<str>>) -> Self {
        self.sender = Some(client_id);
        self.sender_name = username;
        self
    }

    /// Record the name a server-side send speaks under (no client sent it).
    pub fn with_sender_name(mut self, username: Arc<str>) -> Self {
        self.sender_name = Some(username);
        self
    }

    /// Skip one connection of this node (the sender) when delivering.
    pub fn excluding(mut self, conn: super::ConnKey) -> Self {
        self.except = Some(conn);
        self
    }

    /// The connection this delivery skips on this node, if any.
    pub fn excluded(&self) -> Option<super::ConnKey> {
        self.except
    }

    /// Skip the connections with these client ids, on every node.
    pub fn excluding_clients(mut self, client_ids: impl IntoIterator<Item = Arc<str>>) -> Self {
        self.except_clients = client_ids.into_iter().collect();
        self
    }

    /// The client ids this delivery skips on every node.
    pub fn excluded_clients(&self) -> &[Arc<str>] {
        &self.except_clients
    }

    /// Reach only the connections of the dialect named `dialect` (see [`FrameEncoder::carries`]).
    pub fn only_for(mut self, dialect: impl Into<Arc<str>>) -> Self {
        self.audience = Some(dialect.into());
        self
    }

    /// The only dialect this delivery reaches, if it is restricted to one.
    pub fn audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// Name the channel this send speaks for when its route names none.
    pub fn on_channel(mut self, channel: impl Into<Arc<str>>) -> Self {
        self.channel = Some(channel.into());
        self
    }

    /// The channel named by [`Delivery::on_channel`].
    pub fn channel(&self) -> Option<&str> {
        self.channel.as_deref()
    }

    /// The same message with an empty frame cache, as another node receives it.
    pub fn relayed(&self) -> Self {
        Self {
            payload: self.payload.clone(),
            event: self.event.clone(),
            sender: self.sender.clone(),
            sender_name: self.sender_name.clone(),
            except: None,
            except_clients: self.except_clients.clone(),
            audience: self.audience.clone(),
            channel: self.channel.clone(),
            encoded: Default::default(),
        }
    }

    /// The JSON payload as given.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    pub fn event(&self) -> Option<&str> {
        self.event.as_deref()
    }

    pub fn sender(&self) -> Option<&str> {
        self.sender.as_deref()
    }

    pub fn sender_name(&self) -> Option<&str> {
        self.sender_name.as_deref()
    }

    /// The sender's username, shared (the activity log keeps it without copying).
    pub(crate) fn sender_name_shared(&self) -> Option<&Arc<str>> {
        self.sender_name.as_ref()
    }

    /// The frame of a route-independent encoder, encoded on first use; empty when the
    /// encoder's dialect does not carry this delivery.
    pub(crate) fn shared_frame(&self, dialect: DialectId, encoder: &dyn FrameEncoder) -> Bytes {
        self.encoded[dialect.index()]
            .get_or_init(|| encode_if_carried(encoder, self, &Route::default()))
            .clone()
    }
}

/// The encoder's frame, or an empty one (never a valid text message of any dialect, so free to
/// mean "skip this recipient") when its dialect does not carry the delivery.
fn encode_if_carried(encoder: &dyn FrameEncoder, delivery: &Delivery, route: &Route<'_>) -> Bytes {
    if encoder.carries(delivery) {
        encoder.encode(delivery, route)
    } else {
        Bytes::new()
    }
}

/// The frames of one fan-out: shared per dialect, and per route for encoders that name the
/// channel (reset when the fan-out moves to the next channel).
pub(crate) struct FrameCache<'a> {
    delivery: &'a Delivery,
    encoders: &'a [Arc<dyn FrameEncoder>],
    per_route: [Option<Bytes>; MAX_DIALECTS],
}

impl<'a> FrameCache<'a> {
    pub(crate) fn new(delivery: &'a Delivery, encoders: &'a [Arc<dyn FrameEncoder>]) -> Self {
        Self {
            delivery,
            encoders,
            per_route: Default::default(),
        }
    }

    /// Whether the delivery skips this connection. The client-id list is empty for all but
    /// server sends that name exceptions, so a recipient usually costs one comparison here.
    pub(crate) fn excludes(&self, conn: &super::Connection) -> bool {
        self.delivery.except == Some(conn.key)
            || (!self.delivery.except_clients.is_empty()
                && self
                    .delivery
                    .except_clients
                    .iter()
                    .any(|id| id == conn.client_id()))
    }

    /// Forget route-specific frames (the fan-out moved to another channel).
    pub(crate) fn next_route(&mut self) {
        self.per_route = Default::default();
    }

    /// The frame for a connection of `dialect` along `route`; empty when that dialect does not
    /// carry the delivery (the caller skips the recipient).
    pub(crate) fn frame(&mut self, dialect: DialectId, route: &Route<'_>) -> Bytes {
        let Some(encoder) = self.encoders.get(dialect.index()) else {
            return self.delivery.payload.clone();
        };
        if route.channel.is_some() && encoder.frame_names_channel() {
            return self.per_route[dialect.index()]
                .get_or_insert_with(|| encode_if_carried(&**encoder, self.delivery, route))
                .clone();
        }
        self.delivery.shared_frame(dialect, &**encoder)
    }
}
