//! What others watch in the hub: channel membership (presence and the broker's interest
//! subscribe to it) and slow consumers (the statistics count their drops per namespace).

use std::sync::Arc;

use super::Connection;

/// A change of one channel's local membership.
#[derive(Debug)]
pub enum ChannelEvent<'a> {
    /// `conn` joined `channel`; `first` when the channel had no member on this node before.
    Joined {
        channel: &'a str,
        conn: &'a Arc<Connection>,
        first: bool,
    },
    /// `conn` left `channel` (or disconnected); `last` when no member on this node remains.
    Left {
        channel: &'a str,
        conn: &'a Arc<Connection>,
        last: bool,
    },
}

/// Told of every join and leave on the hub's channels.
///
/// Called while the hub holds that channel's index entry, so events of one channel arrive in the
/// order they happened (a `first` never overtakes the `last` before it). An observer must
/// therefore be quick and must not call back into the hub: queue work for a task of its own.
pub trait ChannelObserver: Send + Sync + std::fmt::Debug + 'static {
    fn on_channel_event(&self, event: &ChannelEvent<'_>);
}

/// Told when a connection's outbound queue overflowed (a slow consumer about to be closed), with
/// how many frames were thrown away. Called on the sending task: must be quick.
pub trait OverflowObserver: Send + Sync + std::fmt::Debug + 'static {
    fn on_overflow(&self, conn: &Connection, dropped: usize);
}
