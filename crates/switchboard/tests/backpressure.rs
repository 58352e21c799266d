//! A client that stops reading is cut off at its queue bound; everyone else keeps receiving.

mod common;

use std::time::Duration;

use common::TestServer;
use futures_util::StreamExt;
use serde_json::json;
use switchboard_client::{ConnectOptions, Incoming};

const QUEUE_BYTES: usize = 2 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_reader_is_closed_as_slow_consumer_while_others_keep_receiving() {
    let server = TestServer::start_with(|c| {
        c.limits.outbound_queue_messages = 512;
        c.limits.outbound_queue_bytes = QUEUE_BYTES;
    })
    .await;
    let mut stalled = server
        .connect_with(ConnectOptions::default().channel("firehose"))
        .await;
    let mut healthy = server
        .connect_with(ConnectOptions::default().channel("firehose"))
        .await;

    // The healthy reader counts frames until the end marker.
    let reader = tokio::spawn(async move {
        let mut received = 0u64;
        loop {
            let message =
                tokio::time::timeout(Duration::from_secs(30), healthy.socket_mut().next())
                    .await
                    .expect("healthy reader starved")
                    .expect("stream ended")
                    .expect("read");
            let text = message.as_text().expect("text");
            if text.contains("\"end\"") {
                return (received, healthy);
            }
            received += 1;
        }
    });

    let blob = "x".repeat(8 * 1024);
    let mut published = 0u64;
    let mut max_queued = 0u64;
    while published < 20_000 {
        server
            .app
            .notify_channels(&["firehose"], &json!({"seq": published, "blob": blob}));
        published += 1;
        max_queued = max_queued.max(server.metric(|m| &m.outbound_queued_bytes));
        if published % 8 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if server.metric(|m| &m.slow_consumer_closes) > 0 && published > 200 {
            break;
        }
    }
    // Keep publishing a little after the cut so we see the others are unaffected.
    for _ in 0..200 {
        server
            .app
            .notify_channels(&["firehose"], &json!({"seq": published, "blob": blob}));
        published += 1;
        if published % 8 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    server.app.notify_channels(&["firehose"], &json!("end"));

    assert_eq!(
        server.metric(|m| &m.slow_consumer_closes),
        1,
        "exactly the stalled reader"
    );
    assert!(server.metric(|m| &m.frames_dropped_slow_consumer) > 0);
    let (received, _healthy) = reader.await.expect("reader");
    assert_eq!(received, published, "the healthy reader lost nothing");
    // Two queues of at most QUEUE_BYTES each, never more.
    assert!(
        max_queued <= 2 * QUEUE_BYTES as u64,
        "queued bytes peaked at {max_queued}"
    );

    // The stalled reader finds its backlog and then the end of the connection.
    let mut frames = 0u64;
    let ending = loop {
        match stalled.recv(Duration::from_secs(10)).await {
            Ok(Incoming::Json(_)) => frames += 1,
            other => break other,
        }
    };
    assert!(frames < published, "it was cut off before the end");
    match ending {
        Ok(Incoming::Closed { code, .. }) => {
            assert!(code.is_none() || code == Some(4008), "{code:?}")
        }
        Err(switchboard_client::ClientError::WebSocket(_)) => {} // reset after the grace period
        other => panic!("expected the connection to end, got {other:?}"),
    }
    assert_eq!(server.app.hub().channel_size("firehose"), 1);
}
