//! A cluster over NATS core (no JetStream: a message is for the nodes listening now).
//!
//! One client per node. It subscribes to `<prefix>.all` and to one `<prefix>.ch.<channel>` per
//! channel with a local member; the NATS client re-sends every subscription after a reconnect.
//! A monitor watches the connection every [`CHECK_EVERY`]: the node reports up only once the
//! client is connected and a flush (a server round trip after the re-sent subscriptions) came back.
//! NATS delivers one connection's messages on a subject in order, which gives per-publisher order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use super::BackplaneError;
use super::backplane::{Backplane, Outgoing, Receivers};
use super::engine::{BackplaneBroker, Engine};

/// How often the monitor checks the connection.
const CHECK_EVERY: Duration = Duration::from_millis(200);
/// The longest a connect or flush may take.
const TIMEOUT: Duration = Duration::from_secs(2);
/// The client pings the server this often and drops the connection after two unanswered
/// pings: a hung server counts as down within about three intervals.
const PING_EVERY: Duration = Duration::from_secs(1);
/// The pause between reconnect attempts.
const RETRY_EVERY: Duration = Duration::from_millis(200);
/// Messages the client buffers per subscription before it drops (and reports) a slow consumer.
const SUBSCRIPTION_CAPACITY: usize = 8192;
/// Commands the client buffers while its server is slow; past it the writer waits, and sends
/// wait in (and then overflow) the backplane's own bounded queue.
const CLIENT_CAPACITY: usize = 256;

/// NATS as a backplane engine: the servers a node's client connects to.
#[derive(Debug)]
pub struct Nats {
    url: String,
}

/// A node's broker over NATS at `url` (`nats://host:port`, or several separated by commas). It
/// connects when attached to a hub.
pub fn broker(
    url: &str,
    node_id: &str,
    prefix: &str,
) -> Result<Arc<BackplaneBroker<Nats>>, BackplaneError> {
    for server in url.split(',') {
        server
            .trim()
            .parse::<async_nats::ServerAddr>()
            .map_err(|err| BackplaneError::Url {
                url: url.to_string(),
                reason: err.to_string(),
            })?;
    }
    let engine = Nats {
        url: url.to_string(),
    };
    Ok(BackplaneBroker::new(engine, node_id, prefix))
}

impl Engine for Nats {
    fn start(&self, backplane: Arc<Backplane>, receivers: Receivers, stop: CancellationToken) {
        tokio::spawn(run(backplane, self.url.clone(), receivers, stop));
    }
}

/// Connect (retrying in the background), then run the writer, the subscriptions and the monitor.
async fn run(
    backplane: Arc<Backplane>,
    url: String,
    receivers: Receivers,
    stop: CancellationToken,
) {
    let events = backplane.clone();
    let options = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|_| RETRY_EVERY)
        .connection_timeout(TIMEOUT)
        .ping_interval(PING_EVERY)
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
        .client_capacity(CLIENT_CAPACITY)
        .event_callback(move |event| {
            let events = events.clone();
            async move {
                match event {
                    async_nats::Event::SlowConsumer(_) => events.dropped(1),
                    async_nats::Event::Disconnected => {
                        events.set_writer_up(false);
                        tracing::warn!("backplane connection lost");
                    }
                    _ => {}
                }
            }
        });
    let client = tokio::select! {
        () = stop.cancelled() => return,
        client = options.connect(url.as_str()) => match client {
            Ok(client) => client,
            Err(err) => {
                tracing::error!(%err, "backplane client could not start");
                return;
            }
        },
    };
    let Receivers {
        queue,
        interest_changes,
    } = receivers;
    tokio::spawn(write(
        backplane.clone(),
        client.clone(),
        queue,
        stop.clone(),
    ));
    let mut subscriptions = Subscriptions {
        backplane: backplane.clone(),
        client: client.clone(),
        held: HashMap::new(),
    };
    subscriptions.hold(Held::All).await;
    subscriptions.hold(Held::Node).await;
    for channel in backplane.wanted_channels() {
        subscriptions.sync(&channel).await;
    }
    let mut changes = interest_changes;
    let mut check = tokio::time::interval(CHECK_EVERY);
    let mut connected_before = false;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(channel) = changes.recv() => subscriptions.sync(&channel).await,
            _ = check.tick() => {
                let connected = client.connection_state() == State::Connected;
                if connected && !backplane.is_up() {
                    // The flush returns after the server has every subscription sent before it.
                    if matches!(tokio::time::timeout(TIMEOUT, client.flush()).await, Ok(Ok(()))) {
                        if connected_before {
                            backplane.reconnected();
                            tracing::info!("backplane subscriptions restored");
                        }
                        connected_before = true;
                        backplane.set_reader_up(true);
                        backplane.set_writer_up(true);
                    }
                } else if !connected {
                    backplane.set_reader_up(false);
                    backplane.set_writer_up(false);
                }
            }
        }
    }
    subscriptions.release_all();
}

/// Publishes queued sends while the client is connected; counts them otherwise.
async fn write(
    backplane: Arc<Backplane>,
    client: async_nats::Client,
    mut queue: mpsc::Receiver<Outgoing>,
    stop: CancellationToken,
) {
    let mut batch = Vec::new();
    loop {
        let got = tokio::select! {
            () = stop.cancelled() => return,
            got = backplane.next_batch(&mut queue, &mut batch) => got,
        };
        if got.is_none() {
            return;
        }
        if client.connection_state() != State::Connected {
            backplane.not_relayed(batch.len());
            continue;
        }
        let mut sent = 0;
        'batch: for send in &batch {
            for subject in &send.subjects {
                if let Err(err) = client.publish(subject.clone(), send.bytes.clone()).await {
                    tracing::warn!(%err, "backplane publish failed");
                    break 'batch;
                }
            }
            sent += 1;
        }
        if sent < batch.len() {
            backplane.not_relayed(batch.len() - sent);
        }
        if queue.is_empty() {
            // Idle: push what the client buffered to the server now.
            let _ = tokio::time::timeout(TIMEOUT, client.flush()).await;
        }
        backplane.sent(sent);
    }
}

/// The subjects this node holds, each read by a task of its own (per-subject order is kept;
/// dropping a subscriber unsubscribes it).
struct Subscriptions {
    backplane: Arc<Backplane>,
    client: async_nats::Client,
    held: HashMap<Held, AbortHandle>,
}

/// One subject this node holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Held {
    /// `<prefix>.all`
    All,
    /// This node's own subject (answers to its presence requests).
    Node,
    /// A channel with local members.
    Channel(Arc<str>),
}

impl Subscriptions {
    /// Subscribe to a subject if not held yet.
    async fn hold(&mut self, held: Held) {
        if self.held.contains_key(&held) {
            return;
        }
        let subjects = self.backplane.subjects();
        let subject = match &held {
            Held::All => subjects.all(),
            Held::Node => subjects.node(self.backplane.node_id()),
            Held::Channel(channel) => subjects.channel(channel),
        };
        // Sent to the client's own task; it fails only once the client is gone for good.
        let mut subscriber = match self.client.subscribe(subject).await {
            Ok(subscriber) => subscriber,
            Err(err) => {
                tracing::error!(%err, "backplane subscription failed");
                return;
            }
        };
        let backplane = self.backplane.clone();
        let task = tokio::spawn(async move {
            while let Some(message) = subscriber.next().await {
                backplane.receive(message.payload);
            }
        });
        self.held.insert(held, task.abort_handle());
    }

    /// Follow one interest change.
    async fn sync(&mut self, channel: &Arc<str>) {
        let key = Held::Channel(channel.clone());
        if self.backplane.wants(channel) {
            self.hold(key).await;
        } else if let Some(task) = self.held.remove(&key) {
            task.abort();
        }
    }

    fn release_all(&mut self) {
        for (_, task) in self.held.drain() {
            task.abort();
        }
    }
}
