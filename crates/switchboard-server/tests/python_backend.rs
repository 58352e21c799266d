//! The Python example backend (`examples/python-backend`, Flask) beside the binary: an upstream
//! walker served in Python, with its signed request checked there, and Python publishing to a
//! browser-like client through `POST /api/publish`.
//!
//! Needs `python3` with `venv` and access to PyPI on the first run (the venv is kept under the
//! target directory); without them it prints that it skipped, and fails under
//! `SWITCHBOARD_REQUIRE_SERVICES=1`.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_client::{
    ConnectOptions, Incoming, JacClient, NamespaceClient, NamespaceOptions, http,
};

#[path = "../../switchboard/tests/common/skip.rs"]
mod skip;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const SECRET: &str = "python example secret";
const API_KEY: &str = "python-example-api-key";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/python-backend")
}

/// Make the venv once (Flask and requests from PyPI).
fn venv() -> Result<PathBuf, String> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-backend-venv");
    if venv.join("bin/python").exists() && venv.join(".installed").exists() {
        return Ok(venv);
    }
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .map_err(|err| format!("python3: {err}"))?;
    if !made.success() {
        return Err("python3 -m venv failed (is python3-venv installed?)".into());
    }
    let installed = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(example_dir().join("requirements.txt"))
        .status()
        .map_err(|err| format!("pip: {err}"))?;
    if !installed.success() {
        return Err("pip install -r requirements.txt failed (no access to PyPI?)".into());
    }
    std::fs::write(venv.join(".installed"), b"").map_err(|err| err.to_string())?;
    Ok(venv)
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the backend did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_switchboard(dir: &Path, backend_port: u16) -> (Killed, String) {
    let config = dir.join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "demo = false\n[upstream]\nsecret = \"{SECRET}\"\n\
             [[api_key]]\nname = \"python\"\nkey = \"{API_KEY}\"\n\
             [[walker]]\nname = \"create_todo\"\n\
             upstream = \"http://127.0.0.1:{backend_port}/walkers/create_todo\"\n\
             [[namespace]]\nname = \"support\"\non_connect = \"upstream\"\n\
             on_message = \"upstream\"\n\
             upstream = \"http://127.0.0.1:{backend_port}/ws/support\"\n"
        ),
    )
    .expect("config");
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--config")
        .arg(&config)
        .env("SWITCHBOARD_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn switchboard");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("switchboard listening on http://") {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("switchboard did not report its address");
    (Killed(child), addr)
}

#[tokio::test]
async fn a_python_backend_serves_a_walker_and_publishes_to_clients() {
    let venv = match venv() {
        Ok(venv) => venv,
        Err(why) => return skip::skip(&format!("python backend: {why}")),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let backend_port = free_port();
    let (switchboard, addr) = start_switchboard(dir.path(), backend_port);
    let backend = Killed(
        Command::new(venv.join("bin/python"))
            .arg(example_dir().join("app.py"))
            .env("PORT", backend_port.to_string())
            .env("UPSTREAM_SECRET", SECRET)
            .env("BACKEND_API_KEY", API_KEY)
            .env("SWITCHBOARD_URL", format!("http://{addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the backend"),
    );
    wait_for_port(backend_port);

    let creds = json!({"email": "py@example.com", "password": "correct horse"});
    let registered = http::post_json(&addr, "/user/register", &creds, None)
        .await
        .expect("register");
    assert_eq!(registered.status, 201, "{}", registered.text());
    let login = http::post_json(&addr, "/user/login", &creds, None)
        .await
        .expect("login");
    let token = login.json()["token"].as_str().expect("token").to_owned();

    let ws = format!("ws://{addr}");
    let mut tab = JacClient::connect(&ws, ConnectOptions::bearer(token.clone()))
        .await
        .expect("connect");
    let mut other_tab = JacClient::connect(&ws, ConnectOptions::bearer(token.clone()))
        .await
        .expect("connect");
    tab.send_json(&json!({"type": "walker", "walker": "create_todo",
        "context": {"title": "buy milk"}, "response": true}))
        .await
        .expect("send");
    let todo = json!({"title": "buy milk", "by": "py@example.com"});
    // Python's notify reaches both tabs, the caller's before its reply.
    let expected = json!({"type": "todo_created", "data": todo});
    assert_eq!(tab.recv_json().await.expect("notification"), expected);
    let reply = tab.recv_json().await.expect("reply");
    assert_eq!(reply["status"], 200, "{reply}");
    assert_eq!(reply["reports"], json!([todo]));
    assert_eq!(other_tab.recv_json().await.expect("notification"), expected);

    // Python publishing on its own.
    let announced = http::post_json(
        &format!("127.0.0.1:{backend_port}"),
        "/announce",
        &json!({"text": "deploy at five"}),
        None,
    )
    .await
    .expect("announce");
    assert_eq!(announced.status, 200, "{}", announced.text());
    assert_eq!(announced.json(), json!({"delivered": 2, "relayed": true}));
    for client in [&mut tab, &mut other_tab] {
        assert_eq!(
            client.recv_json().await.expect("announcement"),
            json!({"type": "announcement", "data": {"text": "deploy at five"}})
        );
    }

    // The support namespace: Python refuses an anonymous caller with its reason...
    let mut anonymous = NamespaceClient::open(&ws, "support", &NamespaceOptions::default())
        .await
        .expect("upgrade");
    let refusal = anonymous.recv_json().await.expect("refusal");
    assert_eq!(
        refusal,
        json!({"success": false, "error": "log in to reach support", "code": 403, "username": ""})
    );
    match anonymous.recv(Duration::from_secs(10)).await {
        Ok(Incoming::Closed { code, .. }) => assert_eq!(code, Some(4403)),
        other => panic!("expected close 4403, got {other:?}"),
    }
    // ...admits a logged-in one and answers its message.
    let mut asker = NamespaceClient::connect(
        &ws,
        "support",
        &NamespaceOptions::default().bearer(token.clone()),
    )
    .await
    .expect("admitted");
    asker
        .send_json(&json!({"text": "where is my order?", "requestId": "q1"}))
        .await
        .expect("ask");
    let question = asker.recv_json().await.expect("notification");
    assert_eq!(question["data"]["type"], "question", "{question}");
    assert_eq!(question["data"]["asker"], "py@example.com");
    let answer = asker.recv_json().await.expect("answer");
    assert_eq!(answer["requestId"], "q1", "{answer}");
    assert_eq!(answer["data"]["type"], "answer", "{answer}");
    assert_eq!(
        answer["data"]["text"],
        "we got your question: where is my order?"
    );
    drop(backend);
    drop(switchboard);
}
