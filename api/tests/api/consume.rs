use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, sample, TestApp};

async fn curl_get(app: &TestApp, user: &str, password: &str, path: &str) -> Value {
    let url = format!("{}{path}", app.public_url);
    let credentials = format!("{user}:{password}");
    let out = app
        .curl(&["--fail-with-body", "-u", &credentials, &url])
        .await;
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn curl_post(app: &TestApp, user: &str, password: &str, path: &str, body: &str) {
    let url = format!("{}{path}", app.public_url);
    let credentials = format!("{user}:{password}");
    app.curl(&[
        "--fail-with-body",
        "-u",
        &credentials,
        "-XPOST",
        "-d",
        body,
        &url,
    ])
    .await;
}

fn values(messages: &Value) -> Vec<String> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Value"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_whole_ovh_round_trip_works_with_curl() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    let raw = r#"{"my": {"complex": ["json", "here"]}}"#;
    curl_post(
        &app,
        &user,
        &password,
        &format!("/topic/{topic}"),
        r#"[{"Value":"first message"},{"Value":"second message"}]"#,
    )
    .await;
    curl_post(
        &app,
        &user,
        &password,
        &format!("/topic/{topic}?format=raw"),
        raw,
    )
    .await;

    let first = curl_get(&app, &user, &password, &format!("/topic/{topic}?limit=2")).await;
    assert_eq!(values(&first), ["first message", "second message"]);
    let second = curl_get(&app, &user, &password, &format!("/topic/{topic}?limit=2")).await;
    assert_eq!(values(&second), [raw]);
    let third = curl_get(&app, &user, &password, &format!("/topic/{topic}?limit=2")).await;
    assert_eq!(third, json!([]));
}

#[tokio::test]
async fn each_message_carries_its_metadata_and_no_store() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    app.produce(
        &user,
        &password,
        &topic,
        r#"[{"Value":"v","Key":"k","Headers":{"h":"1"},"Timestamp":1700000000000}]"#,
    )
    .await;

    let response = app.consume(&user, &password, &topic, "").await;

    assert_eq!(response.headers()["cache-control"], "no-store");
    let messages: Vec<Value> = response.json().await.unwrap();
    assert_eq!(
        messages,
        vec![
            json!({ "Topic": topic, "Partition": 0, "Offset": 0, "Timestamp": 1_700_000_000_000_i64,
                     "Key": "k", "Value": "v", "Headers": { "h": "1" } })
        ]
    );
}

#[tokio::test]
async fn binary_values_come_back_losslessly_as_marked_base64() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    let bytes = vec![0u8, 0xff, 0xfe, b'a'];
    app.produce_with(&user, &password, &topic, "format=raw", bytes.clone())
        .await;
    app.produce(
        &user,
        &password,
        &topic,
        r#"[{"Value":"plain text","Key":"k"}]"#,
    )
    .await;

    let messages = app.consume_ok(&user, &password, &topic, "limit=2").await;

    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    assert_eq!(messages[0]["ValueEncoding"], "base64");
    assert_eq!(
        engine
            .decode(messages[0]["Value"].as_str().unwrap())
            .unwrap(),
        bytes
    );
    assert_eq!(messages[1]["Value"], "plain text");
    assert!(messages[1].get("ValueEncoding").is_none());

    app.produce(&user, &password, &topic, r#"[{"Value":"text"}]"#)
        .await;
    let encoded = app
        .consume_ok(&user, &password, &topic, "encoding=base64")
        .await;
    assert_eq!(encoded[0]["Value"], engine.encode("text"));
}

#[tokio::test]
async fn one_client_never_gets_an_empty_answer_while_any_partition_has_messages() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(6).await;
    let body: Vec<Value> = (0..24)
        .map(|i| json!({ "Value": i.to_string(), "Partition": i % 6 }))
        .collect();
    app.produce(&user, &password, &topic, &Value::from(body).to_string())
        .await;

    let mut seen = HashSet::new();
    for _ in 0..24 {
        let messages = app.consume_ok(&user, &password, &topic, "limit=1").await;
        assert_eq!(messages.len(), 1, "an empty answer while messages remain");
        assert!(seen.insert(messages[0]["Value"].as_str().unwrap().to_owned()));
    }
    assert!(app
        .consume_ok(&user, &password, &topic, "limit=1")
        .await
        .is_empty());
}

#[tokio::test]
async fn two_groups_on_one_topic_each_receive_every_message_once() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(3).await;
    app.produce_numbered(&user, &password, &topic, 300).await;

    for group in ["billing", "audit"] {
        let mut seen = HashSet::new();
        loop {
            let messages = app
                .consume_ok(
                    &user,
                    &password,
                    &topic,
                    &format!("group={group}&limit=100"),
                )
                .await;
            if messages.is_empty() {
                break;
            }
            for m in messages {
                assert!(
                    seen.insert(m["Value"].as_str().unwrap().to_owned()),
                    "duplicate in {group}"
                );
            }
        }
        assert_eq!(seen.len(), 300, "group {group}");
    }
}

#[tokio::test]
async fn groups_taking_turns_on_one_partition_each_read_on_from_their_own_cursor() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    // Enough that the reader has fetched well ahead of the first group's
    // cursor when the second group asks for the start of the partition.
    app.produce_numbered(&user, &password, &topic, 3000).await;

    let mut next = [0usize; 2];
    for turn in 0..40 {
        let (group, limit) = if turn % 2 == 0 { (0, 1) } else { (1, 100) };
        let messages = app
            .consume_ok(
                &user,
                &password,
                &topic,
                &format!("group=g{group}&limit={limit}"),
            )
            .await;
        let values: Vec<usize> = messages
            .iter()
            .map(|m| m["Value"].as_str().unwrap().parse().unwrap())
            .collect();
        let expected: Vec<usize> = (next[group]..next[group] + limit).collect();
        assert_eq!(values, expected, "turn {turn}, group g{group}");
        next[group] += limit;
    }
}

#[tokio::test]
async fn groups_reading_the_same_stretch_share_one_fetch_and_each_get_every_message() {
    let app = TestApp::spawn().await;
    let (tenant, topic, user, password) = app.tenant_with_topic(1).await;
    app.produce_numbered(&user, &password, &topic, 50).await;
    let expected: Vec<String> = (0..50).map(|i| i.to_string()).collect();

    for group in 0..6 {
        let mut read = Vec::new();
        for _ in 0..5 {
            let query = format!("group=g{group}&limit=10");
            let messages = app.consume_ok(&user, &password, &topic, &query).await;
            read.extend(values(&Value::from(messages)));
        }
        assert_eq!(read, expected, "group g{group}");
    }

    // The first group read from Kafka; the five after it from the cache.
    let metrics = app.get_metrics().await;
    assert_eq!(
        sample(
            &metrics,
            "sluice_consume_cache_messages_total",
            &[("tenant", &tenant)]
        ),
        Some(250.0)
    );
}

#[tokio::test]
async fn a_topic_filled_without_sluice_is_drained_with_large_limits_by_a_new_group() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(4).await;
    crate::helpers::kafka::produce_natively(&app.bootstrap, &topic, 3000).await;

    // One group moves the readers along first, as another application would.
    for _ in 0..8 {
        app.consume_ok(&user, &password, &topic, "group=first&limit=1")
            .await;
    }
    for limit in [100, 1000] {
        let group = format!("second{limit}");
        // As many concurrent clients as partitions, as the load test runs.
        let clients = (0..4).map(|_| {
            let (app, topic, user, password, group) = (&app, &topic, &user, &password, &group);
            async move {
                let mut values = Vec::new();
                loop {
                    let messages = app
                        .consume_ok(
                            user,
                            password,
                            topic,
                            &format!("group={group}&limit={limit}"),
                        )
                        .await;
                    if messages.is_empty() {
                        return values;
                    }
                    values.extend(
                        messages
                            .iter()
                            .map(|m| m["Value"].as_str().unwrap().to_owned()),
                    );
                }
            }
        });
        let values: Vec<String> = futures::future::join_all(clients).await.concat();
        let unique: HashSet<&String> = values.iter().collect();
        assert_eq!(unique.len(), values.len(), "duplicates in {group}");
        assert_eq!(unique.len(), 3000, "group {group}");
    }
}

#[tokio::test]
async fn two_nodes_and_eight_clients_drain_ten_thousand_messages_exactly_once() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_node(&first).await;
    let (_, topic, user, password) = first.tenant_with_topic(6).await;
    first
        .produce_numbered(&user, &password, &topic, 10_000)
        .await;
    let nodes = std::sync::Arc::new([first, second]);

    let mut clients = Vec::new();
    for client in 0..8usize {
        let (nodes, topic, user, password) =
            (nodes.clone(), topic.clone(), user.clone(), password.clone());
        clients.push(tokio::spawn(async move {
            let mut got = Vec::new();
            let mut empties_in_a_row = 0;
            for round in 0.. {
                let node = &nodes[(client + round) % 2];
                let messages = node.consume_ok(&user, &password, &topic, "limit=37").await;
                if messages.is_empty() {
                    empties_in_a_row += 1;
                    if empties_in_a_row >= 3 {
                        break;
                    }
                    continue;
                }
                empties_in_a_row = 0;
                got.extend(
                    messages
                        .iter()
                        .map(|m| m["Value"].as_str().unwrap().parse::<u32>().unwrap()),
                );
            }
            got
        }));
    }
    let mut all = Vec::new();
    for client in clients {
        all.extend(client.await.unwrap());
    }
    let unique: HashSet<u32> = all.iter().copied().collect();
    assert_eq!(
        all.len(),
        unique.len(),
        "{} duplicates",
        all.len() - unique.len()
    );
    assert_eq!(unique.len(), 10_000, "{} lost", 10_000 - unique.len());
}

#[tokio::test]
async fn a_long_poll_wakes_within_moments_of_a_message_produced_on_another_node() {
    // The watermark poller is slowed to 10 s, so only the cross-node
    // announcement can wake the poll in time.
    let slow_poller = |f: figment::Figment| f.merge(("consume.watermark_poll_ms", 10_000));
    let first = TestApp::spawn_with(slow_poller).await;
    let second = TestApp::start_node_with(&first, slow_poller).await;
    let (_, topic, user, password) = first.tenant_with_topic(1).await;

    let started = Instant::now();
    let empty = first
        .consume_ok(&user, &password, &topic, "wait=2000")
        .await;
    let waited = started.elapsed();
    assert!(empty.is_empty());
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_millis(3000),
        "{waited:?}"
    );

    let poll = {
        let (topic, user, password) = (topic.clone(), user.clone(), password.clone());
        let first_url = first.public_url.clone();
        let client = first.data.clone();
        tokio::spawn(async move {
            let response = client
                .get(format!("{first_url}/topic/{topic}?wait=5000"))
                .basic_auth(&user, Some(&password))
                .send()
                .await
                .unwrap();
            let body: Vec<Value> = response.json().await.unwrap();
            (Instant::now(), body)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let produced_at = Instant::now();
    second
        .produce(&user, &password, &topic, r#"[{"Value":"wake up"}]"#)
        .await;
    let (answered_at, body) = poll.await.unwrap();
    assert_eq!(body.len(), 1);
    assert_eq!(body[0]["Value"], "wake up");
    let latency = answered_at.duration_since(produced_at);
    // About 200 ms on an idle machine; the bound leaves room for a
    // loaded CI machine while staying far below the 10 s poller.
    assert!(
        latency < Duration::from_millis(1500),
        "woke {latency:?} after the produce"
    );
}

#[tokio::test]
async fn bad_consume_input_gets_a_json_4xx_and_never_a_5xx() {
    let app = TestApp::spawn().await;
    let (tenant, topic, user, password) = app.tenant_with_topic(1).await;
    let (_, other_topic, _, _) = app.tenant_with_topic(1).await;
    for (query, code) in [
        ("limit=-1", "invalid_limit"),
        ("limit=0", "invalid_limit"),
        ("limit=1000000000000", "invalid_limit"),
        ("limit=abc", "invalid_limit"),
        ("wait=-5", "invalid_wait"),
        ("wait=100000000000", "invalid_wait"),
        ("group=bad%20group", "invalid_group"),
        ("group=a..b", "invalid_group"),
        ("colour=red", "invalid_query"),
    ] {
        assert_error(
            app.consume(&user, &password, &topic, query).await,
            StatusCode::BAD_REQUEST,
            code,
        )
        .await;
    }
    assert_error(
        app.consume(&user, &password, &other_topic, "").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let unknown = app
        .consume(&user, &password, &format!("{tenant}.nothing"), "")
        .await;
    assert_error(unknown, StatusCode::NOT_FOUND, "topic_not_found").await;
    let writer = format!("{tenant}.writer");
    let writer_password = app
        .create_user(
            &tenant,
            &writer,
            json!([{ "prefix": format!("{tenant}."), "write": true }]),
        )
        .await;
    assert_error(
        app.consume(&writer, &writer_password, &topic, "").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn a_response_stops_at_the_byte_cap_but_always_carries_one_message() {
    let app = TestApp::spawn_with(|f| f.merge(("consume.max_response_bytes", 1000))).await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    let big = "x".repeat(1500);
    let body = json!([{ "Value": big }, { "Value": "small" }, { "Value": "small" }]).to_string();
    app.produce(&user, &password, &topic, &body).await;

    let first = app.consume_ok(&user, &password, &topic, "limit=10").await;
    assert_eq!(first.len(), 1, "the oversize message alone");
    let rest = app.consume_ok(&user, &password, &topic, "limit=10").await;
    assert_eq!(rest.len(), 2);
}
