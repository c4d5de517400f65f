//! Produce errors sorted by cause: a message Kafka refuses for good is a
//! 4xx a client must not retry, a message that may be written is a 504,
//! and a message of the configured maximum size gets through. Size limits
//! run against the real broker; faults a real broker cannot be made to
//! answer (too large for a lower broker limit, an invalid timestamp, too
//! few replicas after append) come from librdkafka's mock cluster.

use std::time::Duration;

use figment::providers::Serialized;
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, unique_tenant, TestApp};

/// The JSON text of a message whose key, value and headers come to
/// exactly `size` bytes, `headers` of them one-byte header names with empty
/// values: librdkafka frames each header with 2 more bytes, which sluice's
/// size does not count. (Written by hand: the names repeat.)
fn framing_heavy_message(size: usize, headers: usize) -> String {
    let names = vec![r#""h":"""#; headers].join(",");
    format!(
        r#"{{"Value":"{}","Headers":{{{names}}}}}"#,
        "v".repeat(size - headers)
    )
}

/// A JSON array of raw JSON message texts.
fn batch(messages: &[&str]) -> String {
    format!("[{}]", messages.join(","))
}

#[tokio::test]
async fn a_raw_message_of_a_million_bytes_under_the_default_config_is_never_a_5xx() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;

    let response = app
        .produce_with(
            &user,
            &password,
            &topic,
            "format=raw",
            vec![b'x'; 1_000_000],
        )
        .await;

    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(
        status == StatusCode::OK || status == StatusCode::PAYLOAD_TOO_LARGE,
        "got {status}: {body}"
    );
    // The default limit is meant to fit a default broker: it is stored.
    assert_eq!(status, StatusCode::OK, "{body}");
    let read = app
        .consume_ok(&user, &password, &topic, "group=g&limit=1")
        .await;
    assert_eq!(
        read[0]["Value"].as_str().map(str::len),
        Some(1_000_000),
        "the stored message reads back whole"
    );
}

#[tokio::test]
async fn a_message_whose_framing_passes_the_producers_limit_is_a_413_alone_or_in_a_batch() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    // 1,000,000 bytes by sluice's count; with 30,000 headers' framing
    // librdkafka counts 1,060,036, over its message.max.bytes.
    let heavy = framing_heavy_message(1_000_000, 30_000);

    let alone = app
        .produce(&user, &password, &topic, &batch(&[&heavy]))
        .await;
    assert!(alone.headers().get("retry-after").is_none());
    let body = assert_error(alone, StatusCode::PAYLOAD_TOO_LARGE, "message_too_large").await;
    assert_eq!(body["results"][0]["Error"], "message_too_large", "{body}");

    let beside = app
        .produce(
            &user,
            &password,
            &topic,
            &batch(&[r#"{"Value":"small"}"#, &heavy]),
        )
        .await;
    let body = assert_error(beside, StatusCode::PAYLOAD_TOO_LARGE, "message_too_large").await;
    assert!(body["results"][0]["Offset"].is_i64(), "{body}");
    assert_eq!(body["results"][1]["Error"], "message_too_large", "{body}");
    let metrics = app.get_metrics().await;
    assert!(
        crate::helpers::sample(
            &metrics,
            "sluice_produce_rejected_total",
            &[("code", "message_too_large")]
        )
        .is_some_and(|n| n >= 2.0),
        "the refusals are counted apart from delivery errors"
    );
}

/// A node on a one-broker mock cluster with one topic; returns the app,
/// the cluster (keep it alive), the topic, user and password.
async fn on_a_mock_cluster(
    customize: impl FnOnce(figment::Figment) -> figment::Figment,
) -> (
    TestApp,
    MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    String,
    String,
    String,
) {
    let mock = MockCluster::new(1).unwrap();
    let tenant = unique_tenant();
    let topic = format!("{tenant}.orders");
    mock.create_topic(&topic, 1, 1).unwrap();
    let servers = mock.bootstrap_servers();
    let app =
        TestApp::spawn_with(move |f| customize(f.merge(("kafka.bootstrap_servers", servers))))
            .await;
    app.create_tenant(&tenant).await;
    let (user, password) = app.rw_user(&tenant).await;
    let first = app
        .produce(&user, &password, &topic, r#"[{"Value":"x"}]"#)
        .await;
    assert_eq!(first.status(), StatusCode::OK, "the mock cluster serves");
    (app, mock, topic, user, password)
}

#[tokio::test]
async fn a_message_over_the_brokers_limit_but_within_a_raised_sluice_limit_is_a_413() {
    let (app, mock, topic, user, password) = on_a_mock_cluster(|f| {
        f.merge(("produce.max_message_bytes", 2_000_000))
            .merge(Serialized::default(
                "kafka.properties",
                json!({ "message.max.bytes": "2000036" }),
            ))
    })
    .await;
    // The mock broker enforces no size: it answers the next produce as a
    // broker whose max.message.bytes is below this message would.
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE],
    );

    let response = app
        .produce_with(
            &user,
            &password,
            &topic,
            "format=raw",
            vec![b'x'; 1_500_000],
        )
        .await;

    assert!(response.headers().get("retry-after").is_none());
    let body = assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "message_too_large").await;
    assert_eq!(body["results"][0]["Error"], "message_too_large", "{body}");
}

#[tokio::test]
async fn a_record_or_timestamp_the_broker_refuses_for_good_is_a_400_and_a_corrupt_one_is_retried() {
    let (app, mock, topic, user, password) = on_a_mock_cluster(|f| f).await;
    let one = r#"[{"Value":"x","Timestamp":1}]"#;

    for (error, code) in [
        (
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP,
            "invalid_timestamp",
        ),
        (
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_RECORD,
            "invalid_message",
        ),
    ] {
        mock.request_errors(RDKafkaApiKey::Produce, &[error]);
        let response = app.produce(&user, &password, &topic, one).await;
        assert!(response.headers().get("retry-after").is_none());
        let body = assert_error(response, StatusCode::BAD_REQUEST, code).await;
        assert_eq!(body["results"][0]["Error"], code, "{body}");
    }

    // CORRUPT_MESSAGE is a transient error in Kafka (a record damaged in
    // transit): librdkafka sends it again, and the client sees a success.
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_MSG],
    );
    let retried = app.produce(&user, &password, &topic, one).await;
    assert_eq!(retried.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_message_appended_without_enough_replicas_is_a_504_delivery_unknown() {
    let (app, mock, topic, user, password) =
        on_a_mock_cluster(|f| f.merge(("produce.timeout_ms", 4000))).await;
    // Every attempt until the message times out: librdkafka retries this
    // error, and marks the message possibly persisted.
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND; 200],
    );

    let response = app
        .produce(&user, &password, &topic, r#"[{"Value":"x"}]"#)
        .await;

    assert!(response.headers().get("retry-after").is_none());
    let body = assert_error(response, StatusCode::GATEWAY_TIMEOUT, "delivery_unknown").await;
    assert_eq!(body["results"][0]["Error"], "unknown", "{body}");
    // Sorted from librdkafka's report, not by sluice's own deadline.
    assert!(
        body["results"][0]["Message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Kafka did not acknowledge")),
        "{body}"
    );

    mock.clear_request_errors(RDKafkaApiKey::Produce);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = app
        .produce(&user, &password, &topic, r#"[{"Value":"y"}]"#)
        .await;
    assert_eq!(after.status(), StatusCode::OK);
}

/// The broker fences the node's producer (tansu does when any tenant's
/// topic is deleted and created again): the batch it refused, of which
/// nothing was written, is sent again on a new producer, and the client
/// sees one success with the message stored once.
#[tokio::test]
async fn a_batch_refused_by_a_fenced_producer_is_sent_again_on_a_new_one() {
    let (app, mock, topic, user, password) = on_a_mock_cluster(|f| f).await;
    assert_eq!(
        app.produce(&user, &password, &topic, r#"[{"Value":"warm"}]"#)
            .await
            .status(),
        StatusCode::OK
    );
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED],
    );

    let response = app
        .produce(&user, &password, &topic, r#"[{"Value":"fenced"}]"#)
        .await;

    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let read = app
        .consume_ok(&user, &password, &topic, "group=g&limit=10")
        .await;
    let values: Vec<&str> = read.iter().map(|m| m["Value"].as_str().unwrap()).collect();
    assert!(values.ends_with(&["warm", "fenced"]), "{values:?}");
    assert_eq!(values.iter().filter(|v| **v == "fenced").count(), 1);
}
