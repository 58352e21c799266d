//! The demo app: the walkers of seed 000's chat example, a progress-notification walker, the
//! chat page at `/`, the rooms page of the channel dialect at `/rooms` and the live-cursors page
//! of the `cursors` namespace at `/cursors` (with the JavaScript SDK at `/switchboard.js` and its
//! dialect modules at `/channel.js` and `/namespace.js`).
//!
//! The walkers are the seed's, as a client written from seed 000 sees them: `chat_service`
//! declares no `auth` setting there, so it needs a login as in Jac Cloud; progress notifications
//! are the seed's `notify_self` payload, `{"progress": "0%", "status": "started"}`, as the whole
//! frame.

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;
use switchboard::{Call, Method, SwitchboardBuilder, Walker};

const CHAT_PAGE: &str = include_str!("../web/index.html");
const SDK: &str = include_str!("../../../clients/js/src/switchboard.js");
/// The SDK's channel-dialect module, which `switchboard.js` imports from beside itself.
const SDK_CHANNEL: &str = include_str!("../../../clients/js/src/channel.js");
/// The rooms page: the channel dialect with a member list kept live by presence.
const ROOMS_PAGE: &str = include_str!("../web/rooms.html");
/// The live-cursors page: the `cursors` namespace.
const CURSORS_PAGE: &str = include_str!("../web/cursors.html");
/// The SDK's namespace-dialect module, imported from beside `switchboard.js`.
const SDK_NAMESPACE: &str = include_str!("../../../clients/js/src/namespace.js");

/// `chat_service`: echoes the message back as a report (seed 000, step 1). Like every walker
/// of the seed it needs a logged-in user.
#[derive(Deserialize)]
struct ChatService {
    message: String,
}

/// `send_chat_to_user`: a chat message to every connection of one user.
#[derive(Deserialize)]
struct SendChatToUser {
    root_id: String,
    #[serde(default = "hello_user")]
    message: String,
}

/// `send_chat_to_group`: a chat message to every connection in one channel.
#[derive(Deserialize)]
struct SendChatToGroup {
    channel_id: String,
    #[serde(default = "hello_channel")]
    message: String,
}

/// `send_chat_to_client`: a chat message to one connection.
#[derive(Deserialize)]
struct SendChatToClient {
    client_id: String,
    #[serde(default = "hello_client")]
    message: String,
}

/// `self_progress_notif`: no fields. Sends the seed's `notify_self` payload at each step.
#[derive(Deserialize)]
struct SelfProgress {}

fn hello_user() -> String {
    "Hello user!".into()
}
fn hello_channel() -> String {
    "Hello channel!".into()
}
fn hello_client() -> String {
    "Hello client!".into()
}

fn chat(message: &str) -> serde_json::Value {
    json!({"type": "chat", "data": {"message": message}})
}

/// Register the demo walkers.
pub fn walkers(builder: SwitchboardBuilder) -> SwitchboardBuilder {
    builder
        .walker(
            Walker::new("chat_service", |call: Call<ChatService>| async move {
                Ok(vec![json!(format!("Received: {}", call.context.message))])
            })
            .methods(&[Method::WebSocket]),
        )
        .walker(Walker::new(
            "send_chat_to_user",
            |call: Call<SendChatToUser>| async move {
                let ctx = call.context;
                call.notify
                    .notify_users(&[ctx.root_id], &chat(&ctx.message));
                Ok(vec![json!("Message sent to user!")])
            },
        ))
        .walker(Walker::new(
            "send_chat_to_group",
            |call: Call<SendChatToGroup>| async move {
                let ctx = call.context;
                call.notify
                    .notify_channels(&[ctx.channel_id], &chat(&ctx.message));
                Ok(vec![json!("Message sent to channel!")])
            },
        ))
        .walker(Walker::new(
            "send_chat_to_client",
            |call: Call<SendChatToClient>| async move {
                let ctx = call.context;
                call.notify
                    .notify_clients(&[ctx.client_id], &chat(&ctx.message));
                Ok(vec![json!("Message sent to client!")])
            },
        ))
        .walker(
            Walker::new(
                "self_progress_notif",
                |call: Call<SelfProgress>| async move {
                    let _: SelfProgress = call.context;
                    let mut reports = Vec::new();
                    for step in 0..=5 {
                        let progress = format!("{}%", step * 20);
                        let status = match step {
                            0 => "started",
                            5 => "completed",
                            _ => "processing",
                        };
                        call.notify
                            .notify_self(&json!({"progress": progress, "status": status}));
                        reports.push(json!(progress));
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                    Ok(reports)
                },
            )
            .methods(&[Method::WebSocket])
            .public(),
        )
}

/// The pages and the SDK files they load.
pub fn pages() -> Router {
    Router::new()
        .route("/", get(|| async { Html(CHAT_PAGE) }))
        .route("/rooms", get(|| async { Html(ROOMS_PAGE) }))
        .route("/switchboard.js", get(|| async { javascript(SDK) }))
        .route("/channel.js", get(|| async { javascript(SDK_CHANNEL) }))
        .route("/cursors", get(|| async { Html(CURSORS_PAGE) }))
        .route("/namespace.js", get(|| async { javascript(SDK_NAMESPACE) }))
}

fn javascript(source: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        source,
    )
        .into_response()
}
