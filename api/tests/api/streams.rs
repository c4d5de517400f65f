//! Streaming consume: SSE and WebSocket against a real node over TLS.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::process::BinaryNode;
use crate::helpers::streams::{stream_client, Closed, WsClient};
use crate::helpers::{tls, TestApp};

const SECOND: Duration = Duration::from_secs(1);

/// Frames of a WebSocket until `count` messages came (or `timeout`):
/// (receipt, values) per frame.
async fn ws_messages(
    ws: &mut WsClient,
    count: usize,
    timeout: Duration,
) -> Vec<(String, Vec<String>)> {
    let deadline = Instant::now() + timeout;
    let mut frames = Vec::new();
    let mut seen = 0;
    while seen < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(frame) = ws.next(left).await.expect("the connection stays open") else {
            break;
        };
        if let Some(messages) = frame["messages"].as_array() {
            let values: Vec<String> = messages
                .iter()
                .map(|m| m["Value"].as_str().unwrap().to_owned())
                .collect();
            seen += values.len();
            frames.push((
                frame["receipt"].as_str().unwrap_or_default().to_owned(),
                values,
            ));
        }
    }
    frames
}

#[tokio::test]
async fn sse_delivers_each_message_as_an_event_with_its_position_and_moves_the_group() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(2).await;
    let mut stream = app.open_sse(&user, &password, &topic, "group=g").await;
    assert_eq!(stream.status, StatusCode::OK);
    assert!(stream.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    app.produce_numbered(&user, &password, &topic, 20).await;

    let mut values = BTreeSet::new();
    while values.len() < 20 {
        let event = stream
            .next_message(10 * SECOND)
            .await
            .expect("every message arrives as an event");
        let data = event.json();
        let id = event.id.clone().unwrap();
        assert_eq!(
            id,
            format!("{}-{}", data["Partition"], data["Offset"]),
            "the id is the position"
        );
        assert_eq!(data["Topic"], topic.as_str());
        assert!(data.get("Receipt").is_none(), "auto mode has no receipt");
        assert!(
            values.insert(data["Value"].as_str().unwrap().to_owned()),
            "no duplicate"
        );
    }
    drop(stream);
    // Read only once: the group's position moved with the events.
    let left = app
        .consume_ok(&user, &password, &topic, "group=g&limit=100")
        .await;
    assert!(left.is_empty(), "already delivered: {left:?}");
}

#[tokio::test]
async fn sse_works_with_curl_n() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    app.produce_numbered(&user, &password, &topic, 3).await;
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "-N", "--max-time", "3", "--cacert"])
        .arg(&tls::certs().ca)
        .args(["-u", &format!("{user}:{password}")])
        .arg(format!(
            "{}/topic/{topic}/stream?group=curl",
            app.public_url
        ))
        .output()
        .await
        .expect("curl runs");
    // 28: curl stopped it at --max-time, as a stream never ends by itself.
    assert_eq!(
        out.status.code(),
        Some(28),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches("event: message\n").count(), 3, "{text}");
    for i in 0..3 {
        assert!(text.contains(&format!("\"Value\":\"{i}\"")), "{text}");
    }
}

#[tokio::test]
async fn sse_in_manual_mode_carries_receipts_and_unacked_messages_come_back() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    app.produce_numbered(&user, &password, &topic, 4).await;
    let query = "group=m&ack=manual&visibility=1500&limit=2";
    let mut stream = app.open_sse(&user, &password, &topic, query).await;
    let first = stream.next_message(10 * SECOND).await.unwrap().json();
    let second = stream.next_message(10 * SECOND).await.unwrap().json();
    let receipt = first["Receipt"]
        .as_str()
        .expect("manual events carry their receipt");
    assert_eq!(second["Receipt"], receipt, "one batch, one receipt");
    assert_eq!(first["Deliveries"], 1);
    let acked = app
        .post_ack(&user, &password, &topic, &json!({ "receipt": receipt }))
        .await;
    assert_eq!(acked.status(), StatusCode::NO_CONTENT);
    // The next batch is not acked: it comes back after its visibility.
    let third = stream.next_message(10 * SECOND).await.unwrap().json();
    assert_eq!(third["Value"], "2");
    let _fourth = stream.next_message(10 * SECOND).await.unwrap();
    let again = stream.next_message(10 * SECOND).await.unwrap().json();
    assert_eq!(again["Value"], "2", "unacked, delivered again");
    assert_eq!(again["Deliveries"], 2);
}

#[tokio::test]
async fn a_stream_sends_heartbeats_and_survives_a_long_gap_without_messages() {
    let app = TestApp::spawn_with(|f| f.merge(("consume.stream_heartbeat_ms", 200))).await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    let mut stream = app.open_sse(&user, &password, &topic, "group=quiet").await;
    let started = Instant::now();
    let mut heartbeats = 0;
    while started.elapsed() < 4 * SECOND {
        let event = stream
            .next(2 * SECOND)
            .await
            .expect("the stream stays open");
        assert_eq!(event.event, "comment", "nothing but heartbeats: {event:?}");
        if event.data == "heartbeat" {
            heartbeats += 1;
        }
    }
    assert!(heartbeats >= 5, "heartbeats every 200 ms, saw {heartbeats}");
    app.produce_numbered(&user, &password, &topic, 1).await;
    let message = stream
        .next_message(10 * SECOND)
        .await
        .expect("a message after the gap");
    assert_eq!(message.json()["Value"], "0");
}

#[tokio::test]
async fn a_websocket_client_acks_and_never_holds_more_unacked_than_its_credit() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(2).await;
    app.produce_numbered(&user, &password, &topic, 30).await;
    let mut ws = app
        .open_ws(&user, &password, &topic, "group=w&credit=4&limit=10")
        .await
        .expect("upgraded");
    let mut received = BTreeSet::new();
    let mut unacked: Vec<(String, usize)> = Vec::new();
    while received.len() < 30 {
        let frame = ws.next(10 * SECOND).await.expect("open");
        let Some(frame) = frame else {
            // Nothing more until something is acked: ack the oldest.
            let (receipt, _) = unacked.remove(0);
            ws.send(&json!({ "ack": receipt })).await;
            continue;
        };
        if let Some(messages) = frame["messages"].as_array() {
            let receipt = frame["receipt"].as_str().unwrap().to_owned();
            for m in messages {
                received.insert(m["Value"].as_str().unwrap().to_owned());
            }
            unacked.push((receipt, messages.len()));
            let held: usize = unacked.iter().map(|(_, n)| n).sum();
            assert!(held <= 4, "{held} messages unacked with a credit of 4");
        } else if frame.get("acked").is_none() {
            panic!("unexpected frame {frame}");
        }
        if unacked.iter().map(|(_, n)| n).sum::<usize>() == 4 {
            // The window is full: nothing more comes until an ack.
            assert_eq!(ws.next(SECOND).await.expect("open"), None);
            let (receipt, _) = unacked.remove(0);
            ws.send(&json!({ "ack": receipt })).await;
            assert_eq!(
                ws.next(5 * SECOND).await.unwrap().unwrap()["acked"],
                receipt
            );
        }
    }
    for (receipt, _) in unacked.drain(..) {
        ws.send(&json!({ "ack": receipt })).await;
        assert_eq!(
            ws.next(5 * SECOND).await.unwrap().unwrap()["acked"],
            receipt
        );
    }
    // Credit 0 pauses the stream.
    ws.send(&json!({ "credit": 0 })).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.produce_numbered(&user, &password, &topic, 1).await;
    assert_eq!(
        ws.next(2 * SECOND).await.expect("open"),
        None,
        "paused by credit 0"
    );
    ws.send(&json!({ "credit": 10 })).await;
    let frame = ws.next(10 * SECOND).await.unwrap().unwrap();
    assert_eq!(frame["messages"][0]["Value"], "0");
    ws.close().await;
    assert_eq!(received.len(), 30);
    let left = app
        .consume_ok(&user, &password, &topic, "group=w&limit=100")
        .await;
    assert!(
        left.len() <= 1,
        "acked messages are never delivered again: {left:?}"
    );
}

#[tokio::test]
async fn a_nacked_websocket_frame_comes_back_to_the_group() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    app.produce_numbered(&user, &password, &topic, 3).await;
    let mut ws = app
        .open_ws(&user, &password, &topic, "group=n")
        .await
        .unwrap();
    let frames = ws_messages(&mut ws, 3, 10 * SECOND).await;
    let (receipt, values) = frames[0].clone();
    assert_eq!(values, vec!["0", "1", "2"]);
    ws.send(&json!({ "nack": receipt })).await;
    assert_eq!(
        ws.next(5 * SECOND).await.unwrap().unwrap()["nacked"],
        receipt.as_str()
    );
    let again = ws_messages(&mut ws, 3, 10 * SECOND).await;
    assert_eq!(
        again[0].1,
        vec!["0", "1", "2"],
        "delivered again after the nack"
    );
    ws.send(&json!({ "ack": again[0].0 })).await;
    assert_eq!(
        ws.next(5 * SECOND).await.unwrap().unwrap()["acked"],
        again[0].0.as_str()
    );
}

#[tokio::test]
async fn malformed_frames_get_error_frames_and_the_third_closes_the_connection_with_4400() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    let mut ws = app
        .open_ws(&user, &password, &topic, "group=bad")
        .await
        .unwrap();
    ws.send_text("not json").await;
    let error = ws.next(5 * SECOND).await.unwrap().unwrap();
    assert_eq!(error["error"]["code"], "invalid_frame");
    ws.send(&json!({ "ack": "a", "nack": "b" })).await;
    assert_eq!(
        ws.next(5 * SECOND).await.unwrap().unwrap()["error"]["code"],
        "invalid_frame"
    );
    // A well-formed frame naming a receipt that does not exist is no strike.
    ws.send(&json!({ "ack": "0123456789abcdef0123456789abcdef" }))
        .await;
    let unknown = ws.next(5 * SECOND).await.unwrap().unwrap();
    assert_eq!(unknown["error"]["code"], "receipt_not_found");
    ws.send(&json!({ "credit": -3 })).await;
    let closed = ws.closed(5 * SECOND).await.expect("closed after the third");
    assert_eq!(
        closed,
        Closed {
            code: 4400,
            reason: "invalid_frame".into()
        }
    );
}

#[tokio::test]
async fn bad_stream_requests_get_json_errors_before_any_stream_opens() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    let client = stream_client(None);
    let get = |path: String| {
        client
            .get(format!("{}{path}", app.public_url))
            .basic_auth(&user, Some(&password))
            .send()
    };
    let cases = [
        (
            format!("/topic/{topic}/stream?limit=0"),
            400,
            "invalid_limit",
        ),
        (
            format!("/topic/{topic}/stream?ack=maybe"),
            400,
            "invalid_ack",
        ),
        (
            format!("/topic/{topic}/stream?credit=5"),
            400,
            "invalid_credit",
        ),
        (
            format!("/topic/{topic}/stream?wait=5"),
            400,
            "invalid_query",
        ),
        (format!("/topic/{topic}x/stream"), 404, "topic_not_found"),
        (format!("/topic/{topic}/ws"), 426, "upgrade_required"),
        ("/topic/other.orders/stream".to_owned(), 403, "forbidden"),
    ];
    for (path, status, code) in cases {
        let response = get(path.clone()).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], code, "{path}: {body}");
    }
    let refused = app
        .open_ws(&user, "wrong-password", &topic, "")
        .await
        .err()
        .unwrap();
    assert_eq!(refused.0, 401);
    let refused = app
        .open_ws(&user, &password, &topic, "credit=100001")
        .await
        .err()
        .unwrap();
    assert_eq!(refused.0, 400);
    assert!(refused.1.contains("invalid_credit"), "{}", refused.1);
}

#[tokio::test]
async fn streams_past_the_tenants_max_streams_are_refused_with_429_until_one_closes() {
    let app = TestApp::spawn().await;
    let (tenant, user, password) = app.tenant_with_quota(json!({ "max_streams": 2 })).await;
    let topic = format!("{tenant}.orders");
    app.create_topic(&tenant, &topic, 1).await;
    let first = app.open_sse(&user, &password, &topic, "").await;
    assert_eq!(first.status, StatusCode::OK);
    let second = app
        .open_ws(&user, &password, &topic, "")
        .await
        .expect("second");
    let third = app.open_sse(&user, &password, &topic, "").await;
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(third.headers.contains_key("retry-after"));
    let refused = app
        .open_ws(&user, &password, &topic, "")
        .await
        .err()
        .unwrap();
    assert_eq!(refused.0, 429);
    assert!(refused.1.contains("too_many_open_streams"), "{}", refused.1);
    // Another tenant is not affected.
    let (_, other_topic, other_user, other_password) = app.tenant_with_topic(1).await;
    let other = app
        .open_sse(&other_user, &other_password, &other_topic, "")
        .await;
    assert_eq!(other.status, StatusCode::OK);
    // A stream that ends gives its place back.
    second.close().await;
    let deadline = Instant::now() + 5 * SECOND;
    loop {
        let again = app.open_sse(&user, &password, &topic, "").await;
        if again.status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "the place never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(first);
}

#[tokio::test]
async fn revoking_a_user_closes_its_streams_within_5_seconds() {
    let app = TestApp::spawn().await;
    let (tenant, topic, user, password) = app.tenant_with_topic(1).await;
    let mut sse = app.open_sse(&user, &password, &topic, "group=r").await;
    let mut ws = app
        .open_ws(&user, &password, &topic, "group=r2")
        .await
        .unwrap();
    // Another user of the tenant keeps its stream.
    let other = format!("{tenant}.other");
    let other_password = app
        .create_user(
            &tenant,
            &other,
            json!([{ "prefix": format!("{tenant}."), "read": true, "write": true }]),
        )
        .await;
    let mut kept = app
        .open_sse(&other, &other_password, &topic, "group=k")
        .await;
    assert_eq!(sse.next(5 * SECOND).await.unwrap().event, "comment");

    let revoked_at = Instant::now();
    let deleted = app.delete_user(&tenant, &user).await;
    assert!(deleted.status().is_success());
    let ending = sse.ending(5 * SECOND).await.expect("the SSE stream ends");
    assert_eq!(ending.event, "error");
    assert_eq!(ending.json()["code"], "unauthorized");
    let closed = ws.closed(5 * SECOND).await.expect("the WebSocket closes");
    assert_eq!(
        closed,
        Closed {
            code: 4401,
            reason: "unauthorized".into()
        }
    );
    assert!(revoked_at.elapsed() < 5 * SECOND);

    app.produce_numbered(&other, &other_password, &topic, 1)
        .await;
    let message = kept
        .next_message(10 * SECOND)
        .await
        .expect("the other user's stream stays open and delivers");
    assert_eq!(message.json()["Value"], "0");
}

#[tokio::test]
async fn removing_the_read_grant_closes_the_stream_with_4403() {
    let app = TestApp::spawn().await;
    let (tenant, topic, user, password) = app.tenant_with_topic(1).await;
    let mut ws = app.open_ws(&user, &password, &topic, "").await.unwrap();
    let removed = app
        .delete_grant(&tenant, &user, &format!("{tenant}."))
        .await;
    assert!(removed.status().is_success());
    let closed = ws.closed(5 * SECOND).await.expect("closed");
    assert_eq!(
        closed,
        Closed {
            code: 4403,
            reason: "forbidden".into()
        }
    );
}

#[tokio::test]
async fn an_idle_stream_is_closed_after_stream_idle() {
    let app = TestApp::spawn_with(|f| {
        f.merge(("consume.stream_idle_ms", 800))
            .merge(("consume.stream_heartbeat_ms", 200))
    })
    .await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    let mut sse = app.open_sse(&user, &password, &topic, "").await;
    let ending = sse.ending(5 * SECOND).await.expect("closed when idle");
    assert_eq!(ending.json()["code"], "stream_idle");
    let mut ws = app.open_ws(&user, &password, &topic, "").await.unwrap();
    let closed = ws.closed(5 * SECOND).await.expect("closed when idle");
    assert_eq!(
        closed,
        Closed {
            code: 4408,
            reason: "stream_idle".into()
        }
    );
}

#[tokio::test]
async fn a_stream_over_its_byte_quota_pauses_and_does_not_disconnect() {
    // A byte burst below the default largest message would be refused.
    let app = TestApp::spawn_with(|f| f.merge(("produce.max_message_bytes", 1000))).await;
    let (tenant, user, password) = app
        .tenant_with_quota(
            json!({ "bytes_per_second": 2000, "burst_seconds": 1, "requests_per_second": 1000 }),
        )
        .await;
    let topic = format!("{tenant}.orders");
    app.create_topic(&tenant, &topic, 1).await;
    let value = "x".repeat(900);
    for _ in 0..6 {
        let body = json!([{ "Value": value }, { "Value": value }]);
        let response = app
            .produce(&user, &password, &topic, &body.to_string())
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        tokio::time::sleep(SECOND).await;
    }
    let started = Instant::now();
    let mut ws = app
        .open_ws(&user, &password, &topic, "ack=auto&limit=2")
        .await
        .unwrap();
    let frames = ws_messages(&mut ws, 12, 30 * SECOND).await;
    let delivered: usize = frames.iter().map(|(_, v)| v.len()).sum();
    assert_eq!(
        delivered, 12,
        "everything arrives, paced, on the same connection"
    );
    // 10.8 kB at 2 kB/s: the 2 kB burst and one batch go at once (a
    // batch is charged once read), the other 7 kB take 3.5 s.
    assert!(
        started.elapsed() >= Duration::from_millis(2500),
        "delivered too fast for the byte rate: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_draining_node_ends_its_streams_with_shutdown() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    let node = BinaryNode::start(&app.database_url, &app.bootstrap, "warn").await;
    let on_node = node.test_app(&app.database_url, &app.bootstrap).await;
    let mut sse = on_node.open_sse(&user, &password, &topic, "").await;
    assert_eq!(sse.status, StatusCode::OK);
    let mut ws = on_node.open_ws(&user, &password, &topic, "").await.unwrap();
    assert!(sse.next(5 * SECOND).await.is_some());
    node.signal("TERM");
    let ending = sse.ending(10 * SECOND).await.expect("an event says why");
    assert_eq!(ending.event, "shutdown");
    assert_eq!(ending.json()["code"], "shutting_down");
    let closed = ws.closed(10 * SECOND).await.expect("closed");
    assert_eq!(
        closed,
        Closed {
            code: 1001,
            reason: "shutting_down".into()
        }
    );
}
