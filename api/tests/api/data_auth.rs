use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, unique_tenant, TestApp};

const ONE: &str = r#"[{"Value":"x"}]"#;

async fn assert_unauthorized(response: reqwest::Response) {
    assert_eq!(
        response.headers()["www-authenticate"],
        "Basic realm=\"sluice\""
    );
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn missing_unknown_wrong_and_disabled_credentials_all_get_the_same_401() {
    let app = TestApp::spawn().await;
    let (tenant, topic, user, password) = app.tenant_with_topic(1).await;
    let disabled = format!("{tenant}.off");
    let disabled_password = app
        .create_user(
            &tenant,
            &disabled,
            json!([{ "prefix": format!("{tenant}."), "write": true }]),
        )
        .await;
    app.patch_user(&tenant, &disabled, &json!({ "disabled": true }))
        .await;

    let no_credentials = app
        .data
        .post(format!("{}/topic/{topic}", app.public_url))
        .body(ONE)
        .send()
        .await
        .unwrap();
    assert_unauthorized(no_credentials).await;
    assert_unauthorized(app.produce(&user, "wrong-password", &topic, ONE).await).await;
    assert_unauthorized(
        app.produce(&format!("{tenant}.ghost"), &password, &topic, ONE)
            .await,
    )
    .await;
    assert_unauthorized(app.produce("nodots", &password, &topic, ONE).await).await;
    assert_unauthorized(
        app.produce(&disabled, &disabled_password, &topic, ONE)
            .await,
    )
    .await;

    assert_eq!(
        app.produce(&user, &password, &topic, ONE).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_user_of_one_tenant_cannot_write_another_tenants_topic() {
    let app = TestApp::spawn().await;
    let (_, _, user_a, password_a) = app.tenant_with_topic(1).await;
    let (_, topic_b, _, _) = app.tenant_with_topic(1).await;

    let response = app.produce(&user_a, &password_a, &topic_b, ONE).await;

    assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn a_read_only_grant_cannot_write() {
    let app = TestApp::spawn().await;
    let (tenant, topic, _, _) = app.tenant_with_topic(1).await;
    let reader = format!("{tenant}.reader");
    let password = app
        .create_user(
            &tenant,
            &reader,
            json!([{ "prefix": format!("{tenant}."), "read": true }]),
        )
        .await;

    let response = app.produce(&reader, &password, &topic, ONE).await;

    assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn a_prefix_matches_only_at_a_delimiter() {
    let app = TestApp::spawn().await;
    // Tenant `x` and tenant `x2`: the grant `x.` must never reach `x2.orders`.
    let short = unique_tenant();
    let long = format!("{short}2");
    app.create_tenant(&short).await;
    app.create_tenant(&long).await;
    let user = format!("{short}.app");
    let password = app
        .create_user(
            &short,
            &user,
            json!([{ "prefix": format!("{short}.orders"), "write": true }]),
        )
        .await;
    app.create_topic(&long, &format!("{long}.orders"), 1).await;
    app.create_topic(&short, &format!("{short}.orders2"), 1)
        .await;
    app.create_topic(&short, &format!("{short}.orders"), 1)
        .await;

    let other_tenant = app
        .produce(&user, &password, &format!("{long}.orders"), ONE)
        .await;
    assert_error(other_tenant, StatusCode::FORBIDDEN, "forbidden").await;
    let longer_name = app
        .produce(&user, &password, &format!("{short}.orders2"), ONE)
        .await;
    assert_error(longer_name, StatusCode::FORBIDDEN, "forbidden").await;
    let exact = app
        .produce(&user, &password, &format!("{short}.orders"), ONE)
        .await;
    assert_eq!(exact.status(), StatusCode::OK);
}

/// Polls until `produce` answers `expected`, for at most `limit`.
async fn eventually(
    app: &TestApp,
    user: &str,
    password: &str,
    topic: &str,
    expected: StatusCode,
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let status = app.produce(user, password, topic, ONE).await.status();
        if status == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "still {status} after {limit:?}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_rotated_password_stops_working_on_a_second_node_within_seconds() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_node(&first).await;
    let (tenant, topic, user, old) = first.tenant_with_topic(1).await;
    // The second node verifies and caches the old password.
    assert_eq!(
        second.produce(&user, &old, &topic, ONE).await.status(),
        StatusCode::OK
    );

    let rotated: serde_json::Value = first
        .post_password(&tenant, &user)
        .await
        .json()
        .await
        .unwrap();
    let new = rotated["password"].as_str().unwrap();

    eventually(
        &second,
        &user,
        &old,
        &topic,
        StatusCode::UNAUTHORIZED,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        second.produce(&user, new, &topic, ONE).await.status(),
        StatusCode::OK
    );
    // And the old one never comes back from a cache.
    for _ in 0..3 {
        assert_eq!(
            second.produce(&user, &old, &topic, ONE).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn disabling_deleting_and_revoking_take_effect_on_another_node() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_node(&first).await;
    let (tenant, topic, user, password) = first.tenant_with_topic(1).await;
    let limit = Duration::from_secs(5);

    assert_eq!(
        second.produce(&user, &password, &topic, ONE).await.status(),
        StatusCode::OK
    );
    first
        .patch_user(&tenant, &user, &json!({ "disabled": true }))
        .await;
    eventually(
        &second,
        &user,
        &password,
        &topic,
        StatusCode::UNAUTHORIZED,
        limit,
    )
    .await;
    first
        .patch_user(&tenant, &user, &json!({ "disabled": false }))
        .await;
    eventually(&second, &user, &password, &topic, StatusCode::OK, limit).await;

    first
        .delete_grant(&tenant, &user, &format!("{tenant}."))
        .await;
    eventually(
        &second,
        &user,
        &password,
        &topic,
        StatusCode::FORBIDDEN,
        limit,
    )
    .await;
    first
        .post_grant(
            &tenant,
            &user,
            &json!({ "prefix": format!("{tenant}."), "write": true }),
        )
        .await;
    eventually(&second, &user, &password, &topic, StatusCode::OK, limit).await;

    first
        .patch_tenant(&tenant, &json!({ "disabled": true }))
        .await;
    eventually(
        &second,
        &user,
        &password,
        &topic,
        StatusCode::UNAUTHORIZED,
        limit,
    )
    .await;
    first
        .patch_tenant(&tenant, &json!({ "disabled": false }))
        .await;
    eventually(&second, &user, &password, &topic, StatusCode::OK, limit).await;

    first.delete_user(&tenant, &user).await;
    eventually(
        &second,
        &user,
        &password,
        &topic,
        StatusCode::UNAUTHORIZED,
        limit,
    )
    .await;
}

#[tokio::test]
async fn the_public_listener_never_serves_the_admin_api() {
    let app = TestApp::spawn().await;

    let response = app
        .data
        .get(format!("{}/v1/tenants", app.public_url))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();

    assert_error(response, StatusCode::NOT_FOUND, "route_not_found").await;
}

#[tokio::test]
async fn readiness_reports_postgres_and_kafka_on_both_listeners() {
    let app = TestApp::spawn().await;

    for url in [
        format!("{}/readyz", app.public_url),
        format!("{}/readyz", app.admin_url),
    ] {
        let response = app.data.get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["checks"], json!({ "postgres": "ok", "kafka": "ok" }));
    }
}

#[tokio::test]
async fn the_benchmark_noop_routes_exist_only_when_switched_on() {
    let off = TestApp::spawn().await;
    let response = off
        .data
        .get(format!("{}/_noop", off.public_url))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "route_not_found").await;

    let on = TestApp::spawn_with(|f| f.merge(("http.noop_routes", true))).await;
    let (_, _, user, password) = on.tenant_with_topic(1).await;
    let plain = on
        .data
        .get(format!("{}/_noop", on.public_url))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::NO_CONTENT);
    let anonymous = on
        .data
        .get(format!("{}/_noop/authenticated", on.public_url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let authenticated = on
        .data
        .get(format!("{}/_noop/authenticated", on.public_url))
        .basic_auth(&user, Some(&password))
        .send()
        .await
        .unwrap();
    assert_eq!(authenticated.status(), StatusCode::NO_CONTENT);
}
