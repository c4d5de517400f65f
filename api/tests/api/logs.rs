//! Runs the real binary with every log level on and proves that no
//! password, credential header or admin token reaches its logs.

use std::time::Duration;

use crate::helpers::process::BinaryNode;
use crate::helpers::{broker, data_client, unique_tenant, TestApp, ADMIN_TOKEN};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};

#[tokio::test]
async fn no_password_or_token_ever_reaches_the_logs() {
    let database_url = TestApp::fresh_database().await;
    let mut node = BinaryNode::start(&database_url, &broker::bootstrap(), "trace").await;
    let admin_url = node.admin_url.clone();
    let public_url = node.public_url.clone();
    let http = reqwest::Client::new();
    let data = data_client();
    let tenant = unique_tenant();
    let admin_post = |path: String, body: Value| {
        http.post(format!("{admin_url}{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    admin_post("/v1/tenants".into(), json!({ "name": tenant }))
        .await
        .unwrap();
    let user = format!("{tenant}.app");
    let created: Value = admin_post(
        format!("/v1/tenants/{tenant}/users"),
        json!({ "name": user, "grants": [{ "prefix": format!("{tenant}."), "write": true }] }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let first = created["password"].as_str().unwrap().to_owned();
    let topic = format!("{tenant}.orders");
    admin_post(
        format!("/v1/tenants/{tenant}/topics"),
        json!({ "name": topic }),
    )
    .await
    .unwrap();
    let rotated: Value = admin_post(
        format!("/v1/tenants/{tenant}/users/{user}/password"),
        json!({}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let second = rotated["password"].as_str().unwrap().to_owned();
    let guessed = "hunter2-guessed-password";
    for password in [first.as_str(), second.as_str(), guessed] {
        data.post(format!("{public_url}/topic/{topic}"))
            .basic_auth(&user, Some(password))
            .body(r#"[{"Value":"x"}]"#)
            .send()
            .await
            .unwrap();
    }
    let bad_admin = http
        .get(format!("{admin_url}/v1/tenants"))
        .bearer_auth("a-wrong-admin-token-xyz")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_admin.status(), reqwest::StatusCode::UNAUTHORIZED);

    node.signal("TERM");
    let stopped = tokio::time::timeout(Duration::from_secs(20), node.child.wait()).await;
    assert!(stopped.is_ok(), "the server did not stop");
    let log = node.log.await.unwrap().join("\n");

    assert!(
        log.contains("/topic/"),
        "the log did not record the requests, so this test proves nothing"
    );
    let secrets = [
        first.clone(),
        second.clone(),
        guessed.to_owned(),
        ADMIN_TOKEN.to_owned(),
        "a-wrong-admin-token-xyz".to_owned(),
        BASE64.encode(format!("{user}:{first}")),
        BASE64.encode(format!("{user}:{second}")),
        BASE64.encode(format!("{user}:{guessed}")),
        "$argon2id$".to_owned(),
    ];
    for secret in secrets {
        assert!(!log.contains(&secret), "a secret reached the log: {secret}");
    }
}
