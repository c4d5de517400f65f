//! Imported credentials, for tenants moving from another service with
//! their existing SASL passwords: `POST /v1/tenants/{t}/users` takes a
//! `password` (16 characters at least) or an argon2id `password_hash`,
//! never echoes either, never logs either, and the user produces with it
//! over the real TLS listener.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tenancy::Password;

use crate::helpers::process::BinaryNode;
use crate::helpers::{assert_error, broker, data_client, unique_tenant, TestApp, ADMIN_TOKEN};

/// A password as another service would have had it: long, with symbols.
const IMPORTED: &str = "ovh-Imported:pa$$word-0123";

/// A fresh tenant with one topic; returns (tenant, topic).
async fn tenant_with_topic(app: &TestApp) -> (String, String) {
    let tenant = unique_tenant();
    app.create_tenant(&tenant).await;
    let topic = format!("{tenant}.orders");
    app.create_topic(&tenant, &topic, 1).await;
    (tenant, topic)
}

fn rw(tenant: &str) -> Value {
    json!([{ "prefix": format!("{tenant}."), "read": true, "write": true }])
}

/// Asserts a 201 that names the user and carries no password, and that
/// `secret` appears nowhere in it.
async fn assert_created_without_echo(response: reqwest::Response, user: &str, secret: &str) {
    assert_eq!(response.status(), StatusCode::CREATED);
    let text = response.text().await.unwrap();
    assert!(
        !text.contains(secret),
        "the answer echoes the secret: {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["username"], user);
    assert!(body.get("password").is_none(), "{body}");
}

async fn produce_ok(app: &TestApp, user: &str, password: &str, topic: &str) {
    let response = app
        .produce(user, password, topic, r#"[{"Value":"moved from OVH"}]"#)
        .await;
    let status = response.status();
    assert_eq!(status, StatusCode::OK, "{}", response.text().await.unwrap());
}

#[tokio::test]
async fn a_user_created_with_an_imported_password_produces_with_it_and_the_answer_does_not_echo_it()
{
    let app = TestApp::spawn().await;
    let (tenant, topic) = tenant_with_topic(&app).await;
    let user = format!("{tenant}.app");

    let created = app
        .post_user(
            &tenant,
            &json!({ "name": user, "grants": rw(&tenant), "password": IMPORTED }),
        )
        .await;
    assert_created_without_echo(created, &user, IMPORTED).await;

    produce_ok(&app, &user, IMPORTED, &topic).await;
    let wrong = app
        .produce(
            &user,
            "ovh-Imported:pa$$word-9999",
            &topic,
            r#"[{"Value":"x"}]"#,
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    // Stored as an argon2id hash of it, like a generated one.
    let stored = app.stored_hash(&user).await;
    assert!(stored.starts_with("$argon2id$") && !stored.contains(IMPORTED));
    assert!(Password::new(IMPORTED).verify(&stored));

    let audit: Value = app
        .get_audit(&format!("tenant={tenant}&action=user.create"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit[0]["details"]["password"], "imported");
    assert!(!audit.to_string().contains(IMPORTED));
}

#[tokio::test]
async fn a_user_created_with_an_imported_argon2id_hash_produces_with_its_password() {
    let app = TestApp::spawn().await;
    let (tenant, topic) = tenant_with_topic(&app).await;
    let user = format!("{tenant}.app");
    // As another service would export it (tenancy's unit tests cover
    // hashes made with other argon2id parameters).
    let hash = Password::new(IMPORTED).hash().unwrap();

    let created = app
        .post_user(
            &tenant,
            &json!({ "name": user, "grants": rw(&tenant), "password_hash": hash }),
        )
        .await;
    assert_created_without_echo(created, &user, &hash).await;

    assert_eq!(app.stored_hash(&user).await, hash);
    produce_ok(&app, &user, IMPORTED, &topic).await;

    let audit: Value = app
        .get_audit(&format!("tenant={tenant}&action=user.create"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit[0]["details"]["password"], "imported_hash");
    assert!(!audit.to_string().contains(&hash));
}

#[tokio::test]
async fn a_weak_imported_password_is_refused_without_being_echoed_and_creates_no_user() {
    let app = TestApp::spawn().await;
    let (tenant, _) = tenant_with_topic(&app).await;
    let user = format!("{tenant}.app");
    let weak = "only-15-chars-x";

    let refused = app
        .post_user(&tenant, &json!({ "name": user, "password": weak }))
        .await;
    let body = assert_error(refused, StatusCode::BAD_REQUEST, "weak_password").await;
    assert!(!body.to_string().contains(weak), "{body}");
    assert!(body["message"].as_str().unwrap().contains("16"), "{body}");
    assert_error(
        app.get_user(&tenant, &user).await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    )
    .await;
}

#[tokio::test]
async fn a_malformed_or_foreign_password_hash_is_refused_without_being_echoed() {
    let app = TestApp::spawn().await;
    let (tenant, _) = tenant_with_topic(&app).await;
    let user = format!("{tenant}.app");
    let good = Password::new(IMPORTED).hash().unwrap();
    let (without_hash, _) = good.rsplit_once('$').unwrap();
    for bad in [
        "not-a-hash-at-all".to_owned(),
        without_hash.to_owned(),
        good.replace("$argon2id$", "$argon2i$"),
        // bcrypt, as some services store them
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW".to_owned(),
        // parameters no login should have to pay for
        good.replace("m=19456", "m=2097152"),
    ] {
        let refused = app
            .post_user(&tenant, &json!({ "name": user, "password_hash": bad }))
            .await;
        let body = assert_error(refused, StatusCode::BAD_REQUEST, "invalid_password_hash").await;
        assert!(!body.to_string().contains(&bad), "{body}");
    }
    assert_error(
        app.get_user(&tenant, &user).await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    )
    .await;
}

#[tokio::test]
async fn a_password_and_a_password_hash_together_are_refused() {
    let app = TestApp::spawn().await;
    let (tenant, _) = tenant_with_topic(&app).await;
    let hash = Password::new(IMPORTED).hash().unwrap();
    let refused = app
        .post_user(
            &tenant,
            &json!({ "name": format!("{tenant}.app"), "password": IMPORTED, "password_hash": hash }),
        )
        .await;
    let body = assert_error(refused, StatusCode::BAD_REQUEST, "invalid_password").await;
    assert!(!body.to_string().contains(IMPORTED) && !body.to_string().contains(&hash));
}

#[tokio::test]
async fn without_an_imported_password_the_server_still_generates_one_and_shows_it_once() {
    let app = TestApp::spawn().await;
    let (tenant, topic) = tenant_with_topic(&app).await;
    let user = format!("{tenant}.app");
    let password = app.create_user(&tenant, &user, rw(&tenant)).await;
    assert_eq!(password.len(), 32);
    produce_ok(&app, &user, &password, &topic).await;
}

#[tokio::test]
async fn imported_passwords_and_hashes_never_reach_the_logs() {
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
    let topic = format!("{tenant}.orders");
    admin_post(
        format!("/v1/tenants/{tenant}/topics"),
        json!({ "name": topic }),
    )
    .await
    .unwrap();
    let hashed = "ovh-Hashed-password-4567";
    let hash = Password::new(hashed).hash().unwrap();
    let weak = "weak-pw-1234";
    let grants = json!([{ "prefix": format!("{tenant}."), "write": true }]);
    let bodies = [
        json!({ "name": format!("{tenant}.plain"), "grants": grants, "password": IMPORTED }),
        json!({ "name": format!("{tenant}.hashed"), "grants": grants, "password_hash": hash }),
        json!({ "name": format!("{tenant}.weak"), "password": weak }),
        json!({ "name": format!("{tenant}.bad"), "password_hash": format!("{hash}!") }),
        json!({ "name": format!("{tenant}.both"), "password": IMPORTED, "password_hash": hash }),
    ];
    let mut statuses = Vec::new();
    for body in bodies {
        let response = admin_post(format!("/v1/tenants/{tenant}/users"), body)
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [201, 201, 400, 400, 400]);
    for (user, password) in [("plain", IMPORTED), ("hashed", hashed)] {
        let produced = data
            .post(format!("{public_url}/topic/{topic}"))
            .basic_auth(format!("{tenant}.{user}"), Some(password))
            .body(r#"[{"Value":"x"}]"#)
            .send()
            .await
            .unwrap();
        assert_eq!(produced.status(), reqwest::StatusCode::OK);
    }

    node.signal("TERM");
    let stopped = tokio::time::timeout(Duration::from_secs(20), node.child.wait()).await;
    assert!(stopped.is_ok(), "the server did not stop");
    let log = node.log.await.unwrap().join("\n");
    assert!(
        log.contains("/users"),
        "the log did not record the requests, so this test proves nothing"
    );
    let (_, hash_tail) = hash.rsplit_once('$').unwrap();
    for secret in [IMPORTED, hashed, weak, hash.as_str(), hash_tail] {
        assert!(!log.contains(secret), "a secret reached the log: {secret}");
    }
}
