//! Every dialect across nodes over real Redis and real NATS (issue 12): namespace relays and
//! handle sends, channel-dialect relays, presence and `members`, the cross-dialect mapping, and
//! `POST /api/publish`, each delivered exactly once on every node. Each test runs once per engine.

mod common;

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::TestServer;
use common::admin_feed::{command, next_of, open_feed};
use common::cluster::{Backplane, Cluster, Engine};
use serde_json::{Value, json};
use switchboard::config::ApiKeyConfig;
use switchboard::dialect::channel::api::Message;
use switchboard::dialect::namespace::{Namespace, NamespaceHandle, Relay};
use switchboard_client::channel::ChannelClient;
use switchboard_client::{
    ClientError, ConnectOptions, Incoming, JacClient, NamespaceClient, NamespaceOptions, http,
};

const QUIET: Duration = Duration::from_millis(400);
const API_KEY: &str = "cluster-backend-key-0123456789";

common::cluster::per_engine!(
    namespace_relays_cross_nodes_exactly_once,
    namespace_handle_sends_cross_nodes_exactly_once,
    channel_relays_cross_nodes_exactly_once,
    channel_server_sends_cross_nodes_exactly_once,
    channel_presence_crosses_nodes_to_channel_members_only,
    channel_members_span_nodes,
    dialects_meet_across_nodes,
    the_publish_api_reaches_other_nodes,
    the_stats_span_the_cluster,
    connections_are_listed_and_closed_on_every_node,
    the_admin_feed_taps_every_node,
);

/// Frames of any client, read until `wait` passes with nothing new; a close fails the test.
trait Frames {
    async fn next(&mut self, wait: Duration) -> Result<Incoming, ClientError>;

    async fn drain(&mut self, wait: Duration) -> Vec<Value> {
        let mut frames = Vec::new();
        loop {
            match self.next(wait).await {
                Ok(Incoming::Json(frame)) => frames.push(frame),
                Ok(Incoming::Closed { code, reason }) => panic!("closed {code:?} {reason}"),
                Err(ClientError::Timeout) => return frames,
                Err(err) => panic!("{err}"),
            }
        }
    }

    /// The frames that arrive now must be exactly `expected`, once.
    async fn expect_once(&mut self, expected: Value) {
        let frames = self.drain(QUIET).await;
        assert_eq!(frames, vec![expected], "exactly once");
    }

    async fn expect_silent(&mut self) {
        let frames = self.drain(QUIET).await;
        assert!(frames.is_empty(), "expected nothing, got {frames:?}");
    }
}

impl Frames for JacClient {
    async fn next(&mut self, wait: Duration) -> Result<Incoming, ClientError> {
        self.recv(wait).await
    }
}

impl Frames for NamespaceClient {
    async fn next(&mut self, wait: Duration) -> Result<Incoming, ClientError> {
        self.recv(wait).await
    }
}

impl Frames for ChannelClient {
    async fn next(&mut self, wait: Duration) -> Result<Incoming, ClientError> {
        self.recv(wait).await
    }
}

/// Repeat `send(n)` until every listener has heard a frame `heard` accepts (the backplane routes
/// the traffic to their nodes), then swallow whatever is still in flight.
async fn converge<F, S>(mut send: S, heard: F, listeners: &mut [&mut dyn Listener])
where
    S: AsyncFnMut(u64),
    F: Fn(&Value) -> bool,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut done = vec![false; listeners.len()];
    let mut n = 0;
    while done.iter().any(|d| !d) {
        assert!(Instant::now() < deadline, "the nodes never converged");
        n += 1;
        send(n).await;
        for (listener, done) in listeners.iter_mut().zip(done.iter_mut()) {
            if !*done {
                *done = listener.heard(Duration::from_millis(100), &heard).await;
            }
        }
    }
    for listener in listeners.iter_mut() {
        listener.settle().await;
    }
}

/// A client [`converge`] can wait on, whatever its dialect.
trait Listener {
    fn heard<'a>(
        &'a mut self,
        wait: Duration,
        accept: &'a dyn Fn(&Value) -> bool,
    ) -> std::pin::Pin<Box<dyn Future<Output = bool> + 'a>>;

    fn settle(&mut self) -> std::pin::Pin<Box<dyn Future<Output = ()> + '_>>;
}

impl<T: Frames> Listener for T {
    fn heard<'a>(
        &'a mut self,
        wait: Duration,
        accept: &'a dyn Fn(&Value) -> bool,
    ) -> std::pin::Pin<Box<dyn Future<Output = bool> + 'a>> {
        Box::pin(async move {
            matches!(self.next(wait).await, Ok(Incoming::Json(frame)) if accept(&frame))
        })
    }

    fn settle(&mut self) -> std::pin::Pin<Box<dyn Future<Output = ()> + '_>> {
        Box::pin(async move {
            self.drain(QUIET).await;
        })
    }
}

/// Namespaces every node serves: `chat` relays to everyone, `cursors` to everyone but the
/// sending socket.
fn namespaces(
    handles: &Mutex<Vec<(usize, NamespaceHandle, NamespaceHandle)>>,
) -> impl Fn(usize, switchboard::SwitchboardBuilder) -> switchboard::SwitchboardBuilder + '_ {
    move |index, mut builder| {
        let chat = builder
            .namespace(Namespace::new("chat").relay(Relay::Broadcast))
            .expect("chat");
        let cursors = builder
            .namespace(Namespace::new("cursors").relay(Relay::BroadcastOthers))
            .expect("cursors");
        handles.lock().unwrap().push((index, chat, cursors));
        builder
    }
}

/// Start `n` nodes on the engine's shared backplane serving the test namespaces; their (chat,
/// cursors) handles, by node. The backplane must outlive the cluster.
async fn namespace_cluster(
    engine: Engine,
    n: usize,
) -> Option<(Backplane, Cluster, Vec<(NamespaceHandle, NamespaceHandle)>)> {
    let backplane = Backplane::shared(engine).await?;
    let handles = Mutex::new(Vec::new());
    let cluster = Cluster::start_built(&backplane, n, |_, _| {}, namespaces(&handles)).await?;
    let mut handles = handles.into_inner().unwrap();
    handles.sort_by_key(|(index, _, _)| *index);
    let handles = handles.into_iter().map(|(_, c, r)| (c, r)).collect();
    Some((backplane, cluster, handles))
}

async fn join_namespace(node: &TestServer, name: &str, uuid: Option<&str>) -> NamespaceClient {
    let mut options = NamespaceOptions::default();
    if let Some(uuid) = uuid {
        options = options.uuid(uuid);
    }
    NamespaceClient::connect(&node.ws, name, &options)
        .await
        .expect("connect to the namespace")
}

/// `{"success":true,"data":DATA}`
fn envelope(data: Value) -> Value {
    json!({"success": true, "data": data})
}

async fn namespace_relays_cross_nodes_exactly_once(engine: Engine) {
    let Some((_backplane, cluster, handles)) = namespace_cluster(engine, 2).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (chat_a, _) = &handles[0];

    // `chat` relays to every socket, the sender's included.
    let (token, _) = a.user("ada@example.com").await;
    let mut sender = NamespaceClient::connect(
        &a.ws,
        "chat",
        &NamespaceOptions::default().bearer(token.clone()),
    )
    .await
    .unwrap();
    let username = sender.welcome["username"].clone();
    assert_eq!(username, "ada@example.com");
    let mut on_a = join_namespace(a, "chat", None).await;
    let mut on_b = join_namespace(b, "chat", None).await;
    let mut other_on_b = join_namespace(b, "chat", None).await;
    let mut cursors_on_b = join_namespace(b, "cursors", None).await;
    converge(
        async |n| {
            chat_a.broadcast(&json!({"probe": n}));
        },
        |f| f["data"]["probe"].is_number(),
        &mut [&mut on_b, &mut other_on_b, &mut sender, &mut on_a],
    )
    .await;

    // A forged `from` / `username` is replaced by the sender's own, on every node.
    sender
        .send_json(&json!({"type": "chat", "text": "hi", "from": "forged", "username": "forged"}))
        .await
        .unwrap();
    let expected = envelope(json!({
        "type": "chat",
        "text": "hi",
        "from": sender.client_id(),
        "username": username,
    }));
    for client in [&mut sender, &mut on_a, &mut on_b, &mut other_on_b] {
        client.expect_once(expected.clone()).await;
    }
    // Another namespace on the same node hears nothing of it.
    cursors_on_b.expect_silent().await;

    // An anonymous sender on B: stamped with `""`, heard once on A.
    on_b.send_json(&json!({"type": "chat", "text": "from b"}))
        .await
        .unwrap();
    let expected = envelope(json!({
        "type": "chat",
        "text": "from b",
        "from": on_b.client_id(),
        "username": "",
    }));
    for client in [&mut sender, &mut on_a, &mut on_b, &mut other_on_b] {
        client.expect_once(expected.clone()).await;
    }

    // `cursors` skips only the sending socket: its other tabs (same uuid) on A and on B hear it.
    let tab = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
    let mut mover = join_namespace(a, "cursors", Some(tab)).await;
    let mut tab_on_a = join_namespace(a, "cursors", Some(tab)).await;
    let mut tab_on_b = join_namespace(b, "cursors", Some(tab)).await;
    let (_, cursors_a) = &handles[0];
    converge(
        async |n| {
            cursors_a.broadcast(&json!({"probe": n}));
        },
        |f| f["data"]["probe"].is_number(),
        &mut [&mut tab_on_b, &mut cursors_on_b, &mut mover, &mut tab_on_a],
    )
    .await;
    mover
        .send_json(&json!({"type": "move", "x": 3}))
        .await
        .unwrap();
    let expected = envelope(json!({"type": "move", "x": 3, "from": tab, "username": ""}));
    for client in [&mut tab_on_a, &mut tab_on_b, &mut cursors_on_b] {
        client.expect_once(expected.clone()).await;
    }
    mover.expect_silent().await;
    for client in [&mut sender, &mut on_a, &mut on_b, &mut other_on_b] {
        client.expect_silent().await;
    }
    cluster.stop().await;
}

async fn namespace_handle_sends_cross_nodes_exactly_once(engine: Engine) {
    let Some((_backplane, cluster, handles)) = namespace_cluster(engine, 2).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (chat_a, _) = &handles[0];
    let uuid = "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b";
    let mut tab_on_a = join_namespace(a, "chat", Some(uuid)).await;
    let mut tab_on_b = join_namespace(b, "chat", Some(uuid)).await;
    let mut second_tab_on_b = join_namespace(b, "chat", Some(uuid)).await;
    let mut bystander_on_b = join_namespace(b, "chat", None).await;
    let mut same_uuid_elsewhere = join_namespace(b, "cursors", Some(uuid)).await;
    converge(
        async |n| {
            chat_a.broadcast(&json!({"probe": n}));
        },
        |f| f["data"]["probe"].is_number(),
        &mut [
            &mut tab_on_b,
            &mut second_tab_on_b,
            &mut bystander_on_b,
            &mut tab_on_a,
        ],
    )
    .await;

    // broadcast: a system message, `username` "".
    assert_eq!(chat_a.broadcast(&json!({"type": "notice"})), 1, "local");
    let expected = envelope(json!({"type": "notice", "username": ""}));
    for client in [
        &mut tab_on_a,
        &mut tab_on_b,
        &mut second_tab_on_b,
        &mut bystander_on_b,
    ] {
        client.expect_once(expected.clone()).await;
    }

    // broadcast_from: under the given name.
    chat_a.broadcast_from(&json!({"type": "todo-created", "id": 7}), "grace");
    let expected = envelope(json!({"type": "todo-created", "id": 7, "username": "grace"}));
    for client in [
        &mut tab_on_a,
        &mut tab_on_b,
        &mut second_tab_on_b,
        &mut bystander_on_b,
    ] {
        client.expect_once(expected.clone()).await;
    }

    // send_to_client: every socket of that uuid in this namespace, on both nodes, once each.
    chat_a.send_to_client(uuid, &json!({"type": "private", "n": 1}));
    let expected = envelope(json!({"type": "private", "n": 1, "username": ""}));
    for client in [&mut tab_on_a, &mut tab_on_b, &mut second_tab_on_b] {
        client.expect_once(expected.clone()).await;
    }
    bystander_on_b.expect_silent().await;
    // The same uuid in another namespace is another address.
    same_uuid_elsewhere.expect_silent().await;

    // The same from B's handle, reaching the tab on A.
    let (chat_b, _) = &handles[1];
    chat_b.send_to_client(uuid, &json!({"type": "private", "n": 2}));
    let expected = envelope(json!({"type": "private", "n": 2, "username": ""}));
    for client in [&mut tab_on_a, &mut tab_on_b, &mut second_tab_on_b] {
        client.expect_once(expected.clone()).await;
    }
    bystander_on_b.expect_silent().await;
    cluster.stop().await;
}

/// A channel-dialect connection to `path` on `node`, and its connection id (read from the
/// node's connection list, as the dialect sends no first frame).
async fn channel_member(
    node: &TestServer,
    path: &str,
    bearer: Option<&str>,
) -> (ChannelClient, String) {
    let before: HashSet<String> = channel_ids(node);
    let client = ChannelClient::connect(&node.ws, path, bearer)
        .await
        .expect("connect to the channel dialect");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let new: Vec<String> = channel_ids(node).difference(&before).cloned().collect();
        if let [id] = new.as_slice() {
            return (client, id.clone());
        }
        assert!(new.is_empty(), "two new connections at once: {new:?}");
        assert!(Instant::now() < deadline, "the connection never registered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn channel_ids(node: &TestServer) -> HashSet<String> {
    node.app
        .channels()
        .connections()
        .into_iter()
        .map(|c| c.id.to_string())
        .collect()
}

/// Make sure traffic for `channel` flows from `sender` to every listener (their nodes have
/// subscribed it), then swallow the probes and presence still in flight.
async fn converge_channel(
    sender: &mut ChannelClient,
    channel: &str,
    listeners: &mut [&mut dyn Listener],
) {
    converge(
        async |n| {
            sender
                .send_json(&json!({"channel": channel, "cmd": "probe", "param": n}))
                .await
                .unwrap();
        },
        |f| f["cmd"] == "probe" || f["type"] == "probe",
        listeners,
    )
    .await;
    sender.drain(QUIET).await;
}

async fn channel_relays_cross_nodes_exactly_once(engine: Engine) {
    let Some((_backplane, cluster)) = Cluster::on_shared(engine, 3).await else {
        return;
    };
    let (a, b, c) = (&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]);
    let (mut sender, sender_id) = channel_member(a, "/ws/room1", None).await;
    let (mut on_a, _) = channel_member(a, "/ws/room1", None).await;
    let (mut on_b, _) = channel_member(b, "/ws/room1", None).await;
    let (mut second_on_b, _) = channel_member(b, "/ws/room1", None).await;
    let (mut on_c, _) = channel_member(c, "/ws/room1", None).await;
    let (mut elsewhere_on_b, _) = channel_member(b, "/ws/room2", None).await;
    converge_channel(
        &mut sender,
        "room1",
        &mut [&mut on_a, &mut on_b, &mut second_on_b, &mut on_c],
    )
    .await;
    elsewhere_on_b.drain(QUIET).await;

    // A client-set `from` is replaced by the sender's id; the sender does not hear itself.
    sender
        .send_json(
            &json!({"channel": "room1", "cmd": "chat", "param": {"t": [1, 2]}, "from": "forged"}),
        )
        .await
        .unwrap();
    let expected =
        json!({"from": sender_id, "channel": "room1", "cmd": "chat", "param": {"t": [1, 2]}});
    for client in [&mut on_a, &mut on_b, &mut second_on_b, &mut on_c] {
        client.expect_once(expected.clone()).await;
    }
    sender.expect_silent().await;
    elsewhere_on_b.expect_silent().await;

    // Without a param: `null`.
    sender
        .send_json(&json!({"channel": "room1", "cmd": "tick"}))
        .await
        .unwrap();
    let expected = json!({"from": sender_id, "channel": "room1", "cmd": "tick", "param": null});
    for client in [&mut on_a, &mut on_b, &mut second_on_b, &mut on_c] {
        client.expect_once(expected.clone()).await;
    }
    sender.expect_silent().await;
    cluster.stop().await;
}

async fn channel_server_sends_cross_nodes_exactly_once(engine: Engine) {
    let Some((_backplane, cluster)) = Cluster::on_shared(engine, 2).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (mut on_a, _) = channel_member(a, "/ws/room1", None).await;
    let (mut on_b, id_on_b) = channel_member(b, "/ws/room1", None).await;
    let (mut skipped_on_b, skipped_id) = channel_member(b, "/ws/room1", None).await;
    let mut jac_on_b = b
        .connect_with(ConnectOptions::default().channel("room1"))
        .await;
    converge_channel(
        &mut on_a,
        "room1",
        &mut [&mut on_b, &mut skipped_on_b, &mut jac_on_b],
    )
    .await;
    let channels = a.app.channels();

    // send_channel from A, skipping a connection on B (the exception holds on every node).
    let message = Message::new("room1", "notice", json!({"n": 1}));
    assert_eq!(channels.send_channel("room1", &message, &[&skipped_id]), 1);
    let expected = json!({"channel": "room1", "cmd": "notice", "param": {"n": 1}});
    for client in [&mut on_a, &mut on_b] {
        client.expect_once(expected.clone()).await;
    }
    jac_on_b
        .expect_once(json!({"type": "notice", "data": {"n": 1}}))
        .await;
    skipped_on_b.expect_silent().await;

    // send_connection from A to a connection on B: not queued on A, delivered once on B.
    let message = Message::new("room1", "direct", json!(2));
    assert!(!channels.send_connection(&id_on_b, &message));
    on_b.expect_once(json!({"channel": "room1", "cmd": "direct", "param": 2}))
        .await;
    for client in [&mut on_a, &mut skipped_on_b] {
        client.expect_silent().await;
    }
    jac_on_b.expect_silent().await;

    // broadcast from A: every connection on both nodes but the excepted one.
    let message = Message::new("all", "hello", json!(null));
    channels.broadcast(&message, &[&skipped_id]);
    for client in [&mut on_a, &mut on_b] {
        client
            .expect_once(json!({"channel": "all", "cmd": "hello", "param": null}))
            .await;
    }
    jac_on_b
        .expect_once(json!({"type": "hello", "data": null}))
        .await;
    skipped_on_b.expect_silent().await;
    cluster.stop().await;
}

async fn channel_presence_crosses_nodes_to_channel_members_only(engine: Engine) {
    let Some((_backplane, cluster)) = Cluster::on_shared(engine, 2).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (mut on_a, _) = channel_member(a, "/ws/room1", None).await;
    let (mut on_b, _) = channel_member(b, "/ws/room1", None).await;
    let mut jac_on_b = b
        .connect_with(ConnectOptions::default().channel("room1"))
        .await;
    // Both ways, so each node hears the other's presence.
    converge_channel(&mut on_a, "room1", &mut [&mut on_b, &mut jac_on_b]).await;
    converge_channel(&mut on_b, "room1", &mut [&mut on_a]).await;
    jac_on_b.drain(QUIET).await;

    let update = |id: &str, user_id: &str, connected: bool| {
        json!({
            "from": id,
            "channel": "room1",
            "cmd": "online-update",
            "param": {"userID": user_id, "connected": connected},
        })
    };

    // A join by command on A (anonymous: its userID is its id).
    let (mut joiner, joiner_id) = channel_member(a, "/ws/lobby", None).await;
    let joined = joiner.join("room1").await.unwrap();
    assert_eq!(joined["cmd"], "joined", "{joined}");
    for client in [&mut on_a, &mut on_b] {
        client
            .expect_once(update(&joiner_id, &joiner_id, true))
            .await;
    }
    jac_on_b.expect_silent().await;
    joiner.expect_silent().await;

    // A leave by command on A.
    let left = joiner.leave("room1").await.unwrap();
    assert_eq!(left["cmd"], "left", "{left}");
    for client in [&mut on_a, &mut on_b] {
        client
            .expect_once(update(&joiner_id, &joiner_id, false))
            .await;
    }
    jac_on_b.expect_silent().await;

    // A logged-in member joining on connect and then disconnecting: its userID is the account's.
    let (token, login) = a.user("presence@example.com").await;
    let user_id = login["id"].as_str().expect("user id").to_string();
    let (member, member_id) = channel_member(a, "/ws/room1", Some(&token)).await;
    for client in [&mut on_a, &mut on_b] {
        client.expect_once(update(&member_id, &user_id, true)).await;
    }
    member.close().await.unwrap();
    for client in [&mut on_a, &mut on_b] {
        client
            .expect_once(update(&member_id, &user_id, false))
            .await;
    }
    jac_on_b.expect_silent().await;

    // A Jac connection joining on A is a member too: channel-dialect members on B hear of it.
    let jac_on_a = a
        .connect_with(ConnectOptions::default().channel("room1"))
        .await;
    let jac_id = jac_on_a.info.client_id.clone();
    on_b.expect_once(update(&jac_id, &jac_id, true)).await;
    jac_on_b.expect_silent().await;
    drop(jac_on_a);
    on_b.expect_once(update(&jac_id, &jac_id, false)).await;
    on_a.drain(QUIET).await;
    jac_on_b.expect_silent().await;
    drop(joiner);
    cluster.stop().await;
}

async fn channel_members_span_nodes(engine: Engine) {
    let Some((_backplane, cluster)) = Cluster::on_shared(engine, 2).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (token, login) = a.user("listed@example.com").await;
    let user_id = login["id"].as_str().expect("user id").to_string();
    let (mut on_a, id_a) = channel_member(a, "/ws/room1", Some(&token)).await;
    let (mut on_b, id_b) = channel_member(b, "/ws/room1", None).await;
    let mut jac_on_a = a
        .connect_with(ConnectOptions::default().channel("room1"))
        .await;
    let jac_id = jac_on_a.info.client_id.clone();
    converge_channel(&mut on_b, "room1", &mut [&mut on_a, &mut jac_on_a]).await;

    let mut expected = vec![
        json!({"id": id_a, "userID": user_id, "username": "listed@example.com"}),
        json!({"id": id_b, "userID": id_b, "username": ""}),
        json!({"id": jac_id, "userID": jac_id, "username": ""}),
    ];
    expected.sort_by(|x, y| x["id"].as_str().cmp(&y["id"].as_str()));
    let expected = json!({"channel": "room1", "cmd": "members", "param": {"members": expected}});
    // Until every node has announced itself; then each node lists all three.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = on_b.members("room1").await.unwrap();
        if listed == expected {
            break;
        }
        assert!(Instant::now() < deadline, "members never spanned: {listed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(on_a.members("room1").await.unwrap(), expected);
    // A node asked about a channel it has no member of still lists the others'.
    let (mut outsider_on_b, _) = channel_member(b, "/ws/lobby", None).await;
    let listed = outsider_on_b.members("room1").await.unwrap();
    assert_eq!(listed, expected);

    // A member leaving on A is gone from B's listing.
    drop(jac_on_a);
    let mut expected = expected;
    let list = expected["param"]["members"].as_array_mut().unwrap();
    list.retain(|m| m["id"] != json!(jac_id));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = on_b.members("room1").await.unwrap();
        if listed == expected {
            break;
        }
        assert!(Instant::now() < deadline, "the leaver stayed: {listed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.stop().await;
}

async fn dialects_meet_across_nodes(engine: Engine) {
    let Some((_backplane, cluster)) = Cluster::on_shared(engine, 2).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (mut member_on_a, member_a_id) = channel_member(a, "/ws/room1", None).await;
    let (mut member_on_b, _) = channel_member(b, "/ws/room1", None).await;
    let mut jac_on_a = a
        .connect_with(ConnectOptions::default().channel("room1"))
        .await;
    let mut jac_on_b = b
        .connect_with(ConnectOptions::default().channel("room1"))
        .await;
    converge_channel(
        &mut member_on_a,
        "room1",
        &mut [&mut member_on_b, &mut jac_on_b, &mut jac_on_a],
    )
    .await;
    converge_channel(&mut member_on_b, "room1", &mut [&mut member_on_a]).await;
    jac_on_a.drain(QUIET).await;
    jac_on_b.drain(QUIET).await;

    // Channel dialect on A → Jac on B: {"type":X,"data":P}.
    member_on_a
        .send_json(&json!({"channel": "room1", "cmd": "chat", "param": {"text": "hi"}}))
        .await
        .unwrap();
    for client in [&mut jac_on_a, &mut jac_on_b] {
        client
            .expect_once(json!({"type": "chat", "data": {"text": "hi"}}))
            .await;
    }
    member_on_b
        .expect_once(json!({"from": member_a_id, "channel": "room1", "cmd": "chat", "param": {"text": "hi"}}))
        .await;
    member_on_a.expect_silent().await;

    // Jac `channel` event on A, payload {"type":T,"data":D} → {"channel","cmd":T,"param":D}.
    let payload = json!({"type": "status", "data": {"busy": true}});
    jac_on_a
        .send_json(&json!({"type": "channel", "channel_ids": ["room1"], "data": payload}))
        .await
        .unwrap();
    for client in [&mut member_on_a, &mut member_on_b] {
        client
            .expect_once(json!({"channel": "room1", "cmd": "status", "param": {"busy": true}}))
            .await;
    }
    for client in [&mut jac_on_a, &mut jac_on_b] {
        client.expect_once(payload.clone()).await;
    }

    // Without `data`: param null.
    jac_on_a
        .send_json(&json!({"type": "channel", "channel_ids": ["room1"], "data": {"type": "wave"}}))
        .await
        .unwrap();
    member_on_b
        .expect_once(json!({"channel": "room1", "cmd": "wave", "param": null}))
        .await;
    jac_on_b.expect_once(json!({"type": "wave"})).await;

    // Any other payload → cmd "message", param the payload.
    let other = json!({"text": "plain", "n": 3});
    jac_on_a
        .send_json(&json!({"type": "channel", "channel_ids": ["room1"], "data": other}))
        .await
        .unwrap();
    member_on_b
        .expect_once(json!({"channel": "room1", "cmd": "message", "param": other}))
        .await;
    jac_on_b.expect_once(other.clone()).await;
    member_on_a.drain(QUIET).await;
    jac_on_a.drain(QUIET).await;
    cluster.stop().await;
}

async fn the_publish_api_reaches_other_nodes(engine: Engine) {
    let Some(backplane) = Backplane::shared(engine).await else {
        return;
    };
    let Some(cluster) = Cluster::start_built(
        &backplane,
        2,
        |_, config| {
            config.api_keys = vec![ApiKeyConfig {
                name: "backend".into(),
                key: Some(API_KEY.into()),
                key_env: None,
            }];
        },
        |_, mut builder| {
            builder
                .namespace(Namespace::new("chat").relay(Relay::Broadcast))
                .expect("chat");
            builder
        },
    )
    .await
    else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (mut member_on_b, _) = channel_member(b, "/ws/room1", None).await;
    let mut jac_on_b = b
        .connect_with(ConnectOptions::default().channel("room1"))
        .await;
    let publish = async |body: &Value| {
        let response = http::post_json(&a.addr, "/api/publish", body, Some(API_KEY))
            .await
            .expect("POST /api/publish");
        (response.status, response.json())
    };
    converge(
        async |n| {
            let (status, _) =
                publish(&json!({"target": {"channels": ["room1"]}, "event": "probe", "data": n}))
                    .await;
            assert_eq!(status, 200);
        },
        |f| f["cmd"] == "probe" || f["type"] == "probe",
        &mut [&mut member_on_b, &mut jac_on_b],
    )
    .await;

    let (status, answer) = publish(&json!({
        "target": {"channels": ["room1"]},
        "event": "order_shipped",
        "data": {"id": 17},
        "id": "ship-17",
    }))
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"delivered": 0, "relayed": true}));
    member_on_b
        .expect_once(json!({"channel": "room1", "cmd": "order_shipped", "param": {"id": 17}}))
        .await;
    jac_on_b
        .expect_once(json!({"type": "order_shipped", "data": {"id": 17}}))
        .await;
    // The backend retries on the other node: the id is known there too.
    let response = http::post_json(
        &b.addr,
        "/api/publish",
        &json!({"target": {"channels": ["room1"]}, "event": "order_shipped",
                "data": {"id": 17}, "id": "ship-17"}),
        Some(API_KEY),
    )
    .await
    .expect("POST /api/publish");
    assert_eq!(response.json(), json!({"delivered": 0, "duplicate": true}));
    member_on_b.expect_silent().await;
    jac_on_b.expect_silent().await;

    // To one connection on B by its id.
    let jac_id = jac_on_b.info.client_id.clone();
    let (status, answer) = publish(&json!({
        "target": {"clients": [jac_id]},
        "event": "direct",
        "data": 1,
    }))
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["relayed"], true, "{answer}");
    jac_on_b
        .expect_once(json!({"type": "direct", "data": 1}))
        .await;
    member_on_b.expect_silent().await;

    // To a user (by the account's user id) whose only connection is on B: none on A.
    let (token, login) = a.user("published@example.com").await;
    let user_id = login["id"].as_str().expect("user id").to_string();
    let mut user_on_b = b.connect_with(ConnectOptions::bearer(&token)).await;
    let (status, answer) = publish(&json!({
        "target": {"users": [user_id]},
        "event": "for_you",
        "data": {"n": 1},
    }))
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"delivered": 0, "relayed": true}));
    user_on_b
        .expect_once(json!({"type": "for_you", "data": {"n": 1}}))
        .await;
    jac_on_b.expect_silent().await;

    // To a namespace whose only client is on B.
    let mut chat_on_b = join_namespace(b, "chat", None).await;
    let (status, answer) = publish(&json!({
        "target": {"namespace": "chat"},
        "event": "notice",
        "data": {"n": 2},
    }))
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"delivered": 0, "relayed": true}));
    // The event becomes `type`, beside the data's fields.
    chat_on_b
        .expect_once(envelope(json!({"type": "notice", "n": 2, "username": ""})))
        .await;
    for client in [&mut jac_on_b, &mut user_on_b] {
        client.expect_silent().await;
    }
    member_on_b.expect_silent().await;

    // Disconnecting the user through A closes its connection on B.
    let response = http::post_json(
        &a.addr,
        "/api/disconnect",
        &json!({"target": {"users": [user_id]}, "code": 4100, "reason": "account closed"}),
        Some(API_KEY),
    )
    .await
    .expect("POST /api/disconnect");
    assert_eq!(response.status, 200);
    assert_eq!(response.json(), json!({"disconnected": 0}));
    match user_on_b.next(Duration::from_secs(10)).await {
        Ok(Incoming::Closed { code, reason }) => {
            assert_eq!((code, reason.as_str()), (Some(4100), "account closed"));
        }
        other => panic!("expected close 4100, got {other:?}"),
    }
    jac_on_b.expect_silent().await;

    // /api/info on A lists both nodes, B with the connections it has (as its last alive
    // announcement, at most a second old, says).
    let b_id = b.app.node_id().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = http::get(&a.addr, "/api/info", Some(API_KEY))
            .await
            .expect("GET /api/info")
            .json();
        let nodes = info["nodes"].as_array().cloned().unwrap_or_default();
        let on_b = nodes.iter().find(|node| node["node_id"] == b_id.as_str());
        let b_connections = b.app.hub().connection_count() as u64;
        if nodes.len() == 2
            && nodes[0]["node_id"] == a.app.node_id()
            && on_b.is_some_and(|node| node["connections"] == b_connections)
        {
            let a_connections = a.app.hub().connection_count() as u64;
            assert_eq!(info["connections"], a_connections + b_connections, "{info}");
            // The admin statistics list the same nodes.
            let stats = a.app.stats().await;
            let listed: Vec<&str> = stats.nodes.iter().map(|n| n.node_id.as_str()).collect();
            assert_eq!(listed, [a.app.node_id(), b_id.as_str()]);
            assert_eq!(
                stats.total_connections as u64,
                a_connections + b_connections
            );
            break;
        }
        assert!(Instant::now() < deadline, "B never showed in {info}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster.stop().await;
}

/// `stats()` on one node merges every node's: counts add up, a user or a client id present on
/// both nodes counts once, channel members add up, and the activity log holds both nodes'
/// messages in time order.
async fn the_stats_span_the_cluster(engine: Engine) {
    let Some((_backplane, cluster, handles)) = namespace_cluster(engine, 2).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (chat_a, _) = &handles[0];

    // `ada` with one client id (two tabs) on both nodes, and an anonymous client on B.
    let tab = "3f2504e0-4f89-41d3-9a0c-0305e82c3302";
    let (token, _) = a.user("ada@example.com").await;
    let options = NamespaceOptions::default().bearer(token).uuid(tab);
    let mut ada_on_a = NamespaceClient::connect(&a.ws, "chat", &options)
        .await
        .unwrap();
    let mut ada_on_b = NamespaceClient::connect(&b.ws, "chat", &options)
        .await
        .unwrap();
    let mut anonymous_on_b = join_namespace(b, "chat", None).await;
    converge(
        async |n| {
            chat_a.broadcast(&json!({"probe": n}));
        },
        |f| f["data"]["probe"].is_number(),
        &mut [&mut ada_on_b, &mut anonymous_on_b, &mut ada_on_a],
    )
    .await;
    // One client message on each node.
    ada_on_a
        .send_json(&json!({"type": "chat", "text": "first, on a"}))
        .await
        .unwrap();
    for client in [&mut ada_on_a, &mut ada_on_b, &mut anonymous_on_b] {
        assert_eq!(client.drain(QUIET).await.len(), 1);
    }
    anonymous_on_b
        .send_json(&json!({"type": "chat", "text": "second, on b"}))
        .await
        .unwrap();
    for client in [&mut ada_on_a, &mut ada_on_b, &mut anonymous_on_b] {
        assert_eq!(client.drain(QUIET).await.len(), 1);
    }
    // A channel with a member on each node.
    let (_room_on_a, _) = channel_member(a, "/ws/room", None).await;
    let (_room_on_b, _) = channel_member(b, "/ws/room", None).await;

    // Wait until A hears B (the roster learns peers from alive announcements).
    let deadline = Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let stats = a.app.stats().await;
        if stats.nodes.len() == 2 && stats.nodes.iter().all(|node| node.reported) {
            break stats;
        }
        assert!(Instant::now() < deadline, "B never reported: {stats:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let nodes: Vec<(&str, usize)> = stats
        .nodes
        .iter()
        .map(|node| (node.node_id.as_str(), node.connections))
        .collect();
    assert_eq!(
        nodes,
        [
            (a.app.node_id(), a.app.hub().connection_count()),
            (b.app.node_id(), b.app.hub().connection_count())
        ]
    );
    assert_eq!(stats.total_connections, 5, "{stats:?}");
    assert_eq!(stats.total_messages, 2);
    assert!(stats.nodes.iter().all(|node| node.backplane == "up"));

    let chat = stats
        .namespaces
        .iter()
        .find(|ns| ns.path == "/api/1/ws/chat")
        .expect("chat listed");
    assert_eq!(chat.sockets, 3);
    assert_eq!(chat.clients, 2, "ada's tabs share a client id across nodes");
    assert_eq!(chat.users, 1, "ada is one user on two nodes");
    assert_eq!((chat.messages, chat.messages_per_minute), (2, 2));
    assert_eq!(stats.namespaces.len(), 2, "chat and cursors, once each");

    assert_eq!(stats.channels.count, 1);
    assert_eq!(stats.channels.top[0].name, "room");
    assert_eq!(stats.channels.top[0].members, 2);

    let received: Vec<(&str, &str)> = stats
        .activity_log
        .iter()
        .filter(|entry| entry.direction == "received")
        .map(|entry| (&*entry.node, entry.message.as_str()))
        .collect();
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(received[0].0, a.app.node_id());
    assert!(received[0].1.contains("first, on a"), "{received:?}");
    assert_eq!(received[1].0, b.app.node_id());
    assert!(received[1].1.contains("second, on b"), "{received:?}");

    // B's own view is the same cluster, B first.
    let from_b = b.app.stats().await;
    assert_eq!(from_b.nodes[0].node_id, b.app.node_id());
    assert_eq!(from_b.total_messages, 2);
    cluster.stop().await;
}

/// The admin connection list spans the nodes, each connection naming its node, and a
/// connection on another node is closed through the backplane.
async fn connections_are_listed_and_closed_on_every_node(engine: Engine) {
    let Some((_backplane, cluster)) = Cluster::on_shared(engine, 2).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (_on_a, on_a_id) = channel_member(a, "/ws/lobby", None).await;
    let (mut on_b, on_b_id) = channel_member(b, "/ws/lobby", None).await;
    let (_elsewhere, _) = channel_member(b, "/ws/kitchen", None).await;

    // Until A hears B: the list holds the three connections, searched on both nodes.
    let deadline = Instant::now() + Duration::from_secs(10);
    let lobby = loop {
        let all = a.app.cluster_connection_list("").await;
        if all.total == 3 {
            break a.app.cluster_connection_list("LOBBY").await;
        }
        assert!(
            Instant::now() < deadline,
            "B's connections never listed: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!((lobby.total, lobby.matching), (3, 2), "{lobby:?}");
    let mut listed: Vec<(&str, &str)> = lobby
        .list
        .iter()
        .map(|c| (&*c.node, &*c.client_id))
        .collect();
    listed.sort();
    let mut expected = vec![
        (a.app.node_id(), on_a_id.as_str()),
        (b.app.node_id(), on_b_id.as_str()),
    ];
    expected.sort();
    assert_eq!(listed, expected);

    // Closing B's connection from A.
    let on_b_entry = lobby
        .list
        .iter()
        .find(|c| *c.node == *b.app.node_id())
        .expect("B's member listed");
    assert!(
        a.app
            .close_connection_on(b.app.node_id(), on_b_entry.key)
            .await
    );
    // Presence frames may come first; then the close.
    loop {
        match on_b.recv(Duration::from_secs(5)).await {
            Ok(Incoming::Json(_)) => continue,
            Ok(Incoming::Closed { code, .. }) => {
                assert_eq!(code, Some(4400));
                break;
            }
            other => panic!("expected close 4400, got {other:?}"),
        }
    }
    assert!(
        !a.app
            .close_connection_on(b.app.node_id(), on_b_entry.key)
            .await,
        "already closed"
    );
    cluster.stop().await;
}

/// An admin watching the dashboard on A sees, in its tap, a message sent on B (pulled with the
/// snapshots), and A's own; the tap's filter applies to both.
async fn the_admin_feed_taps_every_node(engine: Engine) {
    let Some((_backplane, cluster)) = Cluster::on_shared(engine, 2).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let admin = a.admin("root@example.com").await;
    let mut feed = open_feed(a, &admin).await;
    // Until A hears B.
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.app.stats().await.nodes.len() < 2 {
        assert!(Instant::now() < deadline, "A never heard B");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    command(
        &mut feed,
        json!({"type": "tap", "on": true, "dialect": "channel"}),
    )
    .await;
    // The tap is on once a snapshot says so; B's cursor is set by that snapshot's pull.
    while next_of(&mut feed, "snapshot").await["tap"]["on"] != true {}
    next_of(&mut feed, "snapshot").await;

    let (mut on_b, _) = channel_member(b, "/ws/tapped", None).await;
    let (mut on_a, _) = channel_member(a, "/ws/tapped-here", None).await;
    on_b.send_json(&json!({"channel": "tapped", "cmd": "say", "param": "from b"}))
        .await
        .unwrap();
    on_a.send_json(&json!({"channel": "tapped-here", "cmd": "say", "param": "from a"}))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let entry = next_of(&mut feed, "tap").await["entry"].clone();
        assert_eq!(entry["dialect"], "channel", "the filter applies: {entry}");
        if entry["direction"] == "received" {
            seen.push((
                entry["node"].as_str().unwrap().to_string(),
                entry["target"].as_str().unwrap().to_string(),
            ));
        }
    }
    seen.sort();
    let mut expected = vec![
        (a.app.node_id().to_string(), "tapped-here".to_string()),
        (b.app.node_id().to_string(), "tapped".to_string()),
    ];
    expected.sort();
    assert_eq!(seen, expected);
    cluster.stop().await;
}
