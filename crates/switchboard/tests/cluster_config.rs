//! Starting a node for a cluster: what is refused, and `/health` without a reachable backplane.

mod common;

use common::TestServer;
use common::cluster::{Schema, free_port, health, metrics_text};
use serde_json::json;
use switchboard::broker::Relay;
use switchboard::{Config, StartError, Switchboard};

fn with_backplane(url: &str) -> (Config, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.cluster.backplane = Some(url.to_string());
    (config, dir)
}

#[tokio::test]
async fn a_backplane_with_sqlite_accounts_is_refused_clearly() {
    let (config, _dir) = with_backplane("redis://127.0.0.1:6379");
    let err = Switchboard::builder(config).build().await.unwrap_err();
    assert!(matches!(err, StartError::Config(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("postgres://") && text.contains("SQLite"),
        "{text}"
    );
}

#[tokio::test]
async fn an_unknown_backplane_scheme_is_refused() {
    let (mut config, _dir) = with_backplane("http://127.0.0.1:6379");
    config.database_url = Some("postgres://postgres@127.0.0.1:5432/test".into());
    let err = Switchboard::builder(config).build().await.unwrap_err();
    assert!(err.to_string().contains("redis://"), "{err}");
}

#[tokio::test]
async fn a_single_node_is_healthy_and_relays_trivially() {
    let server = TestServer::start().await;
    let (status, body) = health(&server).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({
            "status": "ok",
            "backplane": "none",
            "database": "up",
            "node_id": server.app.node_id(),
        })
    );
    assert_eq!(server.app.broadcast(&json!({"x": 1})), Relay::Relayed);
    assert!(
        metrics_text(&server)
            .await
            .contains("switchboard_backplane_up 0")
    );
}

/// A node whose backplane never answers starts, serves, and says so.
#[tokio::test]
async fn an_unreachable_backplane_reports_degraded_and_not_relayed() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    for scheme in ["redis", "nats"] {
        let url = format!("{scheme}://127.0.0.1:{}", free_port());
        let server = TestServer::start_with(|config| {
            config.cluster.backplane = Some(url.clone());
            config.database_url = Some(schema.url());
        })
        .await;
        let (status, body) = health(&server).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["status"], "degraded");
        assert_eq!(body["backplane"], "down");
        assert_eq!(body["database"], "up");
        assert!(body["node_id"].as_str().is_some_and(|id| !id.is_empty()));
        assert_eq!(
            server.app.notify_channels(&["room"], &json!({"x": 1})),
            Relay::BackplaneDown
        );
        assert_eq!(server.metric(|m| m.backplane_not_relayed.get()), 1);
        let mut client = server.connect().await;
        common::assert_alive(&mut client).await;
    }
    schema.drop_now().await;
}
