//! Who a delivery is for, in the hub's dialect-neutral terms.

/// The recipients of one delivery. Ids a hub does not know are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every connection of these users (user ids; see [`crate::identity::user_id_of_address`]).
    Users(Vec<String>),
    /// Every connection subscribed to these channels.
    Channels(Vec<String>),
    /// The connections with these client ids.
    Clients(Vec<String>),
    /// Every connection of one namespace (the namespace dialect's endpoints), by name.
    Namespace(String),
    /// Every connection.
    Everyone,
}
