//! Kafka failures, injected with librdkafka's mock cluster: a real broker
//! process cannot be stopped and resumed with its topics intact.

use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{unique_tenant, TestApp};

#[tokio::test]
async fn with_the_broker_down_produce_fails_fast_and_recovers_by_itself() {
    let mock = MockCluster::new(1).unwrap();
    let tenant = unique_tenant();
    let topic = format!("{tenant}.orders");
    mock.create_topic(&topic, 1, 1).unwrap();
    let servers = mock.bootstrap_servers();
    let app = TestApp::spawn_with(move |f| {
        f.merge(("kafka.bootstrap_servers", servers))
            .merge(("produce.timeout_ms", 3000))
            .merge(("kafka.request_timeout_ms", 1000))
    })
    .await;
    app.create_tenant(&tenant).await;
    let (user, password) = app.rw_user(&tenant).await;
    let one = r#"[{"Value":"x"}]"#;
    assert_eq!(
        app.produce(&user, &password, &topic, one).await.status(),
        StatusCode::OK
    );

    mock.broker_down(1).unwrap();
    let started = Instant::now();
    let response = app.produce(&user, &password, &topic, one).await;
    let elapsed = started.elapsed();
    let status = response.status();
    assert!(
        status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::GATEWAY_TIMEOUT,
        "got {status}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "took {elapsed:?} with a 3 s deadline"
    );
    let body: Value = response.json().await.unwrap();
    assert!(
        body["code"].is_string() && body["message"].is_string(),
        "{body}"
    );
    assert_eq!(body["results"].as_array().unwrap().len(), 1, "{body}");
    assert!(body["results"][0]["Error"].is_string(), "{body}");

    mock.broker_up(1).unwrap();
    let started = Instant::now();
    loop {
        let status = app.produce(&user, &password, &topic, one).await.status();
        if status == StatusCode::OK {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no recovery: still {status}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
