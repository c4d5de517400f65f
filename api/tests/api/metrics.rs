use serde_json::json;

use crate::helpers::{sample, TestApp};

#[tokio::test]
async fn metrics_count_each_tenants_requests_messages_and_bytes() {
    // Lag is measured by the node's lag poller: a short interval lets the
    // gauge appear within the test.
    let app = TestApp::spawn_with(|f| f.merge(("consume.lag_interval_ms", 100))).await;
    let (tenant, topic, user, password) = app.tenant_with_topic(1).await;
    app.produce(
        &user,
        &password,
        &topic,
        &json!([{ "Value": "abc" }, { "Value": "de" }]).to_string(),
    )
    .await;
    app.produce(
        &user,
        &password,
        &topic,
        &json!([{ "Value": "f" }]).to_string(),
    )
    .await;
    assert_eq!(
        app.consume_ok(&user, &password, &topic, "limit=10")
            .await
            .len(),
        3
    );
    app.produce(&user, "wrong", &topic, "[]").await;

    let text = app.get_metrics().await;

    let t = tenant.as_str();
    assert_eq!(
        sample(&text, "sluice_messages_produced_total", &[("tenant", t)]),
        Some(3.0)
    );
    assert_eq!(
        sample(&text, "sluice_bytes_produced_total", &[("tenant", t)]),
        Some(6.0)
    );
    assert_eq!(
        sample(&text, "sluice_messages_consumed_total", &[("tenant", t)]),
        Some(3.0)
    );
    assert_eq!(
        sample(&text, "sluice_bytes_consumed_total", &[("tenant", t)]),
        Some(6.0)
    );
    let produces = [
        ("route", "/topic/{topic}"),
        ("method", "POST"),
        ("status", "200"),
        ("tenant", t),
    ];
    assert_eq!(
        sample(&text, "sluice_http_requests_total", &produces),
        Some(2.0)
    );
    let consumes = [
        ("route", "/topic/{topic}"),
        ("method", "GET"),
        ("status", "200"),
        ("tenant", t),
    ];
    assert_eq!(
        sample(&text, "sluice_http_requests_total", &consumes),
        Some(1.0)
    );
    assert!(sample(
        &text,
        "sluice_http_request_duration_seconds_count",
        &[("route", "/topic/{topic}")]
    )
    .is_some());
    assert!(text.contains("sluice_argon2_verifications_total"));
    assert!(sample(
        &text,
        "sluice_auth_failures_total",
        &[("reason", "rejected")]
    )
    .is_some_and(|n| n >= 1.0));
    // The poller measures every group with cursors, GET or no GET; it may
    // have measured the lag of 3 before the GET.
    let lag = [("tenant", t), ("group", "app"), ("topic", topic.as_str())];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut measured = sample(&text, "sluice_consumer_lag", &lag);
    while measured != Some(0.0) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        measured = sample(&app.get_metrics().await, "sluice_consumer_lag", &lag);
    }
    assert_eq!(measured, Some(0.0));
}
