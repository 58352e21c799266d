//! `GET /health` (backplane and database) and `GET /ready` (starting, serving, stopping), as a
//! load balancer sees them.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use common::cluster::{Schema, health};
use serde_json::{Value, json};
use switchboard::{Config, Switchboard};
use switchboard_client::http;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

async fn ready(addr: &str) -> (u16, Value) {
    let response = http::get(addr, "/ready", None).await.expect("GET /ready");
    (response.status, response.json())
}

#[tokio::test]
async fn a_single_node_is_healthy_and_names_its_database_and_backplane() {
    let server = TestServer::start().await;
    assert_eq!(
        health(&server).await,
        (
            200,
            json!({
                "status": "ok",
                "backplane": "none",
                "database": "up",
                "node_id": server.app.node_id(),
            })
        )
    );
}

/// A TCP relay to `upstream`; aborting its task closes the listener and every relayed
/// connection, as a database that went away would.
fn relay(listener: TcpListener, upstream: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut pipes = JoinSet::new();
        while let Ok((mut client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            pipes.spawn(async move {
                if let Ok(mut server) = TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    })
}

/// `postgres://user@host:port/db?...` -> `host:port`.
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split_once('@').map_or(rest, |(_, rest)| rest);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

#[tokio::test]
async fn health_says_which_when_the_database_stops_answering() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_addr = listener.local_addr().unwrap().to_string();
    let url = schema.url();
    let database = authority(&url).to_string();
    let relay = relay(listener, database.clone());
    let through_relay = url.replacen(&database, &relay_addr, 1);
    let server = TestServer::start_with(|config| config.database_url = Some(through_relay)).await;
    let (status, body) = health(&server).await;
    assert_eq!((status, &body["database"]), (200, &json!("up")), "{body}");

    relay.abort();
    let _ = relay.await;
    let (status, body) = health(&server).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body,
        json!({
            "status": "degraded",
            "backplane": "none",
            "database": "down",
            "node_id": server.app.node_id(),
        })
    );
    // Liveness is another question: the process still answers.
    let alive = http::get(&server.addr, "/healthz", None).await.unwrap();
    assert_eq!(alive.status, 200);
    schema.drop_now().await;
}

#[tokio::test]
async fn ready_says_starting_until_the_accept_loop_runs() {
    let data_dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: data_dir.path().to_path_buf(),
        ..Config::default()
    };
    let app = Switchboard::builder(config).build().await.unwrap();
    // The router served by a plain server: the app is built, but `switchboard::serve` has not
    // started its accept loop.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let router = switchboard::http::router(app.clone());
    let plain = tokio::spawn(async move { axum::serve(listener, router).await });
    assert_eq!(
        ready(&addr).await,
        (503, json!({"status": "starting", "node_id": app.node_id()}))
    );
    plain.abort();

    let server = TestServer::start().await;
    assert_eq!(
        ready(&server.addr).await,
        (
            200,
            json!({"status": "ready", "node_id": server.app.node_id()})
        )
    );
}

#[tokio::test]
async fn on_shutdown_ready_answers_503_for_the_grace_while_the_node_still_serves() {
    let mut server = TestServer::start_with(|c| c.shutdown.ready_grace_ms = 1500).await;
    let addr = server.addr.clone();
    let ws = server.ws.clone();
    let shutting = tokio::spawn(async move {
        server.shutdown().await;
        server
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = ready(&addr).await;
        if status == 503 {
            assert_eq!(body["status"], "stopping");
            break;
        }
        assert!(Instant::now() < deadline, "/ready stayed {status} {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Not ready, yet still serving: a new client connects and is answered.
    let mut late = switchboard_client::JacClient::connect(&ws, Default::default())
        .await
        .expect("still accepting during the grace");
    common::assert_alive(&mut late).await;
    let _server = shutting.await.unwrap();
    assert!(
        TcpStream::connect(&addr).await.is_err(),
        "the listener closed after the grace"
    );
}
