//! Several nodes over real Redis and real NATS (issue 12): every Jac event and notify call crosses
//! nodes exactly once, interest, order, shared accounts, and a backplane killed and restarted
//! mid-traffic. Each test runs once per engine.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{Backplane, Cluster, Engine, converge, drain, health, metrics_text};
use common::{TestServer, assert_alive};
use serde_json::{Value, json};
use switchboard::broker::Relay;
use switchboard_client::{ConnectOptions, Incoming, JacClient, http};

const QUIET: Duration = Duration::from_millis(400);

common::cluster::per_engine!(
    events_cross_nodes_exactly_once,
    notify_calls_cross_nodes_and_report_relayed,
    one_publisher_keeps_its_order_on_every_node,
    a_node_without_members_gets_none_of_a_channel,
    a_token_from_one_node_works_and_is_revoked_on_another,
    killing_the_backplane_five_times_loses_nothing_after_health_returns,
    members_and_stats_span_nodes_and_a_killed_node_leaves_them,
    a_hung_backplane_bounds_the_queue_and_counts_every_loss,
    the_user_command_reaches_running_nodes,
);

async fn connect(node: &TestServer, channels: &[&str]) -> JacClient {
    let mut options = ConnectOptions::default();
    for channel in channels {
        options = options.channel(*channel);
    }
    node.connect_with(options).await
}

/// The next frame, which must be `expected`, and then nothing more for a while.
async fn expect_once(client: &mut JacClient, expected: &Value) {
    let frames = drain(client, QUIET).await;
    assert_eq!(frames, vec![expected.clone()], "exactly once");
}

async fn events_cross_nodes_exactly_once(engine: Engine) {
    let Some((_backplane, cluster)) = Cluster::on_shared(engine, 2).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let mut on_a = connect(a, &["room"]).await;
    let mut on_b = connect(b, &["room"]).await;
    let mut hall_on_b = connect(b, &["hall"]).await;
    let mut elsewhere_on_b = connect(b, &["other"]).await;
    converge(&mut on_a, "room", &mut [&mut on_b]).await;
    converge(&mut on_a, "hall", &mut [&mut hall_on_b]).await;

    // A channel event to two channels: once per connection, on either node, sender included
    // (B hears it on both channels' subjects and delivers it once).
    on_a.send_json(&json!({"type": "channel", "channel_ids": ["room", "hall"], "data": {"n": 1}}))
        .await
        .unwrap();
    for client in [&mut on_a, &mut on_b, &mut hall_on_b] {
        expect_once(client, &json!({"n": 1})).await;
    }
    assert!(elsewhere_on_b.is_silent_for(QUIET).await);

    // A client event names connections on both nodes.
    let targets = [on_a.info.client_id.clone(), on_b.info.client_id.clone()];
    elsewhere_on_b
        .send_json(&json!({"type": "client", "client_ids": targets, "data": {"n": 2}}))
        .await
        .unwrap();
    expect_once(&mut on_a, &json!({"n": 2})).await;
    expect_once(&mut on_b, &json!({"n": 2})).await;
    assert!(hall_on_b.is_silent_for(QUIET).await);

    // A user event reaches the user's connections on both nodes; the account was made on A.
    let (token, _) = a.user("cross@example.com").await;
    let mut user_on_a = a.connect_with(ConnectOptions::bearer(&token)).await;
    let mut user_on_b = b.connect_with(ConnectOptions::bearer(&token)).await;
    let root = user_on_a.info.root_id.clone();
    assert_eq!(user_on_b.info.root_id, root);
    on_b.send_json(&json!({"type": "user", "root_ids": [root], "data": {"n": 3}}))
        .await
        .unwrap();
    expect_once(&mut user_on_a, &json!({"n": 3})).await;
    expect_once(&mut user_on_b, &json!({"n": 3})).await;
    assert!(on_a.is_silent_for(QUIET).await);

    // change_user moves a connection on B into the user's index there: A's user events follow.
    let info = elsewhere_on_b.change_user(Some(&token)).await.unwrap();
    assert_eq!(info.root_id, root);
    drain(&mut elsewhere_on_b, QUIET).await;
    on_a.send_json(&json!({"type": "user", "root_ids": [root], "data": {"n": 4}}))
        .await
        .unwrap();
    for client in [&mut user_on_a, &mut user_on_b, &mut elsewhere_on_b] {
        expect_once(client, &json!({"n": 4})).await;
    }
    assert_alive(&mut on_a).await;
    cluster.stop().await;
}

async fn notify_calls_cross_nodes_and_report_relayed(engine: Engine) {
    let Some((_backplane, cluster)) = Cluster::on_shared(engine, 2).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let mut on_a = connect(a, &["news"]).await;
    let mut on_b = connect(b, &["news"]).await;
    converge(&mut on_a, "news", &mut [&mut on_b]).await;
    let client_on_b = on_b.info.client_id.clone();
    let root_on_b = on_b.info.root_id.clone();

    // A walker called on A notifies a channel and a client on B.
    let reply = on_a
        .call_walker(
            "notify_all_ways",
            json!({"channel_ids": ["news"], "client_ids": [client_on_b]}),
        )
        .await
        .unwrap();
    assert_eq!(reply["reports"], json!(["notified"]));
    // Each once; their relative order is kept over Redis, not over NATS (separate subjects).
    let mut frames = drain(&mut on_b, QUIET).await;
    frames.sort_by_key(|f| f.to_string());
    assert_eq!(
        frames,
        vec![json!({"type": "to_channel"}), json!({"type": "to_client"})]
    );

    // The app's own notify calls say the other nodes will get them.
    assert_eq!(
        a.app.notify_channels(&["news"], &json!({"from": "app"})),
        Relay::Relayed
    );
    assert_eq!(
        a.app
            .notify_users(&[root_on_b.as_str()], &json!({"to": "user"})),
        Relay::Relayed
    );
    assert_eq!(a.app.broadcast(&json!({"to": "all"})), Relay::Relayed);
    let mut frames = drain(&mut on_b, QUIET).await;
    frames.sort_by_key(|f| f.to_string());
    assert_eq!(
        frames,
        vec![
            json!({"from": "app"}),
            json!({"to": "all"}),
            json!({"to": "user"})
        ]
    );
    let frames = drain(&mut on_a, QUIET).await;
    assert!(frames.contains(&json!({"from": "app"})) && frames.contains(&json!({"to": "all"})));
    cluster.stop().await;
}

async fn one_publisher_keeps_its_order_on_every_node(engine: Engine) {
    let Some((_backplane, cluster)) = Cluster::on_shared(engine, 3).await else {
        return;
    };
    let mut publisher = connect(&cluster.nodes[0], &[]).await;
    let mut on_b = connect(&cluster.nodes[1], &["feed"]).await;
    let mut on_c = connect(&cluster.nodes[2], &["feed"]).await;
    converge(&mut publisher, "feed", &mut [&mut on_b, &mut on_c]).await;
    // Within the per-connection burst allowance, so the rate limit drops none of them.
    const N: u64 = 150;
    for n in 0..N {
        publisher
            .send_json(&json!({"type": "channel", "channel_ids": ["feed"], "data": n}))
            .await
            .unwrap();
    }
    for client in [&mut on_b, &mut on_c] {
        for n in 0..N {
            assert_eq!(client.recv_json().await.unwrap(), json!(n));
        }
        assert!(client.is_silent_for(QUIET).await);
    }
    cluster.stop().await;
}

async fn a_node_without_members_gets_none_of_a_channel(engine: Engine) {
    let Some((_backplane, cluster)) = Cluster::on_shared(engine, 2).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let received = |node: &TestServer| node.metric(|m| m.backplane_received.get());
    let mut on_a = connect(a, &["quiet"]).await;
    let mut bystander = connect(b, &["elsewhere"]).await;
    for n in 0..20 {
        on_a.send_json(&json!({"type": "channel", "channel_ids": ["quiet"], "data": n}))
            .await
            .unwrap();
    }
    drain(&mut on_a, QUIET).await;
    assert_eq!(received(b), 0, "b has no member of `quiet`");
    assert!(bystander.is_silent_for(QUIET).await);

    // A member on B subscribes B; its leaving unsubscribes it again.
    let mut member = connect(b, &["quiet"]).await;
    converge(&mut on_a, "quiet", &mut [&mut member]).await;
    assert!(received(b) > 0);
    member.close().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.app.hub().channel_size("quiet") > 0 {
        assert!(Instant::now() < deadline, "the member never left");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Generous time for the unsubscribe to reach the backplane.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = received(b);
    for n in 0..20 {
        on_a.send_json(&json!({"type": "channel", "channel_ids": ["quiet"], "data": n}))
            .await
            .unwrap();
    }
    drain(&mut on_a, QUIET).await;
    assert_eq!(
        received(b),
        before,
        "b unsubscribed when its last member left"
    );
    cluster.stop().await;
}

async fn a_token_from_one_node_works_and_is_revoked_on_another(engine: Engine) {
    let Some((_backplane, cluster)) = Cluster::on_shared(engine, 2).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (token, _) = a.user("revoked@example.com").await;
    let whoami = http::post_json(&b.addr, "/walker/whoami", &json!({}), Some(&token))
        .await
        .unwrap();
    assert_eq!(whoami.status, 200, "{}", whoami.text());
    let mut live_on_b = b.connect_with(ConnectOptions::bearer(&token)).await;

    let revoked = http::post_json(&a.addr, "/user/revoke", &json!({}), Some(&token))
        .await
        .unwrap();
    assert_eq!(revoked.status, 200, "{}", revoked.text());

    // B refuses the token at its next check: REST, connect, change_user.
    let whoami = http::post_json(&b.addr, "/walker/whoami", &json!({}), Some(&token))
        .await
        .unwrap();
    assert_eq!(whoami.status, 401, "{}", whoami.text());
    assert_eq!(whoami.json()["code"], "token_revoked");
    let user_root = live_on_b.info.root_id.clone();
    let mut refused = b.connect_with(ConnectOptions::bearer(&token)).await;
    assert_ne!(
        refused.info.root_id, user_root,
        "connected as the public user"
    );
    assert_eq!(refused.recv_json().await.unwrap()["code"], "token_revoked");
    let mut anonymous_on_b = connect(b, &[]).await;
    anonymous_on_b
        .send_json(&json!({"type": "change_user", "token": token}))
        .await
        .unwrap();
    let answer = drain(&mut anonymous_on_b, QUIET).await;
    assert!(
        answer.iter().any(|f| f["code"] == "token_revoked"),
        "{answer:?}"
    );

    // B's live connection of that user hears of the revocation from A.
    let deadline = Duration::from_secs(10);
    let mut downgraded = false;
    let started = Instant::now();
    while started.elapsed() < deadline && !downgraded {
        match live_on_b.recv(Duration::from_millis(200)).await {
            Ok(Incoming::Closed { code, .. }) => {
                assert_eq!(code, Some(4401));
                downgraded = true;
            }
            Ok(Incoming::Json(frame)) if frame["type"] == "connection" => {
                assert_ne!(frame["data"]["root_id"], json!(user_root));
                downgraded = true;
            }
            _ => {}
        }
    }
    assert!(
        downgraded,
        "the live connection on B was not told of the revocation"
    );
    cluster.stop().await;
}

async fn killing_the_backplane_five_times_loses_nothing_after_health_returns(engine: Engine) {
    let Some(mut backplane) = Backplane::own(engine).await else {
        return;
    };
    let Some(cluster) = Cluster::start(&backplane, 2).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let mut on_a = connect(a, &["live"]).await;
    let mut on_b = connect(b, &["live"]).await;
    converge(&mut on_a, "live", &mut [&mut on_b]).await;
    converge(&mut on_b, "live", &mut [&mut on_a]).await;

    // Traffic from a third client throughout, so the kills land mid-traffic.
    let mut chatter = connect(a, &[]).await;
    let traffic = tokio::spawn(async move {
        for n in 0u64.. {
            if chatter
                .send_json(
                    &json!({"type": "channel", "channel_ids": ["live"], "data": {"chatter": n}}),
                )
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });

    for round in 0..5 {
        backplane.kill();
        let killed = Instant::now();
        cluster.wait_health(503, Duration::from_secs(5)).await;
        assert!(killed.elapsed() <= Duration::from_secs(5));
        let (_, body) = health(a).await;
        assert_eq!(body["status"], "degraded");
        assert_eq!(body["backplane"], "down");
        assert!(metrics_text(a).await.contains("switchboard_backplane_up 0"));

        // Down: each node still serves its own clients, and says a send was not relayed.
        let not_relayed = a.metric(|m| m.backplane_not_relayed.get());
        assert_eq!(
            a.app.notify_channels(&["live"], &json!({"down": round})),
            Relay::BackplaneDown
        );
        assert!(a.metric(|m| m.backplane_not_relayed.get()) > not_relayed);
        wait_for(&mut on_a, &json!({"down": round})).await;
        on_b.send_json(&json!({"type": "ping"})).await.unwrap();
        wait_for(&mut on_b, &json!({"type": "pong"})).await;

        backplane.start().await;
        let restarted = Instant::now();
        cluster.wait_health(200, Duration::from_secs(5)).await;
        assert!(restarted.elapsed() <= Duration::from_secs(5));
        assert!(metrics_text(b).await.contains("switchboard_backplane_up 1"));
        assert_eq!(
            health(b).await,
            (
                200,
                json!({
                    "status": "ok",
                    "backplane": "up",
                    "database": "up",
                    "node_id": b.app.node_id(),
                })
            )
        );

        // Up again: a message published on each node reaches the other's old connection.
        let from_a = json!({"round": round, "from": "a"});
        let from_b = json!({"round": round, "from": "b"});
        on_a.send_json(&json!({"type": "channel", "channel_ids": ["live"], "data": from_a}))
            .await
            .unwrap();
        on_b.send_json(
            &json!({"type": "client", "client_ids": [on_a.info.client_id], "data": from_b}),
        )
        .await
        .unwrap();
        wait_for(&mut on_b, &from_a).await;
        wait_for(&mut on_a, &from_b).await;
        assert_eq!(
            b.app.notify_channels(&["live"], &json!({"up": round})),
            Relay::Relayed
        );
        wait_for(&mut on_a, &json!({"up": round})).await;
    }
    traffic.abort();
    assert!(a.metric(|m| m.backplane_reconnects.get()) >= 5);
    cluster.stop().await;
}

/// Read (skipping the chatter) until `expected` arrives.
async fn wait_for(client: &mut JacClient, expected: &Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "{expected} never arrived");
        match client.recv(left).await {
            Ok(Incoming::Json(frame)) if &frame == expected => return,
            Ok(Incoming::Json(_)) => {}
            other => panic!("waiting for {expected}: {other:?}"),
        }
    }
}

/// The client ids `node` sees in `channel`, sorted.
async fn members(node: &TestServer, channel: &str) -> Vec<String> {
    let mut ids: Vec<String> = node
        .app
        .presence()
        .members(channel)
        .await
        .iter()
        .map(|m| m.client_id.to_string())
        .collect();
    ids.sort();
    ids
}

async fn members_and_stats_span_nodes_and_a_killed_node_leaves_them(engine: Engine) {
    let Some((backplane, cluster)) = Cluster::on_shared(engine, 2).await else {
        return;
    };
    let Some(process) = cluster.spawn_process(&backplane, "doomed").await else {
        cluster.stop().await;
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (token, _) = a.user("present@example.com").await;
    let on_a = a
        .connect_with(ConnectOptions::bearer(&token).channel("lobby"))
        .await;
    let on_b = connect(b, &["lobby"]).await;
    let on_doomed = JacClient::connect(&process.ws, ConnectOptions::default().channel("lobby"))
        .await
        .unwrap();
    let mut everyone = vec![
        on_a.info.client_id.clone(),
        on_b.info.client_id.clone(),
        on_doomed.info.client_id.clone(),
    ];
    everyone.sort();
    // Until each node has heard the others announce themselves.
    let deadline = Instant::now() + Duration::from_secs(10);
    for node in [a, b] {
        while members(node, "lobby").await != everyone {
            assert!(Instant::now() < deadline, "members never spanned the nodes");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let listed = a.app.presence().members("lobby").await;
    let ada = listed
        .iter()
        .find(|m| m.client_id.as_ref() == on_a.info.client_id)
        .unwrap();
    assert!(ada.authenticated);
    assert_eq!(ada.username.as_deref(), Some("present@example.com"));
    assert!(members(a, "nobody-here").await.is_empty());
    // The statistics count the process node's connection, from its own report.
    let stats = a.app.stats().await;
    let doomed = stats.nodes.iter().find(|n| n.node_id == "doomed");
    assert!(
        doomed.is_some_and(|n| n.reported && n.connections == 1),
        "{:?}",
        stats.nodes
    );

    // SIGKILL: within the heartbeat timeout its connection is gone from everyone's presence.
    process.kill().await;
    let killed = Instant::now();
    // A node that stops answering is never counted as reporting; while the others still
    // remember it, it is listed with its last announced figures.
    let stats = a.app.stats().await;
    if let Some(doomed) = stats.nodes.iter().find(|n| n.node_id == "doomed") {
        assert!(!doomed.reported, "{:?}", stats.nodes);
    }
    assert_eq!(
        stats.total_connections,
        stats.nodes.iter().map(|n| n.connections).sum::<usize>()
    );
    let timeout = Duration::from_millis(a.app.config().heartbeat.timeout_ms);
    let mut survivors = vec![on_a.info.client_id.clone(), on_b.info.client_id.clone()];
    survivors.sort();
    for node in [a, b] {
        while members(node, "lobby").await != survivors {
            assert!(
                killed.elapsed() < timeout,
                "the killed node's member stayed"
            );
        }
    }
    assert!(killed.elapsed() < timeout);
    drop(on_doomed);
    cluster.stop().await;
}

async fn a_hung_backplane_bounds_the_queue_and_counts_every_loss(engine: Engine) {
    let Some(backplane) = Backplane::own(engine).await else {
        return;
    };
    let Some(cluster) = Cluster::start(&backplane, 2).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let mut sender = connect(a, &[]).await;
    let mut checked = connect(b, &["check"]).await;
    converge(&mut sender, "check", &mut [&mut checked]).await;
    // A member on B that never reads: B subscribes `flood` and may close it as slow.
    let _flood_member = connect(b, &["flood"]).await;

    backplane.signal("-STOP");
    let payload = json!({"filler": "x".repeat(4096)});
    let (mut refused, mut published) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(60);
    while refused == 0 {
        assert!(
            Instant::now() < deadline,
            "publishing never reported a loss"
        );
        for _ in 0..1000 {
            published += 1;
            if !a.app.notify_channels(&["flood"], &payload).is_relayed() {
                refused += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let counted =
        a.metric(|m| m.backplane_dropped.get()) + a.metric(|m| m.backplane_not_relayed.get());
    assert!(
        counted >= refused,
        "{counted} counted, {refused} refused of {published}"
    );
    // The queue is bounded, so the node's own memory cannot grow with the backlog.
    assert!(published > refused);

    backplane.signal("-CONT");
    cluster.wait_health(200, Duration::from_secs(30)).await;
    let mut fresh_sender = connect(a, &[]).await;
    converge(&mut fresh_sender, "check", &mut [&mut checked]).await;
    cluster.stop().await;
}

async fn the_user_command_reaches_running_nodes(engine: Engine) {
    let Some((backplane, cluster)) = Cluster::on_shared(engine, 2).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (token, _) = a.user("cli@example.com").await;
    let mut on_a = a.connect_with(ConnectOptions::bearer(&token)).await;
    let mut on_b = b.connect_with(ConnectOptions::bearer(&token)).await;
    let user_root = on_b.info.root_id.clone();
    let Some(output) = cluster
        .run_binary(
            &backplane,
            &["user", "revoke", "--email", "cli@example.com"],
        )
        .await
    else {
        cluster.stop().await;
        return;
    };
    assert!(output.status.success(), "{output:?}");
    for client in [&mut on_a, &mut on_b] {
        let frames = drain(client, Duration::from_secs(2)).await;
        assert!(
            frames.iter().any(|f| f["code"] == "token_revoked"),
            "{frames:?}"
        );
        let last = frames.last().unwrap();
        assert_eq!(last["type"], "connection");
        assert_ne!(last["data"]["root_id"], json!(user_root));
    }
    cluster.stop().await;
}
