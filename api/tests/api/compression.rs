//! HTTP compression both ways, and Kafka's own codecs, over TLS.

use std::time::{Duration, Instant};

use async_compression::tokio::bufread::{BrotliEncoder, GzipDecoder, GzipEncoder, ZstdEncoder};
use async_compression::Level;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use rdkafka::ClientConfig;
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, BufReader};

use crate::helpers::kafka::read_back;
use crate::helpers::{assert_error, TestApp};

#[tokio::test]
async fn messages_produced_with_each_codec_are_read_back_intact() {
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let app = TestApp::spawn_with(|f| {
            f.merge(figment::providers::Serialized::default(
                "kafka.properties",
                json!({ "compression.type": codec }),
            ))
        })
        .await;
        let (_, topic, user, password) = app.tenant_with_topic(1).await;
        let value = format!("{codec} ").repeat(2000);
        let body = json!([{ "Value": value, "Key": codec }]).to_string();

        let response = app.produce(&user, &password, &topic, &body).await;

        assert_eq!(response.status(), StatusCode::OK, "{codec}");
        let stored = read_back(&app.bootstrap, &topic, 1, 1);
        assert_eq!(
            stored[0].value.as_deref(),
            Some(value.as_bytes()),
            "{codec}"
        );
        assert_eq!(stored[0].key.as_deref(), Some(codec.as_bytes()), "{codec}");
    }
}

/// `data` encoded with `coding` as a client would send it.
async fn encode(coding: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "gzip" => GzipEncoder::new(data).read_to_end(&mut out).await,
        "zstd" => ZstdEncoder::new(data).read_to_end(&mut out).await,
        "br" => {
            BrotliEncoder::with_quality(data, Level::Fastest)
                .read_to_end(&mut out)
                .await
        }
        other => panic!("no encoder for {other}"),
    }
    .expect("encodes");
    out
}

/// `POST /topic/{topic}` with a body in `coding`.
async fn produce_encoded(
    app: &TestApp,
    user: &str,
    password: &str,
    topic: &str,
    coding: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    app.data
        .post(format!("{}/topic/{topic}", app.public_url))
        .basic_auth(user, Some(password))
        .header("content-type", "application/json")
        .header("content-encoding", coding)
        .body(body)
        .send()
        .await
        .expect("the data plane answers")
}

#[tokio::test]
async fn gzip_zstd_and_brotli_request_bodies_are_decompressed_before_they_are_produced() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    let codings = ["gzip", "zstd", "br"];
    for coding in codings {
        let body = json!([{ "Value": format!("{coding} body "), "Key": coding }]).to_string();
        let encoded = encode(coding, body.as_bytes()).await;

        let response = produce_encoded(&app, &user, &password, &topic, coding, encoded).await;

        let status = response.status();
        assert_eq!(
            status,
            StatusCode::OK,
            "{coding}: {:?}",
            response.text().await
        );
    }
    let stored = read_back(&app.bootstrap, &topic, 1, codings.len());
    for (stored, coding) in stored.iter().zip(codings) {
        assert_eq!(stored.key.as_deref(), Some(coding.as_bytes()));
        assert_eq!(
            stored.value.as_deref(),
            Some(format!("{coding} body ").as_bytes())
        );
    }
}

#[tokio::test]
async fn a_compression_bomb_is_refused_with_413_as_soon_as_it_inflates_past_the_limit() {
    let app = TestApp::spawn_with(|f| {
        f.merge(figment::providers::Serialized::default(
            "produce.max_body_bytes",
            1024 * 1024,
        ))
    })
    .await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    for (coding, inflated) in [("gzip", 64u64 << 20), ("zstd", 1u64 << 30)] {
        let zeros = BufReader::new(tokio::io::repeat(b'[').take(inflated));
        let mut bomb = Vec::new();
        match coding {
            "gzip" => GzipEncoder::new(zeros).read_to_end(&mut bomb).await,
            _ => ZstdEncoder::new(zeros).read_to_end(&mut bomb).await,
        }
        .expect("encodes");
        assert!(bomb.len() < 1024 * 1024, "{coding}: {} bytes", bomb.len());

        let started = Instant::now();
        let response = produce_encoded(&app, &user, &password, &topic, coding, bomb).await;

        assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{coding}: {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn an_unknown_content_encoding_is_refused_with_415() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;

    let response =
        produce_encoded(&app, &user, &password, &topic, "compress", b"[]".to_vec()).await;

    assert_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_content_encoding",
    )
    .await;
}

#[tokio::test]
async fn a_corrupt_compressed_body_is_refused_with_400() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;

    let response = produce_encoded(
        &app,
        &user,
        &password,
        &topic,
        "gzip",
        b"not gzip at all".to_vec(),
    )
    .await;

    assert_error(response, StatusCode::BAD_REQUEST, "unreadable_body").await;
}

#[tokio::test]
async fn large_responses_are_compressed_for_clients_that_accept_it_with_vary() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    app.produce_numbered(&user, &password, &topic, 200).await;

    let response = app
        .data
        .get(format!("{}/topic/{topic}?limit=200", app.public_url))
        .basic_auth(&user, Some(&password))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    assert!(response.headers().get_all("vary").iter().any(|v| v
        .to_str()
        .unwrap()
        .to_ascii_lowercase()
        .contains("accept-encoding")));
    let compressed = response.bytes().await.unwrap();
    let mut plain = Vec::new();
    GzipDecoder::new(&compressed[..])
        .read_to_end(&mut plain)
        .await
        .unwrap();
    let messages: Vec<serde_json::Value> = serde_json::from_slice(&plain).unwrap();
    assert_eq!(messages.len(), 200);
    assert!(compressed.len() < plain.len());
}

#[tokio::test]
async fn small_responses_and_clients_without_accept_encoding_get_plain_bodies() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    app.produce_numbered(&user, &password, &topic, 200).await;

    let small = app
        .data
        .get(format!("{}/topic/{topic}?limit=1", app.public_url))
        .basic_auth(&user, Some(&password))
        .header("accept-encoding", "gzip, br, zstd")
        .send()
        .await
        .unwrap();
    let unasked = app
        .data
        .get(format!("{}/topic/{topic}?limit=200", app.public_url))
        .basic_auth(&user, Some(&password))
        .send()
        .await
        .unwrap();

    for response in [small, unasked] {
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get("content-encoding").is_none());
        let messages: Vec<serde_json::Value> = response.json().await.unwrap();
        assert!(!messages.is_empty());
    }
}

#[tokio::test]
async fn server_sent_events_are_never_compressed_and_arrive_as_written() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    let mut response = app
        .data
        .get(format!("{}/topic/{topic}/stream?group=sse", app.public_url))
        .basic_auth(&user, Some(&password))
        .header("accept-encoding", "gzip, br, zstd")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("content-encoding").is_none());

    app.produce(&user, &password, &topic, r#"[{"Value":"first"}]"#)
        .await;

    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains("first") {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, response.chunk())
            .await
            .expect("the event arrives without waiting for more")
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn messages_a_native_client_wrote_with_each_codec_are_read_back_through_get() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    let codecs = ["gzip", "snappy", "lz4", "zstd"];
    for codec in codecs {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &app.bootstrap)
            .set("compression.codec", codec)
            .create()
            .unwrap();
        let value = format!("{codec} ").repeat(2000);
        producer
            .send(BaseRecord::to(&topic).key(codec).payload(&value))
            .map_err(|(e, _)| e)
            .unwrap();
        producer.flush(Duration::from_secs(10)).unwrap();
    }

    let messages = app.consume_ok(&user, &password, &topic, "limit=10").await;

    assert_eq!(messages.len(), codecs.len());
    for (message, codec) in messages.iter().zip(codecs) {
        assert_eq!(message["Key"], codec);
        assert_eq!(message["Value"], format!("{codec} ").repeat(2000));
    }
}

#[tokio::test]
async fn an_accept_encoding_refusing_every_coding_gets_a_json_406() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;

    let response = app
        .data
        .get(format!("{}/topic/{topic}?limit=1", app.public_url))
        .basic_auth(&user, Some(&password))
        .header("accept-encoding", "compress, identity;q=0")
        .send()
        .await
        .unwrap();

    assert_error(
        response,
        StatusCode::NOT_ACCEPTABLE,
        "not_acceptable_encoding",
    )
    .await;
}

#[tokio::test]
async fn a_large_error_answer_to_a_client_accepting_gzip_is_json_it_can_decode() {
    let app = TestApp::spawn().await;
    let (_, _, user, password) = app.tenant_with_topic(1).await;
    // serde names the unknown field in the error: an error body over 1 KiB.
    let field = "x".repeat(1500);
    let response = app
        .data
        .post(format!("{}/topics", app.public_url))
        .basic_auth(&user, Some(&password))
        .header("accept-encoding", "gzip")
        .header("content-type", "application/json")
        .body(format!(r#"{{"{field}":1}}"#))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let encoding = response
        .headers()
        .get("content-encoding")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.bytes().await.unwrap();
    let plain = match encoding.as_deref() {
        Some("gzip") => {
            let mut plain = Vec::new();
            GzipDecoder::new(&bytes[..])
                .read_to_end(&mut plain)
                .await
                .expect("a body marked gzip is gzip");
            plain
        }
        None => bytes.to_vec(),
        Some(other) => panic!("unexpected content-encoding {other}"),
    };
    let body: serde_json::Value = serde_json::from_slice(&plain).expect("a JSON error");
    assert_eq!(body["code"], "malformed_json");
    assert!(body["request_id"].is_string(), "{body}");
    assert!(plain.len() > 1024, "the error body is over the threshold");
}
