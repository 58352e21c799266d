//! Channel membership as others see it: presence and the broker's interest subscribe here.

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
