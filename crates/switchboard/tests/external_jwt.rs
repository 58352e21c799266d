//! Tokens minted by the team's own identity provider (`[jwt]`): each algorithm and key source
//! is accepted over REST and WebSocket, and every forged, expired or misdirected token is
//! refused with the same answers as a bad Switchboard token.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{TestServer, assert_error};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::Mutex;
use serde_json::{Value, json};
use switchboard_client::{ConnectOptions, http};

const TEAM_SECRET: &str = "the team's own hs256 secret";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("fixture")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// Claims of a valid token for `sub`, valid for an hour.
fn claims(sub: &str) -> Value {
    json!({"sub": sub, "exp": now() + 3600, "preferred_username": format!("{sub}-name")})
}

fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

fn hs256(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(TEAM_SECRET.as_bytes()),
        None,
        claims,
    )
}

fn rs256(private: &str, kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(&read(private)).expect("rsa key");
    sign(Algorithm::RS256, &key, kid, claims)
}

fn es256(kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_ec_pem(&read("ec-private.pem")).expect("ec key");
    sign(Algorithm::ES256, &key, kid, claims)
}

/// A JWKS endpoint on loopback whose document can be swapped (a key rotation) and which
/// counts how often it is fetched.
struct KeySetServer {
    url: String,
    document: Arc<Mutex<Vec<u8>>>,
    fetches: Arc<AtomicUsize>,
}

impl KeySetServer {
    async fn start(initial: &str) -> Self {
        let document = Arc::new(Mutex::new(read(initial)));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (doc, count) = (document.clone(), fetches.clone());
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let (doc, count) = (doc.clone(), count.clone());
                async move {
                    count.fetch_add(1, Ordering::SeqCst);
                    ([("content-type", "application/json")], doc.lock().clone())
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{addr}/.well-known/jwks.json"),
            document,
            fetches,
        }
    }

    fn serve(&self, name: &str) {
        *self.document.lock() = read(name);
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// A server accepting HS256 (team secret), RS256 by PEM, and RS256/ES256 by JWKS.
async fn server(jwks: &KeySetServer, tweak: impl FnOnce(&mut switchboard::Config)) -> TestServer {
    let url = jwks.url.clone();
    TestServer::start_with(move |config| {
        config.jwt.hs256_secret = Some(TEAM_SECRET.into());
        config.jwt.public_key_pem = Some(fixture("rsa-public.pem"));
        config.jwt.jwks_url = Some(url);
        tweak(config);
    })
    .await
}

/// The REST answer of `whoami` for `token`: (status, body).
async fn whoami(server: &TestServer, token: &str) -> (u16, Value) {
    let response = http::post_json(&server.addr, "/walker/whoami", &json!({}), Some(token))
        .await
        .expect("request");
    (response.status, response.json())
}

async fn assert_accepted(server: &TestServer, token: &str, sub: &str) {
    let (status, body) = whoami(server, token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reports"][0]["root_id"], format!("n::{sub}"), "{body}");
}

async fn assert_refused(server: &TestServer, token: &str, code: &str) {
    let (status, body) = whoami(server, token).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], code, "{body}");
}

#[tokio::test]
async fn each_algorithm_and_key_source_is_accepted() {
    let jwks = KeySetServer::start("jwks.json").await;
    let server = server(&jwks, |_| {}).await;
    assert_accepted(&server, &hs256(&claims("hs-user")), "hs-user").await;
    assert_accepted(
        &server,
        &rs256("rsa-private.pem", None, &claims("pem-user")),
        "pem-user",
    )
    .await;
    assert_accepted(
        &server,
        &rs256("rsa-private.pem", Some("rsa-1"), &claims("rsa-kid-user")),
        "rsa-kid-user",
    )
    .await;
    assert_accepted(
        &server,
        &es256(Some("ec-1"), &claims("ec-kid-user")),
        "ec-kid-user",
    )
    .await;
    // One fetch served every kid.
    assert_eq!(jwks.fetches(), 1);
    // Switchboard's own accounts keep working beside them.
    let (own, user) = server.user("own@example.com").await;
    let (status, body) = whoami(&server, &own).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["reports"][0]["root_id"],
        format!("n::{}", user["root_id"].as_str().expect("root id"))
    );
}

#[tokio::test]
async fn an_external_user_connects_and_is_addressed_by_its_root_id() {
    let jwks = KeySetServer::start("jwks.json").await;
    let server = server(&jwks, |_| {}).await;
    let token = es256(Some("ec-1"), &claims("auth0|42"));
    let mut external = server
        .connect_with(ConnectOptions::bearer(token.clone()))
        .await;
    assert_eq!(external.info.root_id, "n::auth0|42");
    // The same identity on every node: derived from the user id alone.
    let mut again = server.connect_with(ConnectOptions::bearer(token)).await;
    assert_eq!(again.info.root_id, "n::auth0|42");

    let mut sender = server.connect().await;
    sender
        .send_json(&json!({"type": "user", "root_ids": ["n::auth0|42"], "data": {"hi": 1}}))
        .await
        .expect("send");
    assert_eq!(
        external.recv_json().await.expect("message"),
        json!({"hi": 1})
    );
    assert_eq!(again.recv_json().await.expect("message"), json!({"hi": 1}));

    // change_user to an external token works on a live public connection.
    let hs = hs256(&claims("switched"));
    sender
        .send_json(&json!({"type": "change_user", "token": hs}))
        .await
        .expect("send");
    let frame = sender.recv_json().await.expect("connection frame");
    assert_eq!(frame["data"]["root_id"], "n::switched", "{frame}");
}

#[tokio::test]
async fn roles_come_from_the_configured_claim_as_an_array_or_a_space_separated_string() {
    let jwks = KeySetServer::start("jwks.json").await;
    let server = server(&jwks, |config| config.jwt.roles_claim = "perms".into()).await;
    let call = |token: String| {
        let addr = server.addr.clone();
        async move {
            http::post_json(&addr, "/walker/admin_only", &json!({}), Some(&token))
                .await
                .expect("request")
                .status
        }
    };
    let mut as_array = claims("a");
    as_array["perms"] = json!(["viewer", "admin"]);
    assert_eq!(call(hs256(&as_array)).await, 200);
    let mut as_string = claims("b");
    as_string["perms"] = json!("viewer admin");
    assert_eq!(call(hs256(&as_string)).await, 200);
    let mut none = claims("c");
    none["roles"] = json!(["admin"]); // not the configured claim
    assert_eq!(call(hs256(&none)).await, 403);
}

#[tokio::test]
async fn forged_expired_and_misdirected_tokens_are_refused() {
    let jwks = KeySetServer::start("jwks.json").await;
    let server = server(&jwks, |config| {
        config.jwt.audience = "switchboard".into();
        config.jwt.issuer = "https://auth.example.com/".into();
        config.jwt.leeway_s = 5;
    })
    .await;
    let good = |sub: &str| {
        let mut c = claims(sub);
        c["aud"] = json!("switchboard");
        c["iss"] = json!("https://auth.example.com/");
        c
    };
    assert_accepted(&server, &hs256(&good("fine")), "fine").await;

    // Signed by a key that is not configured.
    assert_refused(
        &server,
        &rs256("rsa-other-private.pem", None, &good("x")),
        "token_invalid",
    )
    .await;
    // A known kid, the wrong key behind it.
    assert_refused(
        &server,
        &rs256("rsa-other-private.pem", Some("rsa-1"), &good("x")),
        "token_invalid",
    )
    .await;
    // Expired beyond the leeway; not yet valid.
    let mut expired = good("x");
    expired["exp"] = json!(now() - 60);
    assert_refused(&server, &hs256(&expired), "token_expired").await;
    let mut early = good("x");
    early["nbf"] = json!(now() + 600);
    assert_refused(&server, &hs256(&early), "token_invalid").await;
    // No exp at all.
    let mut forever = good("x");
    forever.as_object_mut().expect("object").remove("exp");
    assert_refused(&server, &hs256(&forever), "token_invalid").await;
    // Wrong or missing audience and issuer.
    let mut elsewhere = good("x");
    elsewhere["aud"] = json!("another-service");
    assert_refused(&server, &hs256(&elsewhere), "token_invalid").await;
    let mut no_aud = good("x");
    no_aud.as_object_mut().expect("object").remove("aud");
    assert_refused(&server, &hs256(&no_aud), "token_invalid").await;
    let mut other_issuer = good("x");
    other_issuer["iss"] = json!("https://evil.example.com/");
    assert_refused(&server, &hs256(&other_issuer), "token_invalid").await;
    // No user id claim.
    let mut anonymous = good("x");
    anonymous.as_object_mut().expect("object").remove("sub");
    assert_refused(&server, &hs256(&anonymous), "token_invalid").await;

    // `alg: none`, unsigned.
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&good("x"))
    );
    assert_refused(&server, &unsigned, "token_invalid").await;
    // The confusion attack: HS256 with the RSA public key (which is public) as the secret.
    let confused = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(&read("rsa-public.pem")),
        None,
        &good("x"),
    );
    assert_refused(&server, &confused, "token_invalid").await;
    // The same with the kid of the RSA key in the JWKS.
    let confused_kid = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(&read("rsa-public.pem")),
        Some("rsa-1"),
        &good("x"),
    );
    assert_refused(&server, &confused_kid, "token_invalid").await;

    // A refused token on the WebSocket: connected as the public user, told why.
    let mut client = server.connect_with(ConnectOptions::bearer(confused)).await;
    assert_eq!(client.info.root_id, "n::000000000000000000000001");
    let error = client.recv_json().await.expect("error frame");
    assert_error(&error, "token_invalid");
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_key_set_at_most_once_per_interval() {
    let jwks = KeySetServer::start("jwks.json").await;
    let server = server(&jwks, |config| config.jwt.jwks_min_refetch_s = 2).await;
    let rotated = rs256("rsa-other-private.pem", Some("rsa-2"), &claims("rotated"));

    // First use fetches; rsa-2 is not published yet.
    assert_refused(&server, &rotated, "token_invalid").await;
    assert_eq!(jwks.fetches(), 1);
    // A burst of unknown kids within the interval fetches nothing more.
    for _ in 0..5 {
        assert_refused(&server, &rotated, "token_invalid").await;
    }
    assert_refused(
        &server,
        &rs256("rsa-private.pem", Some("forged-kid"), &claims("x")),
        "token_invalid",
    )
    .await;
    assert_eq!(jwks.fetches(), 1);

    // The issuer rotates its keys; once the interval has passed, the unknown kid refetches.
    jwks.serve("jwks-rotated.json");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_accepted(&server, &rotated, "rotated").await;
    assert_eq!(jwks.fetches(), 2);
    // Known kids use the cached set.
    assert_accepted(&server, &es256(Some("ec-1"), &claims("ec")), "ec").await;
    assert_eq!(jwks.fetches(), 2);
}

#[tokio::test]
async fn a_bad_jwt_config_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = switchboard::Config {
        data_dir: dir.path().to_path_buf(),
        ..switchboard::Config::default()
    };
    config.jwt.jwks_url = Some("http://auth.example.com/jwks.json".into());
    let err = switchboard::Switchboard::builder(config.clone())
        .build()
        .await
        .expect_err("plain http to a remote host");
    assert!(err.to_string().contains("jwks_url"), "{err}");

    config.jwt.jwks_url = None;
    config.jwt.public_key_pem = Some(fixture("README.md"));
    let err = switchboard::Switchboard::builder(config)
        .build()
        .await
        .expect_err("not a key");
    assert!(err.to_string().contains("public_key_pem"), "{err}");
}
