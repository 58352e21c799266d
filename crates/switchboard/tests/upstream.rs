//! Walkers served by the team's own backend over HTTP (`[[walker]]` with `upstream`): the signed
//! request, the answer's reports and notifications, and every way an upstream can fail, each
//! reaching the client as a clean error with a stable code (never a hang).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{TestServer, assert_error};
use serde_json::{Value, json};
use switchboard::config::UpstreamWalker;
use switchboard::walker::Method;
use switchboard_client::{ConnectOptions, http};

const SECRET: &str = "shared with the backend";

/// The team's backend: one route per behaviour, counting the requests it receives.
#[derive(Clone, Default)]
struct Backend {
    hits: Arc<AtomicUsize>,
}

fn verify(headers: &HeaderMap, body: &[u8]) -> bool {
    common::backend::signed(headers, body, SECRET)
}

async fn start_backend() -> (String, Backend) {
    let backend = Backend::default();
    let app = axum::Router::new()
        .route(
            "/create_todo",
            axum::routing::post(
                |State(b): State<Backend>, headers: HeaderMap, body: axum::body::Bytes| async move {
                    b.hits.fetch_add(1, Ordering::SeqCst);
                    if !verify(&headers, &body) {
                        return (StatusCode::UNAUTHORIZED, "bad signature".to_string());
                    }
                    let request: Value = serde_json::from_slice(&body).expect("json");
                    // A logged-in caller's other connections hear about it too.
                    let notify: Vec<Value> = request["caller"]["user_id"]
                        .as_str()
                        .map(|user| {
                            json!({
                                "target": {"users": [user]},
                                "event": "todo_created",
                                "data": {"title": request["context"]["title"]},
                            })
                        })
                        .into_iter()
                        .collect();
                    let answer = json!({"reports": [{"request": request}], "notify": notify});
                    (StatusCode::OK, answer.to_string())
                },
            ),
        )
        .route(
            "/slow",
            axum::routing::post(|State(b): State<Backend>| async move {
                b.hits.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(3)).await;
                r#"{"reports":[]}"#
            }),
        )
        .route(
            "/fail",
            axum::routing::post(|State(b): State<Backend>| async move {
                b.hits.fetch_add(1, Ordering::SeqCst);
                (StatusCode::INTERNAL_SERVER_ERROR, "boom: secret detail")
            }),
        )
        .route(
            "/bad_shape",
            axum::routing::post(|State(b): State<Backend>| async move {
                b.hits.fetch_add(1, Ordering::SeqCst);
                r#"{"reports": 3}"#
            }),
        )
        .route(
            "/not_json",
            axum::routing::post(|State(b): State<Backend>| async move {
                b.hits.fetch_add(1, Ordering::SeqCst);
                "<html>oops</html>"
            }),
        )
        .with_state(backend.clone());
    (common::backend::serve(app).await, backend)
}

fn walker(name: &str, url: String, public: bool) -> UpstreamWalker {
    UpstreamWalker {
        name: name.into(),
        methods: vec![Method::WebSocket, Method::Post],
        public,
        upstream: url,
    }
}

async fn server_with(base: &str, tweak: impl FnOnce(&mut switchboard::Config)) -> TestServer {
    let base = base.to_owned();
    TestServer::start_with(move |config| {
        config.upstream.secret = Some(SECRET.into());
        config.upstream.timeout_ms = 500;
        config.walkers = vec![
            walker("create_todo", format!("{base}/create_todo"), false),
            walker("public_todo", format!("{base}/create_todo"), true),
            walker("slow", format!("{base}/slow"), true),
            walker("fail", format!("{base}/fail"), true),
            walker("bad_shape", format!("{base}/bad_shape"), true),
            walker("not_json", format!("{base}/not_json"), true),
            walker("nobody_home", "http://127.0.0.1:9/".into(), true),
        ];
        tweak(config);
    })
    .await
}

async fn rest(server: &TestServer, walker: &str, token: Option<&str>) -> (u16, Value) {
    let response = http::post_json(
        &server.addr,
        &format!("/walker/{walker}"),
        &json!({"title": "milk"}),
        token,
    )
    .await
    .expect("request");
    (response.status, response.json())
}

#[tokio::test]
async fn a_signed_request_carries_the_caller_and_the_answer_notifies_before_the_reply() {
    let (base, _backend) = start_backend().await;
    let server = server_with(&base, |_| {}).await;
    let (token, user) = server.user("todo@example.com").await;
    let user_id = user["id"].as_str().expect("id").to_owned();

    let mut client = server
        .connect_with(ConnectOptions::bearer(token.clone()))
        .await;
    let client_id = client.info.client_id.clone();
    client
        .send_json(&json!({"type": "walker", "walker": "create_todo",
            "context": {"title": "milk"}, "response": true}))
        .await
        .expect("send");
    // The notification first, in the Jac dialect's shape, then the reply.
    let notification = client.recv_json().await.expect("notification");
    assert_eq!(
        notification,
        json!({"type": "todo_created", "data": {"title": "milk"}})
    );
    let reply = client.recv_json().await.expect("reply");
    assert_eq!(reply["status"], 200, "{reply}");
    let request = &reply["reports"][0]["request"];
    assert_eq!(request["walker"], "create_todo");
    assert_eq!(request["context"], json!({"title": "milk"}));
    assert_eq!(request["caller"]["user_id"], user_id.as_str());
    assert_eq!(request["caller"]["username"], "todo@example.com");
    assert_eq!(request["caller"]["roles"], json!([]));
    assert_eq!(request["caller"]["client_id"], client_id.as_str());
    assert_eq!(request["node_id"], server.app.node_id());

    // Over REST the caller has no client id.
    let (status, body) = rest(&server, "create_todo", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["reports"][0]["request"]["caller"]["client_id"],
        Value::Null
    );
    // A public caller: no user id, empty username and roles; the walker's own rule refuses a
    // non-public walker before any request leaves.
    let (status, body) = rest(&server, "public_todo", None).await;
    assert_eq!(status, 200, "{body}");
    let caller = &body["reports"][0]["request"]["caller"];
    assert_eq!(
        caller,
        &json!({"user_id": null, "username": "", "roles": [], "client_id": null})
    );
    let (status, body) = rest(&server, "create_todo", None).await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test]
async fn each_failure_has_its_code_and_status_and_no_internal_detail() {
    let (base, _backend) = start_backend().await;
    let server = server_with(&base, |_| {}).await;
    for (walker, status, code) in [
        ("slow", 504, "upstream_timeout"),
        ("fail", 502, "upstream_error"),
        ("bad_shape", 502, "upstream_error"),
        ("not_json", 502, "upstream_error"),
        ("nobody_home", 502, "upstream_error"),
    ] {
        let (got, body) = rest(&server, walker, None).await;
        assert_eq!(got, status, "{walker}: {body}");
        assert_eq!(body["code"], code, "{walker}: {body}");
        assert!(!body.to_string().contains("secret detail"), "{body}");
    }
    // The same over a WebSocket, and the connection stays usable.
    let mut client = server.connect().await;
    let reply = client.call_walker("fail", json!({})).await.expect("reply");
    assert_error(&reply, "upstream_error");
    let reply = client.call_walker("slow", json!({})).await.expect("reply");
    assert_error(&reply, "upstream_timeout");
    common::assert_alive(&mut client).await;
}

#[tokio::test]
async fn repeated_failures_open_the_circuit_and_calls_fail_at_once() {
    let (base, backend) = start_backend().await;
    let server = server_with(&base, |_| {}).await;
    for _ in 0..switchboard::upstream::BREAKER_FAILURES {
        let (status, body) = rest(&server, "fail", None).await;
        assert_eq!(body["code"], "upstream_error", "{status} {body}");
    }
    assert_eq!(backend.hits.load(Ordering::SeqCst), 5);
    for _ in 0..3 {
        let (status, body) = rest(&server, "fail", None).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["code"], "upstream_unavailable", "{body}");
    }
    // Nothing reached the backend while the circuit was open.
    assert_eq!(backend.hits.load(Ordering::SeqCst), 5);
    // The circuit is per URL: another upstream still answers.
    let (status, body) = rest(&server, "public_todo", None).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn calls_over_the_in_flight_bound_are_refused_at_once() {
    let (base, backend) = start_backend().await;
    let server = server_with(&base, |config| {
        config.upstream.max_in_flight = 1;
        config.upstream.timeout_ms = 6000;
    })
    .await;
    let addr = server.addr.clone();
    let held = tokio::spawn(async move {
        http::post_json(&addr, "/walker/slow", &json!({}), None)
            .await
            .expect("request")
            .status
    });
    // Wait until the slow call reached the backend: it holds the only slot until it answers.
    for _ in 0..500 {
        if backend.hits.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        backend.hits.load(Ordering::SeqCst),
        1,
        "the slow call started"
    );
    let (status, body) = rest(&server, "public_todo", None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "upstream_busy", "{body}");
    // Refused before any request left.
    assert_eq!(backend.hits.load(Ordering::SeqCst), 1);
    assert_eq!(held.await.expect("join"), 200);
    // The slot is free again.
    let (status, body) = rest(&server, "public_todo", None).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn an_upstream_walker_without_a_secret_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = switchboard::Config {
        data_dir: dir.path().to_path_buf(),
        ..switchboard::Config::default()
    };
    config.walkers = vec![walker("w", "http://127.0.0.1:9/".into(), true)];
    let err = switchboard::Switchboard::builder(config)
        .build()
        .await
        .expect_err("no secret");
    assert!(err.to_string().contains("upstream.secret"), "{err}");
}
