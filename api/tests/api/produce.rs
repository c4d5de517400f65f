use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::kafka::{java_partition, murmur2, read_back};
use crate::helpers::{assert_error, TestApp};

/// `curl -XPOST` against the data plane; returns (status, body).
async fn curl(app: &TestApp, user: &str, password: &str, path: &str, body: &str) -> (u16, String) {
    let url = format!("{}{path}", app.public_url);
    let credentials = format!("{user}:{password}");
    let out = app
        .curl(&[
            "-u",
            &credentials,
            "-XPOST",
            &url,
            "-d",
            body,
            "-w",
            "\n%{http_code}",
        ])
        .await;
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), body.to_owned())
}

#[tokio::test]
async fn the_two_ovh_produce_calls_work_with_curl_and_land_byte_for_byte() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;

    let (status, body) = curl(
        &app,
        &user,
        &password,
        &format!("/topic/{topic}"),
        r#"[{"Value": "first message"},{"Value":"second message"}]"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["offsets"].as_array().unwrap().len(), 2);

    let raw = r#"{"my": {"complex": ["json", "here"]}}"#;
    let (status, body) = curl(
        &app,
        &user,
        &password,
        &format!("/topic/{topic}?format=raw"),
        raw,
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let stored = read_back(&app.bootstrap, &topic, 1, 3);
    let values: Vec<&[u8]> = stored.iter().map(|s| s.value.as_deref().unwrap()).collect();
    assert_eq!(
        values,
        [&b"first message"[..], b"second message", raw.as_bytes()]
    );
    let offsets: Vec<i64> = answer["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["Offset"].as_i64().unwrap())
        .collect();
    assert_eq!(
        offsets,
        [stored[0].offset, stored[1].offset],
        "the answer names where Kafka stored them"
    );
}

#[tokio::test]
async fn keys_headers_partitions_timestamps_and_tombstones_land_exactly() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(3).await;
    let body = json!([
        { "Value": "a", "Key": "k1", "Partition": 2, "Timestamp": 1_700_000_000_123_i64, "Headers": { "trace": "t-1", "lang": "fr" } },
        { "Value": null, "Key": "gone", "Partition": 1 },
        { "Value": "b", "Partition": 0, "Headers": {} },
    ]);

    let response = app
        .produce(&user, &password, &topic, &body.to_string())
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    let partitions: Vec<i64> = answer["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["Partition"].as_i64().unwrap())
        .collect();
    assert_eq!(partitions, [2, 1, 0], "offsets come back in request order");
    let stored = read_back(&app.bootstrap, &topic, 3, 3);
    let by_partition = |p: i32| stored.iter().find(|s| s.partition == p).unwrap().clone();
    let first = by_partition(2);
    assert_eq!(first.value.as_deref(), Some(&b"a"[..]));
    assert_eq!(first.key.as_deref(), Some(&b"k1"[..]));
    assert_eq!(first.timestamp, Some(1_700_000_000_123));
    // sluice sends headers in request order (a unit test of the parser
    // proves it); tansu hands them back sorted by name, so compare as sets.
    let mut headers = first.headers.clone();
    headers.sort();
    assert_eq!(
        headers,
        vec![
            ("lang".to_owned(), b"fr".to_vec()),
            ("trace".to_owned(), b"t-1".to_vec())
        ]
    );
    let tombstone = by_partition(1);
    assert_eq!(tombstone.value, None);
    assert_eq!(tombstone.key.as_deref(), Some(&b"gone"[..]));
    assert_eq!(by_partition(0).value.as_deref(), Some(&b"b"[..]));
}

#[tokio::test]
async fn arbitrary_binary_bytes_round_trip_through_base64() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    let value: Vec<u8> = (0..=255u8).rev().collect();
    let key = vec![0u8, 0xff, 0xfe, 0x80];
    let header = vec![0xc3u8, 0x28];
    let body = json!([{ "Value": BASE64.encode(&value), "Key": BASE64.encode(&key), "Headers": { "bin": BASE64.encode(&header) } }]);

    let response = app
        .produce_with(
            &user,
            &password,
            &topic,
            "encoding=base64",
            body.to_string().into_bytes(),
        )
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    let stored = read_back(&app.bootstrap, &topic, 1, 1);
    assert_eq!(stored[0].value.as_deref(), Some(value.as_slice()));
    assert_eq!(stored[0].key.as_deref(), Some(key.as_slice()));
    assert_eq!(stored[0].headers, vec![("bin".to_owned(), header)]);
}

#[tokio::test]
async fn a_raw_body_with_a_key_is_stored_byte_for_byte() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    let body = vec![0u8, 159, 146, 150, b'{', 0xff];

    let response = app
        .produce_with(
            &user,
            &password,
            &topic,
            "format=raw&key=order-7",
            body.clone(),
        )
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    let stored = read_back(&app.bootstrap, &topic, 1, 1);
    assert_eq!(stored[0].value.as_deref(), Some(body.as_slice()));
    assert_eq!(stored[0].key.as_deref(), Some(&b"order-7"[..]));
}

#[test]
fn the_murmur2_oracle_matches_kafkas_own_test_vectors() {
    assert_eq!(murmur2(b"21"), -973_932_308);
    assert_eq!(murmur2(b"foobar"), -790_332_482);
    assert_eq!(murmur2(b"a-little-bit-long-string"), -985_981_536);
    assert_eq!(murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
    assert_eq!(
        murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
        -58_897_971
    );
    assert_eq!(murmur2(b"abc"), 479_470_107);
}

#[tokio::test]
async fn keys_land_on_the_partition_a_java_producer_would_pick() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(6).await;
    let keys: Vec<String> = (0..12).map(|i| format!("customer-{i}")).collect();
    let body: Vec<Value> = keys
        .iter()
        .map(|k| json!({ "Key": k, "Value": "v" }))
        .collect();

    let response = app
        .produce(&user, &password, &topic, &Value::from(body).to_string())
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    for (key, offset) in keys.iter().zip(answer["offsets"].as_array().unwrap()) {
        assert_eq!(
            offset["Partition"].as_i64().unwrap(),
            i64::from(java_partition(key.as_bytes(), 6)),
            "key {key}"
        );
    }
}

#[tokio::test]
async fn bad_input_gets_a_json_4xx_and_never_a_5xx() {
    let app = TestApp::spawn().await;
    let (tenant, topic, user, password) = app.tenant_with_topic(2).await;
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        ("", "{".into(), StatusCode::BAD_REQUEST, "malformed_json"),
        (
            "",
            r#"{"Value":"not an array"}"#.into(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        ("", "[]".into(), StatusCode::BAD_REQUEST, "empty_batch"),
        (
            "",
            r#"[{"Value": 42}]"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_message",
        ),
        (
            "",
            r#"[{"Value": ["x"]}]"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_message",
        ),
        (
            "",
            r#"[{"Key": "no value"}]"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_message",
        ),
        (
            "",
            r#"[{"Value": "x", "Partition": 2}]"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_partition",
        ),
        (
            "",
            r#"[{"Value": "x", "Partition": -1}]"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_message",
        ),
        (
            "",
            r#"[{"Value": "x", "Timestamp": "noon"}]"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_message",
        ),
        (
            "",
            r#"[{"Value": "x", "Headers": {"h": 1}}]"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_message",
        ),
        (
            "encoding=base64",
            r#"[{"Value": "%%%"}]"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_base64",
        ),
        (
            "format=xml",
            "[]".into(),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "key=k",
            r#"[{"Value":"x"}]"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "",
            "x".repeat(4 * 1024 * 1024 + 1),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "",
            format!(r#"[{{"Value":"{}"}}]"#, "x".repeat(1_000_001)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_large",
        ),
        (
            "",
            Value::from(vec![json!({"Value": "x"}); 1001]).to_string(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
        ),
    ];
    for (query, body, status, code) in cases {
        let response = app
            .produce_with(&user, &password, &topic, query, body.into_bytes())
            .await;
        assert_error(response, status, code).await;
    }

    let illegal = app
        .produce(
            &user,
            &password,
            &format!("{tenant}.bad..name"),
            r#"[{"Value":"x"}]"#,
        )
        .await;
    assert_error(illegal, StatusCode::BAD_REQUEST, "invalid_topic").await;

    // Nothing above reached Kafka.
    let detail: Value = app.get_topic(&tenant, &topic).await.json().await.unwrap();
    let high: i64 = detail["partitions_detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["high"].as_i64().unwrap())
        .sum();
    assert_eq!(high, 0);
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_refused_while_reading() {
    let app = TestApp::spawn_with(|f| f.merge(("produce.max_body_bytes", 1_000_000))).await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..20).map(|_| Ok(vec![b' '; 100_000])).collect();

    let response = app
        .data
        .post(format!("{}/topic/{topic}", app.public_url))
        .basic_auth(&user, Some(&password))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();

    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn an_unknown_topic_inside_the_grants_is_404() {
    let app = TestApp::spawn().await;
    let (tenant, _, user, password) = app.tenant_with_topic(1).await;

    let response = app
        .produce(
            &user,
            &password,
            &format!("{tenant}.never-created"),
            r#"[{"Value":"x"}]"#,
        )
        .await;

    assert_error(response, StatusCode::NOT_FOUND, "topic_not_found").await;
}
