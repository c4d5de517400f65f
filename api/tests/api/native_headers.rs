//! Messages written by native Kafka producers, with what sluice's own
//! produce never writes: header keys that are not UTF-8.
#![allow(unsafe_code)] // rust-rdkafka only writes header keys that are &str

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rdkafka::bindings as rd;
use rdkafka::message::{BorrowedHeaders, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;

/// Headers holding one header with raw bytes for its key and value.
fn raw_header(key: &[u8], value: &[u8]) -> OwnedHeaders {
    let headers = OwnedHeaders::new();
    let native = std::ptr::from_ref::<BorrowedHeaders>(headers.as_borrowed())
        .cast_mut()
        .cast::<rd::rd_kafka_headers_t>();
    // SAFETY: a `BorrowedHeaders` reference is librdkafka's headers pointer
    // itself (rust-rdkafka casts one into the other); `headers` owns it and
    // outlives the call, and librdkafka copies the key and the value.
    let err = unsafe {
        rd::rd_kafka_header_add(
            native,
            key.as_ptr().cast(),
            isize::try_from(key.len()).unwrap(),
            value.as_ptr().cast(),
            isize::try_from(value.len()).unwrap(),
        )
    };
    assert_eq!(err, rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR);
    headers
}

#[tokio::test]
async fn a_header_key_that_is_not_utf8_comes_back_base64_and_the_reader_keeps_serving_everyone() {
    // One reader for the whole node: every partition of every tenant goes
    // through the reader that reads the binary header.
    let app = TestApp::spawn_with(|f| f.merge(("consume.readers", 1))).await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    let (_, other_topic, other_user, other_password) = app.tenant_with_topic(1).await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &app.bootstrap)
        .create()
        .unwrap();
    let (key, value) = (b"k\xff\xfe", b"v\x00\xc3");
    producer
        .send(
            FutureRecord::to(&topic)
                .payload("native")
                .key("n")
                .headers(raw_header(key, value)),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    for i in 0..2 {
        let body = format!(r#"[{{"Value":"text{i}","Headers":{{"h":"x"}}}}]"#);
        let produced = app.produce(&user, &password, &topic, &body).await;
        assert_eq!(produced.status(), StatusCode::OK);
    }
    let produced = app
        .produce(
            &other_user,
            &other_password,
            &other_topic,
            r#"[{"Value":"other"}]"#,
        )
        .await;
    assert_eq!(produced.status(), StatusCode::OK);

    let first = app
        .consume_ok(&user, &password, &topic, "group=g&limit=1")
        .await;

    assert_eq!(first.len(), 1, "{first:?}");
    let message = &first[0];
    assert_eq!(message["Value"], "native");
    assert_eq!(message["HeadersEncoding"], "base64", "{message}");
    assert_eq!(message["HeaderKeysEncoding"], "base64", "{message}");
    let mut expected = serde_json::Map::new();
    expected.insert(BASE64.encode(key), Value::from(BASE64.encode(value)));
    assert_eq!(message["Headers"], Value::Object(expected));

    // The same reader, the same partition, then another tenant's.
    let next = app
        .consume_ok(&user, &password, &topic, "group=g&limit=1")
        .await;
    assert_eq!(next.len(), 1, "{next:?}");
    assert_eq!(next[0]["Value"], "text0");
    assert_eq!(next[0]["Headers"]["h"], "x");
    assert!(next[0].get("HeadersEncoding").is_none(), "{}", next[0]);
    let again = app
        .consume_ok(&user, &password, &topic, "group=g2&limit=3")
        .await;
    let values: Vec<&str> = again.iter().map(|m| m["Value"].as_str().unwrap()).collect();
    assert_eq!(values, ["native", "text0", "text1"]);
    let other = app
        .consume_ok(&other_user, &other_password, &other_topic, "group=g")
        .await;
    assert_eq!(other.len(), 1, "{other:?}");
    assert_eq!(other[0]["Value"], "other");
}
