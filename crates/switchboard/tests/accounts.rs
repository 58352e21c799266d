//! Registration, login, revocation.

mod common;

use common::{JSON, TestServer, assert_error};
use serde_json::json;
use switchboard_client::{ConnectOptions, http};

#[tokio::test]
async fn register_and_login_have_the_reference_shapes() {
    let server = TestServer::start().await;
    let creds = json!({"email": "Grace@Example.com", "password": "correct horse"});
    let registered = http::post_json(&server.addr, "/user/register", &creds, None)
        .await
        .unwrap();
    assert_eq!(registered.status, 201);
    assert!(registered.json()["message"].is_string());

    let login = http::post_json(&server.addr, "/user/login", &creds, None)
        .await
        .unwrap();
    assert_eq!(login.status, 200);
    let body = login.json();
    assert!(
        body["token"].as_str().unwrap().split('.').count() == 3,
        "a JWT"
    );
    let user = &body["user"];
    assert_eq!(user["email"], "grace@example.com");
    assert_eq!(user["id"].as_str().unwrap().len(), 24);
    assert_eq!(user["root_id"].as_str().unwrap().len(), 24);
}

#[tokio::test]
async fn duplicate_email_is_a_conflict_whatever_its_case() {
    let server = TestServer::start().await;
    server.user("dup@example.com").await;
    let again = http::post_json(
        &server.addr,
        "/user/register",
        &json!({"email": "DUP@example.com", "password": "another one"}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(again.status, 409);
    assert_eq!(again.json()["code"], "email_taken");
}

#[tokio::test]
async fn bad_registrations_are_400_with_codes() {
    let server = TestServer::start().await;
    let cases = [
        (
            json!({"email": "not-an-email", "password": "long enough"}),
            "invalid_email",
        ),
        (
            json!({"email": "a@b", "password": "long enough"}),
            "invalid_email",
        ),
        (
            json!({"email": "ok@example.com", "password": "short"}),
            "weak_password",
        ),
        (json!({"email": "ok@example.com"}), "invalid_field"),
        (
            json!({"email": 5, "password": "long enough"}),
            "invalid_field",
        ),
        (json!(["x"]), "not_an_object"),
    ];
    for (body, code) in cases {
        let response = http::post_json(&server.addr, "/user/register", &body, None)
            .await
            .unwrap();
        assert_eq!(response.status, 400, "{body}");
        assert_eq!(response.json()["code"], code, "{body}");
    }
    let garbage = http::request(&server.addr, "POST", "/user/register", JSON, b"nope")
        .await
        .unwrap();
    assert_eq!(garbage.status, 400);
    assert_eq!(garbage.json()["code"], "invalid_json");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_401() {
    let server = TestServer::start().await;
    server.user("login@example.com").await;
    let wrong = http::post_json(
        &server.addr,
        "/user/login",
        &json!({"email": "login@example.com", "password": "wrong password"}),
        None,
    )
    .await
    .unwrap();
    let unknown = http::post_json(
        &server.addr,
        "/user/login",
        &json!({"email": "nobody@example.com", "password": "wrong password"}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    assert_eq!(wrong.json(), unknown.json());
    assert_eq!(wrong.json()["code"], "invalid_credentials");
}

#[tokio::test]
async fn revoked_tokens_are_refused_everywhere() {
    let server = TestServer::start().await;
    let (token, _) = server.user("revoke@example.com").await;
    let revoked = http::post_json(&server.addr, "/user/revoke", &json!({}), Some(&token))
        .await
        .unwrap();
    assert_eq!(revoked.status, 200, "{}", revoked.text());

    // On connect.
    let mut client = server.connect_with(ConnectOptions::bearer(&token)).await;
    assert_eq!(client.info.root_id, "n::000000000000000000000001");
    assert_error(&client.recv_json().await.unwrap(), "token_revoked");
    // On change_user.
    client
        .send_json(&json!({"type": "change_user", "token": token}))
        .await
        .unwrap();
    assert_error(&client.recv_json().await.unwrap(), "token_revoked");
    assert_eq!(
        client.recv_json().await.unwrap()["data"]["root_id"],
        "n::000000000000000000000001"
    );
    // Over REST.
    let rest = http::post_json(&server.addr, "/walker/whoami", &json!({}), Some(&token))
        .await
        .unwrap();
    assert_eq!(rest.status, 401);
    assert_eq!(rest.json()["code"], "token_revoked");
    // A new login works again.
    let login = http::post_json(
        &server.addr,
        "/user/login",
        &json!({"email": "revoke@example.com", "password": "correct horse"}),
        None,
    )
    .await
    .unwrap();
    let fresh = login.json()["token"].as_str().unwrap().to_string();
    let ok = http::post_json(&server.addr, "/walker/whoami", &json!({}), Some(&fresh))
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn only_admins_revoke_other_accounts() {
    let server = TestServer::start().await;
    let (victim_token, _) = server.user("victim@example.com").await;
    let (mallory, _) = server.user("mallory@example.com").await;
    let refused = http::post_json(
        &server.addr,
        "/user/revoke",
        &json!({"email": "victim@example.com"}),
        Some(&mallory),
    )
    .await
    .unwrap();
    assert_eq!(refused.status, 403);
    let (admin, _) = server.user("root@example.com").await;
    server
        .app
        .accounts()
        .grant_role("root@example.com", "admin")
        .await
        .unwrap();
    let done = http::post_json(
        &server.addr,
        "/user/revoke",
        &json!({"email": "victim@example.com"}),
        Some(&admin),
    )
    .await
    .unwrap();
    assert_eq!(done.status, 200);
    let rest = http::post_json(
        &server.addr,
        "/walker/whoami",
        &json!({}),
        Some(&victim_token),
    )
    .await
    .unwrap();
    assert_eq!(rest.json()["code"], "token_revoked");
    let anonymous = http::post_json(&server.addr, "/user/revoke", &json!({}), None)
        .await
        .unwrap();
    assert_eq!(anonymous.status, 401);
}

#[tokio::test]
async fn a_non_admin_naming_an_unknown_account_gets_403_not_404() {
    let server = TestServer::start().await;
    let (mallory, _) = server.user("mallory@example.com").await;
    for email in ["nobody@example.com", "not an email"] {
        let refused = http::post_json(
            &server.addr,
            "/user/revoke",
            &json!({"email": email}),
            Some(&mallory),
        )
        .await
        .unwrap();
        assert_eq!(refused.status, 403, "{email}: {}", refused.text());
        assert_eq!(refused.json()["code"], "forbidden");
    }
    // Naming oneself is not an admin action; the caller's token still works until then.
    let own = http::post_json(
        &server.addr,
        "/user/revoke",
        &json!({"email": "Mallory@Example.com"}),
        Some(&mallory),
    )
    .await
    .unwrap();
    assert_eq!(own.status, 200, "{}", own.text());
    let rest = http::post_json(&server.addr, "/walker/whoami", &json!({}), Some(&mallory))
        .await
        .unwrap();
    assert_eq!(rest.json()["code"], "token_revoked");
}

/// Each pair is a stored address and a look-alike that must not become a second account.
#[tokio::test]
async fn look_alike_emails_cannot_be_registered() {
    let server = TestServer::start().await;
    server.user("eve@example.com").await;
    let register = |email: &'static str| {
        let addr = server.addr.clone();
        async move {
            http::post_json(
                &addr,
                "/user/register",
                &json!({"email": email, "password": "another one"}),
                None,
            )
            .await
            .unwrap()
        }
    };
    // Full-width letters fold (NFKC) onto the existing account.
    let full_width = register("\u{FF45}ve@example.com").await;
    assert_eq!(full_width.status, 409, "{}", full_width.text());
    assert_eq!(full_width.json()["code"], "email_taken");
    // Invisible and direction-changing characters are refused outright.
    for email in [
        "e\u{200B}ve@example.com",
        "eve\u{200D}@example.com",
        "\u{FEFF}eve@example.com",
        "eve@exa\u{2060}mple.com",
        "\u{202E}eve@example.com",
        "eve\u{2066}@example.com",
        "eve\u{200F}@example.com",
        "eve\u{061C}@example.com",
        "eve\u{0000}@example.com",
        "e\u{00AD}ve@example.com",
    ] {
        let refused = register(email).await;
        assert_eq!(refused.status, 400, "{email:?}: {}", refused.text());
        assert_eq!(refused.json()["code"], "invalid_email", "{email:?}");
    }
    // The server is healthy and the original account unchanged.
    let login = http::post_json(
        &server.addr,
        "/user/login",
        &json!({"email": "eve@example.com", "password": "correct horse"}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(login.status, 200, "{}", login.text());
}

#[tokio::test]
async fn login_accepts_the_unnormalised_spelling() {
    let server = TestServer::start().await;
    server.user("ada@example.com").await;
    let login = http::post_json(
        &server.addr,
        "/user/login",
        &json!({"email": " \u{FF21}DA\u{FF20}Example.COM ", "password": "correct horse"}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(login.status, 200, "{}", login.text());
    assert_eq!(login.json()["user"]["email"], "ada@example.com");
}

async fn login_as(server: &TestServer, email: &str, password: &str) -> http::Response {
    http::post_json(
        &server.addr,
        "/user/login",
        &json!({"email": email, "password": password}),
        None,
    )
    .await
    .unwrap()
}

fn assert_throttled(response: &http::Response) {
    assert_eq!(response.status, 429, "{}", response.text());
    assert_eq!(response.json()["code"], "too_many_attempts");
    let retry_after: u64 = response
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
}

#[tokio::test]
async fn failed_logins_for_one_email_are_throttled_even_with_the_right_password() {
    let server = TestServer::start_with(|c| c.accounts.failed_logins_per_email_per_min = 3).await;
    server.user("target@example.com").await;
    for _ in 0..3 {
        let wrong = login_as(&server, "target@example.com", "wrong password").await;
        assert_eq!(wrong.status, 401);
    }
    assert_throttled(&login_as(&server, "target@example.com", "wrong password").await);
    // Guessing stops for this email, whatever the spelling and even with the right password.
    assert_throttled(&login_as(&server, "TARGET@example.com", "correct horse").await);
    // Unknown emails are throttled the same way, so the throttle reveals no account.
    for _ in 0..3 {
        assert_eq!(
            login_as(&server, "ghost@example.com", "wrong").await.status,
            401
        );
    }
    assert_throttled(&login_as(&server, "ghost@example.com", "wrong").await);
    // Other accounts are unaffected; successful logins do not use up the budget.
    server.user("bystander@example.com").await;
    for _ in 0..5 {
        let ok = login_as(&server, "bystander@example.com", "correct horse").await;
        assert_eq!(ok.status, 200, "{}", ok.text());
    }
    assert_eq!(server.metric(|m| m.account_attempts_throttled.get()), 3);
}

#[tokio::test]
async fn registrations_from_one_address_are_throttled() {
    let server = TestServer::start_with(|c| c.accounts.registrations_per_address_per_min = 2).await;
    for n in 0..2 {
        let creds = json!({"email": format!("r{n}@example.com"), "password": "long enough"});
        let ok = http::post_json(&server.addr, "/user/register", &creds, None)
            .await
            .unwrap();
        assert_eq!(ok.status, 201, "{}", ok.text());
    }
    let creds = json!({"email": "r2@example.com", "password": "long enough"});
    let refused = http::post_json(&server.addr, "/user/register", &creds, None)
        .await
        .unwrap();
    assert_throttled(&refused);
    // Nothing was created.
    assert!(
        server
            .app
            .accounts()
            .user_by_email("r2@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn logins_from_one_address_are_throttled_across_emails() {
    let server = TestServer::start_with(|c| c.accounts.logins_per_address_per_min = 3).await;
    for n in 0..3 {
        let response = login_as(&server, &format!("x{n}@example.com"), "whatever").await;
        assert_eq!(response.status, 401);
    }
    assert_throttled(&login_as(&server, "x3@example.com", "whatever").await);
}
