use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::proxy::Proxy;
use crate::helpers::{assert_error, TestApp};

#[tokio::test]
async fn with_postgres_down_cached_users_keep_producing_and_the_rest_gets_503() {
    let direct = TestApp::spawn().await;
    // A node whose only way to Postgres is a proxy the test can cut.
    let (proxy, proxied) = Proxy::to_database(&direct.database_url).await;
    let app = TestApp::spawn_with(move |f| {
        f.merge(("database.url", proxied))
            .merge(("database.acquire_timeout_ms", 1000))
    })
    .await;
    let (tenant, topic, user, password) = direct.tenant_with_topic(1).await;
    let other = format!("{tenant}.other");
    let other_password = direct
        .create_user(
            &tenant,
            &other,
            json!([{ "prefix": format!("{tenant}."), "write": true }]),
        )
        .await;
    let one = r#"[{"Value":"x"}]"#;
    assert_eq!(
        app.produce(&user, &password, &topic, one).await.status(),
        StatusCode::OK
    );

    proxy.cut().await;

    assert_eq!(
        app.produce(&user, &password, &topic, one).await.status(),
        StatusCode::OK,
        "a cached user keeps producing"
    );
    let uncached = app.produce(&other, &other_password, &topic, one).await;
    assert_eq!(
        uncached
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("1"),
        "{:?}",
        uncached.status()
    );
    assert_error(
        uncached,
        StatusCode::SERVICE_UNAVAILABLE,
        "database_unavailable",
    )
    .await;
    assert_error(
        app.get_tenants().await,
        StatusCode::SERVICE_UNAVAILABLE,
        "database_unavailable",
    )
    .await;
    // Readiness answers from a state refreshed every 0.5 s.
    let started = Instant::now();
    let ready = loop {
        let ready = app
            .data
            .get(format!("{}/readyz", app.public_url))
            .send()
            .await
            .unwrap();
        if ready.status() != StatusCode::OK || started.elapsed() > Duration::from_secs(2) {
            break ready;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let checks: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(checks["checks"]["postgres"], "unavailable");

    proxy.restore();
    let started = Instant::now();
    while app.get_tenants().await.status() != StatusCode::OK {
        assert!(started.elapsed() < Duration::from_secs(15), "no recovery");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        app.produce(&other, &other_password, &topic, one)
            .await
            .status(),
        StatusCode::OK
    );
}
