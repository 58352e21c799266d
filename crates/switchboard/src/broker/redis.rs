//! A cluster over Redis pub/sub.
//!
//! Two connections per node: a writer that publishes queued sends in pipelined batches, and a
//! subscriber that holds `<prefix>.all` plus one `<prefix>.ch.<channel>` per channel with a local
//! member. Both check the server every [`PING_EVERY`] and reconnect after [`RETRY_EVERY`]; after a
//! reconnect the subscriber subscribes to everything the node wants before the node reports up.
//! Redis delivers one connection's publishes to a subscriber in order, which gives per-publisher
//! order on every node.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use redis::AsyncConnectionConfig;
use redis::aio::{MultiplexedConnection, PubSubSink};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::BackplaneError;
use super::backplane::{Backplane, InterestChange, Outgoing, Receivers};
use super::engine::{BackplaneBroker, Engine};

/// How often an idle connection is checked: a dead server shows within this plus [`TIMEOUT`].
const PING_EVERY: Duration = Duration::from_millis(500);
/// The longest a connect, subscribe, publish or ping may take before the link counts as down.
const TIMEOUT: Duration = Duration::from_secs(2);
/// The pause between reconnect attempts.
const RETRY_EVERY: Duration = Duration::from_millis(200);

/// Redis as a backplane engine: the server a node's two connections go to.
#[derive(Debug)]
pub struct Redis {
    client: redis::Client,
}

/// A node's broker over the Redis server at `url` (`redis://host:port[/db]`). It connects when
/// attached to a hub.
pub fn broker(
    url: &str,
    node_id: &str,
    prefix: &str,
) -> Result<Arc<BackplaneBroker<Redis>>, BackplaneError> {
    let client = redis::Client::open(url).map_err(|err| BackplaneError::Url {
        url: url.to_string(),
        reason: err.to_string(),
    })?;
    Ok(BackplaneBroker::new(Redis { client }, node_id, prefix))
}

impl Engine for Redis {
    fn start(&self, backplane: Arc<Backplane>, receivers: Receivers, stop: CancellationToken) {
        tokio::spawn(write(
            backplane.clone(),
            self.client.clone(),
            receivers.queue,
            stop.clone(),
        ));
        tokio::spawn(read(
            backplane,
            self.client.clone(),
            receivers.interest_changes,
            stop,
        ));
    }
}

/// The writer: publishes queued sends, a batch per round trip, in queue order.
async fn write(
    backplane: Arc<Backplane>,
    client: redis::Client,
    mut queue: mpsc::Receiver<Outgoing>,
    stop: CancellationToken,
) {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(Some(TIMEOUT));
    let mut batch = Vec::new();
    loop {
        let losses = backplane.losses();
        match client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(mut conn) => {
                backplane.set_writer_up(true);
                let mut writer = Writer {
                    backplane: &backplane,
                    conn: &mut conn,
                    losses,
                };
                let ended = writer.run(&mut queue, &mut batch, &stop).await;
                backplane.set_writer_up(false);
                match ended {
                    Ended::Stopped => return,
                    // A batch not sent yet goes out on the next connection.
                    Ended::Stale => continue,
                    Ended::Failed => {}
                }
            }
            Err(err) => tracing::debug!(%err, "backplane writer cannot connect"),
        }
        // Down: what was queued before the link fell is counted, not kept.
        backplane.not_relayed(batch.len());
        batch.clear();
        let retry = tokio::time::sleep(RETRY_EVERY);
        tokio::pin!(retry);
        loop {
            tokio::select! {
                _ = &mut retry => break,
                () = stop.cancelled() => return,
                got = backplane.next_batch(&mut queue, &mut batch) => {
                    if got.is_none() {
                        return;
                    }
                    backplane.not_relayed(batch.len());
                    batch.clear();
                }
            }
        }
    }
}

/// Why a writer connection ended.
enum Ended {
    /// The broker is gone.
    Stopped,
    /// The connection failed; what it was sending is counted.
    Failed,
    /// The reader lost the server since this connection opened; `batch` holds what is unsent.
    Stale,
}

/// One writer connection.
struct Writer<'a> {
    backplane: &'a Backplane,
    conn: &'a mut MultiplexedConnection,
    /// The reader's losses when this connection opened.
    losses: u64,
}

impl Writer<'_> {
    /// Publish until the connection fails, goes stale or the broker is gone. Starts with `batch`
    /// if it holds sends carried over from a stale connection.
    async fn run(
        &mut self,
        queue: &mut mpsc::Receiver<Outgoing>,
        batch: &mut Vec<Outgoing>,
        stop: &CancellationToken,
    ) -> Ended {
        let mut ping = tokio::time::interval(PING_EVERY);
        loop {
            if !batch.is_empty() {
                if self.backplane.losses() != self.losses {
                    return Ended::Stale;
                }
                let mut pipe = redis::pipe();
                for send in batch.iter() {
                    for subject in &send.subjects {
                        pipe.cmd("PUBLISH")
                            .arg(subject)
                            .arg(&send.bytes[..])
                            .ignore();
                    }
                }
                if let Err(err) = pipe.query_async::<()>(&mut *self.conn).await {
                    // Some of the batch may have gone out; none of it is reported relayed.
                    tracing::warn!(%err, "backplane publish failed");
                    return Ended::Failed;
                }
                self.backplane.sent(batch.len());
                batch.clear();
            }
            tokio::select! {
                () = stop.cancelled() => return Ended::Stopped,
                got = self.backplane.next_batch(queue, batch) => {
                    if got.is_none() {
                        return Ended::Stopped;
                    }
                }
                _ = ping.tick() => {
                    if self.backplane.losses() != self.losses {
                        return Ended::Stale;
                    }
                    if let Err(err) = redis::cmd("PING").query_async::<()>(&mut *self.conn).await {
                        tracing::warn!(%err, "backplane writer lost the server");
                        return Ended::Failed;
                    }
                }
            }
        }
    }
}

/// The subscriber: holds every subject the node wants, across reconnects.
async fn read(
    backplane: Arc<Backplane>,
    client: redis::Client,
    mut changes: mpsc::UnboundedReceiver<InterestChange>,
    stop: CancellationToken,
) {
    let mut connected_before = false;
    loop {
        match tokio::time::timeout(TIMEOUT, client.get_async_pubsub()).await {
            Ok(Ok(pubsub)) => {
                let (sink, mut stream) = pubsub.split();
                let mut subscriber = Subscriber {
                    backplane: &backplane,
                    sink,
                    held: HashSet::new(),
                };
                // Every change so far is in `wanted_channels`; the backlog needs no replay.
                while changes.try_recv().is_ok() {}
                if subscriber.subscribe_wanted().await.is_ok() {
                    if connected_before {
                        backplane.reconnected();
                        tracing::info!("backplane subscriptions restored");
                    }
                    connected_before = true;
                    backplane.set_reader_up(true);
                    let mut ping = tokio::time::interval(PING_EVERY);
                    loop {
                        tokio::select! {
                            () = stop.cancelled() => return,
                            message = stream.next() => match message {
                                Some(message) => backplane.receive(Bytes::copy_from_slice(message.get_payload_bytes())),
                                None => break,
                            },
                            Some(channel) = changes.recv() => {
                                if subscriber.sync(&channel).await.is_err() {
                                    break;
                                }
                            }
                            _ = ping.tick() => {
                                if !matches!(tokio::time::timeout(TIMEOUT, subscriber.sink.ping::<redis::Value>()).await, Ok(Ok(_))) {
                                    break;
                                }
                            }
                        }
                    }
                    tracing::warn!("backplane subscriber lost the server");
                    backplane.reader_lost();
                }
            }
            Ok(Err(err)) => tracing::debug!(%err, "backplane subscriber cannot connect"),
            Err(_) => tracing::debug!("backplane subscriber connect timed out"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(RETRY_EVERY) => {}
        }
    }
}

/// The subscribing half of one pub/sub connection and what it holds.
struct Subscriber<'a> {
    backplane: &'a Backplane,
    sink: PubSubSink,
    held: HashSet<String>,
}

/// The connection failed; the caller reconnects.
struct Lost;

impl Subscriber<'_> {
    async fn subscribe_wanted(&mut self) -> Result<(), Lost> {
        self.subscribe(self.backplane.subjects().all()).await?;
        let own = self.backplane.subjects().node(self.backplane.node_id());
        self.subscribe(own).await?;
        for channel in self.backplane.wanted_channels() {
            self.subscribe(self.backplane.subjects().channel(&channel))
                .await?;
        }
        Ok(())
    }

    /// Make the subscription of `channel` match whether the node still has members there.
    async fn sync(&mut self, channel: &str) -> Result<(), Lost> {
        let subject = self.backplane.subjects().channel(channel);
        let wanted = self.backplane.wants(channel);
        if wanted && !self.held.contains(&subject) {
            self.subscribe(subject).await
        } else if !wanted && self.held.contains(&subject) {
            ok(tokio::time::timeout(TIMEOUT, self.sink.unsubscribe(&subject)).await)?;
            self.held.remove(&subject);
            Ok(())
        } else {
            Ok(())
        }
    }

    async fn subscribe(&mut self, subject: String) -> Result<(), Lost> {
        ok(tokio::time::timeout(TIMEOUT, self.sink.subscribe(&subject)).await)?;
        self.held.insert(subject);
        Ok(())
    }
}

fn ok<E: std::fmt::Display>(
    result: Result<Result<(), E>, tokio::time::error::Elapsed>,
) -> Result<(), Lost> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => {
            tracing::warn!(%err, "backplane subscription failed");
            Err(Lost)
        }
        Err(_) => {
            tracing::warn!("backplane subscription timed out");
            Err(Lost)
        }
    }
}
