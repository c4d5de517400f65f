use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, TestApp, ADMIN_TOKEN};

#[tokio::test]
async fn every_change_writes_an_audit_row_without_secrets() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    let first = app
        .create_user(
            "acme",
            "acme.app",
            json!([{ "prefix": "acme.", "read": true }]),
        )
        .await;
    let rotated: Value = app
        .post_password("acme", "acme.app")
        .await
        .json()
        .await
        .unwrap();
    let second = rotated["password"].as_str().unwrap().to_owned();
    app.post_grant(
        "acme",
        "acme.app",
        &json!({ "prefix": "acme.orders", "write": true }),
    )
    .await;
    app.delete_grant("acme", "acme.app", "acme.orders").await;
    app.patch_user("acme", "acme.app", &json!({ "disabled": true }))
        .await;
    app.patch_tenant("acme", &json!({ "quota": { "max_topics": 9 } }))
        .await;
    app.delete_user("acme", "acme.app").await;
    app.delete_tenant("acme", false).await;

    let entries: Vec<Value> = app.get_audit("").await.json().await.unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .rev()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "tenant.create",
            "user.create",
            "user.rotate_password",
            "grant.add",
            "grant.remove",
            "user.disable",
            "tenant.update",
            "user.delete",
            "tenant.delete",
        ]
    );
    for entry in &entries {
        assert_eq!(entry["tenant"], "acme");
        assert!(entry["at"].is_string());
        assert!(!entry["actor"].as_str().unwrap().is_empty());
    }

    let everything: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(a)::text FROM audit_log a")
            .fetch_all(&app.db)
            .await
            .unwrap();
    for row in everything {
        for secret in [first.as_str(), second.as_str(), ADMIN_TOKEN, "argon2"] {
            assert!(!row.contains(secret), "audit row holds a secret: {row}");
        }
    }
}

#[tokio::test]
async fn the_audit_log_filters_by_tenant_action_and_actor() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    app.create_tenant("globex").await;
    app.http
        .post(format!("{}/v1/tenants/acme/users", app.admin_url))
        .bearer_auth(ADMIN_TOKEN)
        .header("X-Sluice-Actor", "alice")
        .json(&json!({ "name": "acme.app" }))
        .send()
        .await
        .unwrap();

    let globex: Vec<Value> = app.get_audit("tenant=globex").await.json().await.unwrap();
    assert_eq!(globex.len(), 1);
    assert_eq!(globex[0]["target"], "globex");

    let creates: Vec<Value> = app
        .get_audit("action=tenant.create")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(creates.len(), 2);

    let alice: Vec<Value> = app.get_audit("actor=alice").await.json().await.unwrap();
    assert_eq!(alice.len(), 1);
    assert_eq!(alice[0]["action"], "user.create");
    assert_eq!(alice[0]["target"], "acme.app");

    let limited: Vec<Value> = app.get_audit("limit=1").await.json().await.unwrap();
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0]["action"], "user.create", "newest first");

    let future: Vec<Value> = app
        .get_audit("since=2999-01-01T00:00:00Z")
        .await
        .json()
        .await
        .unwrap();
    assert!(future.is_empty());
}

#[tokio::test]
async fn bad_audit_filters_get_400() {
    let app = TestApp::spawn().await;

    assert_error(
        app.get_audit("limit=0").await,
        StatusCode::BAD_REQUEST,
        "invalid_limit",
    )
    .await;
    assert_error(
        app.get_audit("limit=100000").await,
        StatusCode::BAD_REQUEST,
        "invalid_limit",
    )
    .await;
    assert_error(
        app.get_audit("since=yesterday").await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    assert_error(
        app.get_audit("colour=red").await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
}
