//! The client-id index's entry: the socket, or sockets, known by one client id.
//!
//! Most client ids name one socket (the Jac Cloud dialect generates a fresh id per socket), so the
//! common case holds a single `Arc` inline and allocates nothing more. A dialect whose clients
//! choose their id (the namespace dialect's `?uuid=`, shared by a browser's tabs) may register
//! several sockets under one id: a send to the id reaches each of them, and closing one removes
//! only that one.

use std::sync::Arc;

use super::connection::{ConnKey, Connection};

/// The sockets registered under one client id (never empty while in the index).
#[derive(Debug)]
pub(crate) enum ClientSlot {
    One(Arc<Connection>),
    /// Boxed so the common single-socket entry stays two words wide (a bare `Vec` would make
    /// every entry three).
    #[allow(clippy::box_collection)]
    Several(Box<Vec<Arc<Connection>>>),
}

impl ClientSlot {
    pub(crate) fn first(&self) -> &Arc<Connection> {
        match self {
            ClientSlot::One(conn) => conn,
            ClientSlot::Several(conns) => &conns[0],
        }
    }

    pub(crate) fn iter(&self) -> std::slice::Iter<'_, Arc<Connection>> {
        match self {
            ClientSlot::One(conn) => std::slice::from_ref(conn).iter(),
            ClientSlot::Several(conns) => conns.iter(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            ClientSlot::One(_) => 1,
            ClientSlot::Several(conns) => conns.len(),
        }
    }

    /// Add another socket under the same id.
    pub(crate) fn push(&mut self, conn: Arc<Connection>) {
        match self {
            ClientSlot::One(first) => {
                *self = ClientSlot::Several(Box::new(vec![first.clone(), conn]));
            }
            ClientSlot::Several(conns) => conns.push(conn),
        }
    }

    /// Remove the socket with `key`; returns whether it was here. The caller drops an emptied
    /// slot from the index.
    pub(crate) fn remove(&mut self, key: ConnKey) -> bool {
        match self {
            ClientSlot::One(conn) => conn.key == key,
            ClientSlot::Several(conns) => {
                let before = conns.len();
                conns.retain(|conn| conn.key != key);
                let removed = conns.len() != before;
                if conns.len() == 1 {
                    *self = ClientSlot::One(conns[0].clone());
                }
                removed
            }
        }
    }

    /// Whether removing `key` (see [`ClientSlot::remove`]) empties the slot.
    pub(crate) fn only(&self, key: ConnKey) -> bool {
        matches!(self, ClientSlot::One(conn) if conn.key == key)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_entry_is_two_words() {
        assert_eq!(
            std::mem::size_of::<super::ClientSlot>(),
            2 * std::mem::size_of::<usize>()
        );
    }
}
