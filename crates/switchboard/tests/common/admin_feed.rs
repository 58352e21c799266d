//! The admin dashboard's feed (`/admin/ws`) as a test reads it: open it with an admin token,
//! wait for a frame of a kind, send a command.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_websockets::{ClientBuilder, MaybeTlsStream, Message, WebSocketStream};

use super::TestServer;

pub type Feed = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn open_feed(server: &TestServer, token: &str) -> Feed {
    let url = format!("{}/admin/ws?auth={token}", server.ws);
    let (feed, _) = ClientBuilder::new()
        .uri(&url)
        .expect("uri")
        .connect()
        .await
        .expect("feed");
    feed
}

/// The next frame of `kind`, skipping others.
pub async fn next_of(feed: &mut Feed, kind: &str) -> Value {
    let wait = async {
        loop {
            let message = feed.next().await.expect("open").expect("frame");
            let frame: Value =
                serde_json::from_str(message.as_text().expect("text")).expect("json");
            if frame["type"] == kind {
                return frame;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .unwrap_or_else(|_| panic!("no {kind} frame"))
}

/// The first snapshot for which `done` holds.
pub async fn snapshot_when(feed: &mut Feed, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..10 {
        let snapshot = next_of(feed, "snapshot").await;
        if done(&snapshot) {
            return snapshot;
        }
    }
    panic!("no matching snapshot");
}

pub async fn command(feed: &mut Feed, value: Value) {
    feed.send(Message::text(value.to_string()))
        .await
        .expect("send");
}
