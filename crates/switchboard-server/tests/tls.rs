//! TLS without a proxy, as an operator runs it: `[tls]` in the config file, `https://` and
//! `wss://` from the binary alone, the certificate swapped on SIGHUP, and a clear start error
//! for each wrong file. Clients verify the server against a self-signed root made here.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{BIN, Server};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// A self-signed certificate for `localhost` and `127.0.0.1`, written as PEM files.
struct SelfSigned {
    cert_pem: String,
    key_pem: String,
}

impl SelfSigned {
    fn new() -> SelfSigned {
        let generated =
            rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
                .expect("generate a certificate");
        SelfSigned {
            cert_pem: generated.cert.pem(),
            key_pem: generated.key_pair.serialize_pem(),
        }
    }

    fn write(&self, cert: &Path, key: &Path) {
        std::fs::write(cert, &self.cert_pem).unwrap();
        std::fs::write(key, &self.key_pem).unwrap();
    }

    /// A client configuration that trusts only this certificate.
    fn client(&self) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        let der = CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).unwrap();
        roots.add(der).unwrap();
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }
}

/// A directory with `cert.pem`, `key.pem` and a config file naming them.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new(cert: &SelfSigned) -> Site {
        let site = Site {
            dir: tempfile::tempdir().unwrap(),
        };
        cert.write(&site.cert(), &site.key());
        let config = format!(
            "demo = false\n[tls]\ncert = {:?}\nkey = {:?}\n",
            site.cert(),
            site.key()
        );
        std::fs::write(site.config(), config).unwrap();
        site
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }
    fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }
    fn config(&self) -> PathBuf {
        self.dir.path().join("switchboard.toml")
    }

    /// Start the binary on this site, its error logs sent to the returned channel line by line.
    fn start(&self) -> (Server, std::sync::mpsc::Receiver<String>) {
        let config = self.config();
        let mut command = Server::command(
            self.dir.path(),
            &[
                "--listen",
                "127.0.0.1:0",
                "--config",
                config.to_str().unwrap(),
            ],
            &[("SWITCHBOARD_LOG", "error")],
        );
        command.stderr(Stdio::piped());
        let mut server = Server::spawn(command);
        let stderr = server.child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        (server, rx)
    }
}

/// Open a TLS connection as `localhost`, verifying the server with `connector`.
async fn tls_connect(
    addr: &str,
    connector: &TlsConnector,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await
}

/// Open `wss://localhost/websocket` over a verified TLS connection.
async fn wss(
    addr: &str,
    connector: &TlsConnector,
) -> tokio_websockets::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>> {
    let stream = tls_connect(addr, connector).await.expect("TLS handshake");
    let port = addr.rsplit(':').next().unwrap();
    let (ws, _) = tokio_websockets::ClientBuilder::new()
        .uri(&format!("wss://localhost:{port}/websocket?channel_id=room"))
        .unwrap()
        .connect_on(stream)
        .await
        .expect("WebSocket upgrade over TLS");
    ws
}

async fn next_text(
    ws: &mut tokio_websockets::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>,
) -> tokio_websockets::Message {
    tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a message within 10 s")
        .expect("the stream is open")
        .expect("a valid frame")
}

#[tokio::test]
async fn https_and_wss_are_served_with_the_configured_certificate() {
    let cert = SelfSigned::new();
    let site = Site::new(&cert);
    let (server, _logs) = site.start();
    assert_eq!(server.scheme, "https");

    // https:// with a client that trusts only our certificate.
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let port = server.addr.rsplit(':').next().unwrap();
    let health = client
        .get(format!("https://localhost:{port}/health"))
        .send()
        .await
        .expect("https request");
    assert_eq!(health.status(), 200);
    let body: serde_json::Value = serde_json::from_str(&health.text().await.unwrap()).unwrap();
    assert_eq!(body["status"], "ok");

    // A login over the server's own TLS sets a cookie only HTTPS will carry back.
    let creds = serde_json::json!({"email": "tls@example.com", "password": "correct horse"});
    let post = |path: &str| {
        client
            .post(format!("https://localhost:{port}{path}"))
            .header("content-type", "application/json")
            .body(creds.to_string())
            .send()
    };
    assert_eq!(
        post("/user/register").await.expect("register").status(),
        201
    );
    let login = post("/user/login").await.expect("login");
    assert_eq!(login.status(), 200);
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a login cookie")
        .to_string();
    assert!(cookie.ends_with("; Secure"), "{cookie}");

    // wss:// sees the Jac Cloud connection frame, as over ws://.
    let mut ws = wss(&server.addr, &cert.client()).await;
    let first = next_text(&mut ws).await;
    let frame: serde_json::Value = serde_json::from_str(first.as_text().unwrap()).unwrap();
    assert_eq!(frame["type"], "connection");
    assert_eq!(frame["data"]["channel_id"], "room");

    // Graceful shutdown works over TLS: the socket is closed with 1001, the process exits 0.
    let pid = server.child.id();
    let exit = tokio::task::spawn_blocking(move || server.terminate());
    let close = next_text(&mut ws).await;
    let (code, _) = close.as_close().expect("a close frame");
    assert_eq!(u16::from(code), 1001, "server {pid}");
    assert!(exit.await.unwrap().success());
}

#[tokio::test]
async fn a_plain_http_client_is_refused_and_the_server_keeps_serving() {
    let cert = SelfSigned::new();
    let site = Site::new(&cert);
    let (server, _logs) = site.start();

    let mut plain = TcpStream::connect(&server.addr).await.unwrap();
    plain
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut answer))
        .await
        .expect("the server closes a plain connection");
    // Closed, perhaps after a TLS alert; never an HTTP answer in clear text.
    assert!(read.is_ok() || answer.is_empty(), "{read:?}");
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");

    tls_connect(&server.addr, &cert.client())
        .await
        .expect("TLS still served after a plain client");
}

#[tokio::test]
async fn sighup_serves_a_new_certificate_and_keeps_it_when_the_next_file_is_bad() {
    let first = SelfSigned::new();
    let site = Site::new(&first);
    let (mut server, logs) = site.start();
    let mut before = wss(&server.addr, &first.client()).await;
    next_text(&mut before).await;

    // A renewed certificate (a new key too) is served to new handshakes after SIGHUP.
    let second = SelfSigned::new();
    second.write(&site.cert(), &site.key());
    server.signal("HUP");
    let mut served = false;
    for _ in 0..100 {
        if tls_connect(&server.addr, &second.client()).await.is_ok() {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "the new certificate was not served after SIGHUP");
    assert!(
        tls_connect(&server.addr, &first.client()).await.is_err(),
        "the old certificate is still served"
    );
    let mut after = wss(&server.addr, &second.client()).await;
    assert!(next_text(&mut after).await.as_text().is_some());

    // A broken file on the next SIGHUP is logged as an error; the last good one stays.
    std::fs::write(site.cert(), "not a certificate").unwrap();
    server.signal("HUP");
    let error = logs
        .recv_timeout(Duration::from_secs(10))
        .expect("an error log for the bad certificate");
    assert!(error.contains("tls.cert"), "{error}");
    assert!(error.contains("previous"), "{error}");
    tls_connect(&server.addr, &second.client())
        .await
        .expect("the last good certificate is still served");
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "SIGHUP killed it"
    );
    assert!(server.terminate().success());
}

/// Run the binary on `config` and return its failure output.
fn start_error(dir: &Path, config: &str) -> String {
    let file = dir.join("bad.toml");
    std::fs::write(&file, config).unwrap();
    let out = Command::new(BIN)
        .current_dir(dir)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--config",
            file.to_str().unwrap(),
        ])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!out.status.success(), "started with {config}");
    let check = Command::new(BIN)
        .args(["config", "check", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1), "config check passed {config}");
    let check_stderr = String::from_utf8_lossy(&check.stderr).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let tls_line = stderr
        .lines()
        .find(|line| line.contains("tls."))
        .unwrap_or("");
    assert!(
        check_stderr.contains(tls_line.trim_start_matches("Error: ")),
        "start and check disagree:\n{stderr}\n{check_stderr}"
    );
    stderr
}

#[test]
fn a_missing_or_malformed_certificate_is_a_start_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cert = SelfSigned::new();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    cert.write(&cert_file, &key_file);
    let tls = |cert: &Path, key: &Path| format!("[tls]\ncert = {cert:?}\nkey = {key:?}\n");

    let missing = dir.path().join("missing.pem");
    let err = start_error(dir.path(), &tls(&missing, &key_file));
    assert!(
        err.contains("tls.cert") && err.contains("missing.pem"),
        "{err}"
    );
    assert!(err.contains("cannot read"), "{err}");

    let err = start_error(dir.path(), &tls(&cert_file, &missing));
    assert!(
        err.contains("tls.key") && err.contains("missing.pem"),
        "{err}"
    );

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();
    let err = start_error(dir.path(), &tls(&garbage, &key_file));
    assert!(
        err.contains("tls.cert") && err.contains("garbage.pem"),
        "{err}"
    );

    let err = start_error(dir.path(), &tls(&key_file, &key_file));
    assert!(
        err.contains("tls.cert") && err.contains("no CERTIFICATE"),
        "{err}"
    );

    let err = start_error(dir.path(), &tls(&cert_file, &cert_file));
    assert!(
        err.contains("tls.key") && err.contains("PRIVATE KEY"),
        "{err}"
    );

    // A key that belongs to another certificate.
    let other = SelfSigned::new();
    let other_key = dir.path().join("other-key.pem");
    std::fs::write(&other_key, &other.key_pem).unwrap();
    let err = start_error(dir.path(), &tls(&cert_file, &other_key));
    assert!(err.contains("does not fit"), "{err}");

    let err = start_error(dir.path(), &format!("[tls]\ncert = {cert_file:?}\n"));
    assert!(err.contains("tls.key is not"), "{err}");
}
