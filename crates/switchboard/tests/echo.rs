//! The conformance echo endpoint exists only when configured.

mod common;

use common::TestServer;
use futures_util::{SinkExt, StreamExt};
use tokio_websockets::{ClientBuilder, Message};

#[tokio::test]
async fn echo_endpoint_is_off_by_default() {
    let server = TestServer::start().await;
    let response = switchboard_client::http::get(&server.addr, "/echo", None)
        .await
        .unwrap();
    assert_eq!(response.status, 404);
}

#[tokio::test]
async fn echo_endpoint_echoes_text_and_binary_when_configured() {
    let server = TestServer::start_with(|c| c.echo_path = Some("/echo".into())).await;
    let (mut socket, _) = ClientBuilder::new()
        .uri(&format!("{}/echo", server.ws))
        .unwrap()
        .connect()
        .await
        .unwrap();
    socket.send(Message::text("héllo")).await.unwrap();
    assert_eq!(
        socket.next().await.unwrap().unwrap().as_text(),
        Some("héllo")
    );
    socket
        .send(Message::binary(vec![0u8, 255, 7]))
        .await
        .unwrap();
    let echoed = socket.next().await.unwrap().unwrap();
    assert!(echoed.is_binary());
    assert_eq!(&echoed.as_payload()[..], &[0u8, 255, 7]);
}
