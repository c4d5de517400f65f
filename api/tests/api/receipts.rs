//! Manual-ack mode (issue 14, at-least-once consume): a GET with
//! `ack=manual` answers with a `Sluice-Receipt`; the receipt is acked,
//! nacked or extended, and a range never settled comes back with its
//! `Deliveries` count raised.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, TestApp};

/// The receipt header of a manual-mode answer.
const RECEIPT: &str = "sluice-receipt";

/// One manual-mode answer: its messages and its receipt, if any.
struct Answer {
    messages: Vec<Value>,
    receipt: Option<String>,
}

impl Answer {
    fn offsets(&self) -> Vec<i64> {
        self.messages
            .iter()
            .map(|m| m["Offset"].as_i64().unwrap())
            .collect()
    }

    fn deliveries(&self) -> Vec<i64> {
        self.messages
            .iter()
            .map(|m| m["Deliveries"].as_i64().unwrap())
            .collect()
    }

    fn receipt(&self) -> &str {
        self.receipt
            .as_deref()
            .expect("a non-empty answer has a receipt")
    }
}

/// `GET /topic/{topic}?ack=manual&{query}` on `app`, asserting a 200.
async fn manual(app: &TestApp, user: &str, password: &str, topic: &str, query: &str) -> Answer {
    let response = app
        .consume(user, password, topic, &format!("ack=manual&{query}"))
        .await;
    let status = response.status();
    let receipt = response
        .headers()
        .get(RECEIPT)
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    let messages: Vec<Value> = serde_json::from_str(&text).expect("a JSON array of messages");
    if messages.is_empty() {
        assert_eq!(receipt, None, "an empty answer carries a receipt");
    } else {
        assert!(
            receipt.as_deref().is_some_and(|r| !r.is_empty()),
            "a non-empty answer has no receipt"
        );
    }
    Answer { messages, receipt }
}

/// Asserts a 204 (with the body in the message when it is not).
async fn assert_no_content(response: reqwest::Response, what: &str) {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::NO_CONTENT, "{what}: {text}");
}

/// A fresh tenant with a 1-partition topic holding `count` messages.
async fn filled(app: &TestApp, count: usize) -> (String, String, String, String) {
    let (tenant, topic, user, password) = app.tenant_with_topic(1).await;
    app.produce_numbered(&user, &password, &topic, count).await;
    (tenant, topic, user, password)
}

#[tokio::test]
async fn a_manual_get_answers_with_deliveries_and_a_receipt_whose_ack_settles_the_range() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = filled(&app, 5).await;
    let first = manual(
        &app,
        &user,
        &password,
        &topic,
        "group=g&limit=100&visibility=1000",
    )
    .await;
    assert_eq!(first.offsets(), [0, 1, 2, 3, 4]);
    assert_eq!(first.deliveries(), [1, 1, 1, 1, 1]);
    for (i, m) in first.messages.iter().enumerate() {
        assert_eq!(m["Topic"], topic.as_str());
        assert_eq!(m["Partition"], 0);
        assert_eq!(m["Value"], i.to_string());
        for field in ["Timestamp", "Key", "Headers"] {
            assert!(m.get(field).is_some(), "no {field} in {m}");
        }
    }
    let ack = app
        .post_ack(
            &user,
            &password,
            &topic,
            &json!({ "receipt": first.receipt() }),
        )
        .await;
    assert_no_content(ack, "ack").await;
    // Past the visibility: nothing comes back, the range is settled.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let after = manual(&app, &user, &password, &topic, "group=g&limit=100").await;
    assert!(after.messages.is_empty(), "{:?}", after.messages);
    // New messages follow, once.
    app.produce(&user, &password, &topic, r#"[{"Value":"5"}]"#)
        .await;
    let next = manual(&app, &user, &password, &topic, "group=g&limit=100").await;
    assert_eq!(next.offsets(), [5]);
    assert_eq!(next.deliveries(), [1]);
}

#[tokio::test]
async fn a_manual_get_holds_the_partition_until_the_visibility_ends_then_redelivers_the_same_range()
{
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = filled(&app, 4).await;
    let first = manual(
        &app,
        &user,
        &password,
        &topic,
        "group=g&limit=100&visibility=1500",
    )
    .await;
    assert_eq!(first.offsets(), [0, 1, 2, 3]);
    let during = manual(&app, &user, &password, &topic, "group=g&limit=100").await;
    assert!(
        during.messages.is_empty(),
        "a leased partition was delivered again: {:?}",
        during.messages
    );
    // Another group is not held up.
    let other = manual(&app, &user, &password, &topic, "group=h&limit=100").await;
    assert_eq!(other.offsets(), [0, 1, 2, 3]);
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let again = manual(&app, &user, &password, &topic, "group=g&limit=100").await;
    assert_eq!(again.offsets(), [0, 1, 2, 3]);
    assert_eq!(again.deliveries(), [2, 2, 2, 2]);
    assert_ne!(
        again.receipt(),
        first.receipt(),
        "a new delivery, a new receipt"
    );
}

#[tokio::test]
async fn a_nacked_receipt_is_delivered_again_at_once_with_deliveries_two() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = filled(&app, 3).await;
    let first = manual(
        &app,
        &user,
        &password,
        &topic,
        "group=g&limit=100&visibility=30000",
    )
    .await;
    assert_eq!(first.offsets(), [0, 1, 2]);
    let nack = app
        .post_nack(
            &user,
            &password,
            &topic,
            &json!({ "receipt": first.receipt() }),
        )
        .await;
    assert_no_content(nack, "nack").await;
    let again = manual(&app, &user, &password, &topic, "group=g&limit=100").await;
    assert_eq!(again.offsets(), [0, 1, 2]);
    assert_eq!(again.deliveries(), [2, 2, 2]);
    let ack = app
        .post_ack(
            &user,
            &password,
            &topic,
            &json!({ "receipt": again.receipt() }),
        )
        .await;
    assert_no_content(ack, "ack of the redelivery").await;
    assert!(manual(&app, &user, &password, &topic, "group=g&limit=100")
        .await
        .messages
        .is_empty());
}

#[tokio::test]
async fn an_extended_receipt_keeps_its_partition_past_the_original_visibility() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = filled(&app, 3).await;
    let first = manual(
        &app,
        &user,
        &password,
        &topic,
        "group=g&limit=100&visibility=1000",
    )
    .await;
    assert_eq!(first.offsets(), [0, 1, 2]);
    let extend = app
        .post_extend(
            &user,
            &password,
            &topic,
            &json!({ "receipt": first.receipt(), "visibility": 6000 }),
        )
        .await;
    assert_no_content(extend, "extend").await;
    // The original visibility has ended; the extension holds.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let during = manual(&app, &user, &password, &topic, "group=g&limit=100").await;
    assert!(
        during.messages.is_empty(),
        "an extended range was delivered again: {:?}",
        during.messages
    );
    let ack = app
        .post_ack(
            &user,
            &password,
            &topic,
            &json!({ "receipt": first.receipt() }),
        )
        .await;
    assert_no_content(ack, "ack within the extension").await;
    assert!(manual(&app, &user, &password, &topic, "group=g&limit=100")
        .await
        .messages
        .is_empty());
}

#[tokio::test]
async fn acking_a_receipt_twice_answers_204_both_times_and_delivers_nothing_twice() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = filled(&app, 3).await;
    let first = manual(
        &app,
        &user,
        &password,
        &topic,
        "group=g&limit=100&visibility=1000",
    )
    .await;
    for attempt in ["first ack", "second ack"] {
        let ack = app
            .post_ack(
                &user,
                &password,
                &topic,
                &json!({ "receipt": first.receipt() }),
            )
            .await;
        assert_no_content(ack, attempt).await;
    }
    // A nack or an extend of an acked receipt is refused: it is settled.
    let nack = app
        .post_nack(
            &user,
            &password,
            &topic,
            &json!({ "receipt": first.receipt() }),
        )
        .await;
    assert_error(nack, StatusCode::CONFLICT, "receipt_settled").await;
    let extend = app
        .post_extend(
            &user,
            &password,
            &topic,
            &json!({ "receipt": first.receipt(), "visibility": 5000 }),
        )
        .await;
    assert_error(extend, StatusCode::CONFLICT, "receipt_settled").await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let ack = app
        .post_ack(
            &user,
            &password,
            &topic,
            &json!({ "receipt": first.receipt() }),
        )
        .await;
    assert_no_content(ack, "a repeat after the visibility ended").await;
    assert!(manual(&app, &user, &password, &topic, "group=g&limit=100")
        .await
        .messages
        .is_empty());
}

#[tokio::test]
async fn an_ack_after_the_visibility_ended_is_refused_as_expired_and_the_range_comes_back_with_deliveries_two(
) {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = filled(&app, 3).await;
    let first = manual(
        &app,
        &user,
        &password,
        &topic,
        "group=g&limit=100&visibility=1000",
    )
    .await;
    assert_eq!(first.offsets(), [0, 1, 2]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let late = app
        .post_ack(
            &user,
            &password,
            &topic,
            &json!({ "receipt": first.receipt() }),
        )
        .await;
    assert_error(late, StatusCode::CONFLICT, "receipt_expired").await;
    let again = manual(&app, &user, &password, &topic, "group=g&limit=100").await;
    assert_eq!(again.offsets(), [0, 1, 2]);
    assert_eq!(again.deliveries(), [2, 2, 2]);
    // The old receipt stays expired once its range went to someone else.
    let stale = app
        .post_ack(
            &user,
            &password,
            &topic,
            &json!({ "receipt": first.receipt() }),
        )
        .await;
    assert_error(stale, StatusCode::CONFLICT, "receipt_expired").await;
    let ack = app
        .post_ack(
            &user,
            &password,
            &topic,
            &json!({ "receipt": again.receipt() }),
        )
        .await;
    assert_no_content(ack, "ack of the redelivery").await;
}

#[tokio::test]
async fn a_forged_or_altered_receipt_is_not_found() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = filled(&app, 2).await;
    let real = manual(
        &app,
        &user,
        &password,
        &topic,
        "group=g&limit=100&visibility=30000",
    )
    .await;
    let receipt = real.receipt().to_owned();
    // The real one with its last character changed.
    let mut altered = receipt.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == '0' { '1' } else { '0' });
    let forged = [
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().simple().to_string(),
        "forged".to_owned(),
        altered,
        format!("{receipt}x"),
    ];
    for fake in &forged {
        for action in ["ack", "nack", "extend"] {
            let body = json!({ "receipt": fake });
            let response = match action {
                "ack" => app.post_ack(&user, &password, &topic, &body).await,
                "nack" => app.post_nack(&user, &password, &topic, &body).await,
                _ => {
                    let body = json!({ "receipt": fake, "visibility": 5000 });
                    app.post_extend(&user, &password, &topic, &body).await
                }
            };
            let status = response.status();
            assert_eq!(
                status,
                StatusCode::NOT_FOUND,
                "{action} with {fake:?}: {}",
                response.text().await.unwrap_or_default()
            );
            assert_error(response, status, "receipt_not_found").await;
        }
    }
    // None of them touched the real receipt.
    let ack = app
        .post_ack(&user, &password, &topic, &json!({ "receipt": receipt }))
        .await;
    assert_no_content(ack, "ack of the real receipt").await;
}

#[tokio::test]
async fn a_receipt_is_not_found_by_another_tenant_nor_on_another_topic() {
    let app = TestApp::spawn().await;
    let (_, topic_a, user_a, password_a) = filled(&app, 2).await;
    let (tenant_b, topic_b, user_b, password_b) = filled(&app, 2).await;
    let a = manual(
        &app,
        &user_a,
        &password_a,
        &topic_a,
        "group=g&limit=100&visibility=30000",
    )
    .await;
    let body = json!({ "receipt": a.receipt() });
    // B, on its own topic, with A's receipt: not found.
    let on_b = app.post_ack(&user_b, &password_b, &topic_b, &body).await;
    assert_error(on_b, StatusCode::NOT_FOUND, "receipt_not_found").await;
    let nack_on_b = app.post_nack(&user_b, &password_b, &topic_b, &body).await;
    assert_error(nack_on_b, StatusCode::NOT_FOUND, "receipt_not_found").await;
    // B, on A's topic: no grant there.
    let on_a = app.post_ack(&user_b, &password_b, &topic_a, &body).await;
    assert_error(on_a, StatusCode::FORBIDDEN, "forbidden").await;
    let nack_on_a = app.post_nack(&user_b, &password_b, &topic_a, &body).await;
    assert_error(nack_on_a, StatusCode::FORBIDDEN, "forbidden").await;
    // A, on another topic of its own: not found either.
    let tenant_a = topic_a.split_once('.').unwrap().0.to_owned();
    assert_ne!(tenant_a, tenant_b);
    let other = format!("{tenant_a}.other");
    app.create_topic(&tenant_a, &other, 1).await;
    let elsewhere = app.post_ack(&user_a, &password_a, &other, &body).await;
    assert_error(elsewhere, StatusCode::NOT_FOUND, "receipt_not_found").await;
    // A's receipt is still open, and A's own ack settles it.
    let ack = app.post_ack(&user_a, &password_a, &topic_a, &body).await;
    assert_no_content(ack, "A's ack").await;
    // B's own group on B's topic was never touched.
    let b = manual(&app, &user_b, &password_b, &topic_b, "group=g&limit=100").await;
    assert_eq!(b.offsets(), [0, 1]);
    assert_eq!(b.deliveries(), [1, 1]);
}

#[tokio::test]
async fn a_range_leased_on_one_node_is_acked_on_another() {
    let one = TestApp::spawn().await;
    let two = TestApp::spawn_node(&one).await;
    let (_, topic, user, password) = filled(&one, 4).await;
    let leased = manual(
        &one,
        &user,
        &password,
        &topic,
        "group=g&limit=100&visibility=1000",
    )
    .await;
    assert_eq!(leased.offsets(), [0, 1, 2, 3]);
    // The other node sees the lease too.
    let during = manual(&two, &user, &password, &topic, "group=g&limit=100").await;
    assert!(during.messages.is_empty(), "{:?}", during.messages);
    let ack = two
        .post_ack(
            &user,
            &password,
            &topic,
            &json!({ "receipt": leased.receipt() }),
        )
        .await;
    assert_no_content(ack, "ack on node 2").await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    for node in [&one, &two] {
        let after = manual(node, &user, &password, &topic, "group=g&limit=100").await;
        assert!(after.messages.is_empty(), "{:?}", after.messages);
    }
    // A repeat on the first node answers 204 too.
    let again = one
        .post_ack(
            &user,
            &password,
            &topic,
            &json!({ "receipt": leased.receipt() }),
        )
        .await;
    assert_no_content(again, "repeat on node 1").await;
}

#[tokio::test]
async fn a_partial_ack_of_99_of_100_messages_redelivers_exactly_the_one_left() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = filled(&app, 100).await;
    let first = manual(
        &app,
        &user,
        &password,
        &topic,
        "group=g&limit=100&visibility=30000",
    )
    .await;
    assert_eq!(first.offsets(), (0..100).collect::<Vec<i64>>());
    let acked: Vec<Value> = (0..100)
        .filter(|o| *o != 41)
        .map(|o| json!({ "Partition": 0, "Offset": o }))
        .collect();
    let ack = app
        .post_ack(
            &user,
            &password,
            &topic,
            &json!({ "receipt": first.receipt(), "offsets": acked }),
        )
        .await;
    assert_no_content(ack, "partial ack").await;
    // The rest was released: it comes back at once, not after 30 s.
    let started = Instant::now();
    let again = loop {
        let answer = manual(&app, &user, &password, &topic, "group=g&limit=100").await;
        if !answer.messages.is_empty() || started.elapsed() > Duration::from_secs(5) {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(again.offsets(), [41], "only the message not acked");
    assert_eq!(again.deliveries(), [2]);
    assert_eq!(again.messages[0]["Value"], "41");
    let ack = app
        .post_ack(
            &user,
            &password,
            &topic,
            &json!({ "receipt": again.receipt() }),
        )
        .await;
    assert_no_content(ack, "ack of the one left").await;
    // Everything is settled: the cursor moved past all 100.
    assert!(manual(&app, &user, &password, &topic, "group=g&limit=100")
        .await
        .messages
        .is_empty());
    app.produce(&user, &password, &topic, r#"[{"Value":"100"}]"#)
        .await;
    let next = manual(&app, &user, &password, &topic, "group=g&limit=100").await;
    assert_eq!(next.offsets(), [100]);
    assert_eq!(next.deliveries(), [1]);
}

#[tokio::test]
async fn a_nack_with_a_delay_is_not_delivered_again_before_the_delay_ends() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = filled(&app, 2).await;
    let first = manual(
        &app,
        &user,
        &password,
        &topic,
        "group=g&limit=100&visibility=30000",
    )
    .await;
    let nacked_at = Instant::now();
    let nack = app
        .post_nack(
            &user,
            &password,
            &topic,
            &json!({ "receipt": first.receipt(), "delay": 2000 }),
        )
        .await;
    assert_no_content(nack, "nack with a delay").await;
    let mut redelivered = None;
    while nacked_at.elapsed() < Duration::from_secs(8) {
        let answer = manual(&app, &user, &password, &topic, "group=g&limit=100").await;
        if !answer.messages.is_empty() {
            redelivered = Some((nacked_at.elapsed(), answer));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (after, again) = redelivered.expect("the nacked range came back after its delay");
    assert!(
        after >= Duration::from_millis(1900),
        "delivered again {after:?} after a nack with a 2 s delay"
    );
    assert_eq!(again.offsets(), [0, 1]);
    assert_eq!(again.deliveries(), [2, 2]);
}

#[tokio::test]
async fn an_empty_manual_answer_carries_no_receipt() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(2).await;
    let response = app
        .consume(&user, &password, &topic, "group=g&limit=10&ack=manual")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(RECEIPT).is_none());
    let messages: Vec<Value> = response.json().await.unwrap();
    assert!(messages.is_empty());
}

#[tokio::test]
async fn auto_mode_answers_carry_no_receipt_and_deliver_each_message_once() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = filled(&app, 3).await;
    let response = app
        .consume(&user, &password, &topic, "group=g&limit=100")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(RECEIPT).is_none());
    let messages: Vec<Value> = response.json().await.unwrap();
    assert_eq!(messages.len(), 3);
    assert!(app
        .consume_ok(&user, &password, &topic, "group=g&limit=100")
        .await
        .is_empty());
}

/// Bad requests of every receipt endpoint and of a manual GET: a 400 with
/// a stable code each, never a 5xx.
#[tokio::test]
async fn bad_receipt_requests_are_refused_with_400_and_a_stable_code() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = filled(&app, 2).await;
    let open = manual(
        &app,
        &user,
        &password,
        &topic,
        "group=g&limit=100&visibility=30000",
    )
    .await;
    let receipt = open.receipt().to_owned();
    let post = |action: &str, body: &str| {
        app.data
            .post(format!("{}/topic/{topic}/{action}", app.public_url))
            .basic_auth(&user, Some(&password))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
    };
    // A body the route's shape does not take is `malformed_json`; a
    // well-shaped one with a value out of range names that value.
    let bodies: Vec<(&str, String, &str)> = vec![
        ("ack", "{}".to_owned(), "malformed_json"),
        ("nack", "{}".to_owned(), "malformed_json"),
        (
            "extend",
            r#"{"visibility":5000}"#.to_owned(),
            "malformed_json",
        ),
        (
            "extend",
            json!({ "receipt": receipt }).to_string(),
            "malformed_json",
        ),
        ("ack", r#"{"receipt":5}"#.to_owned(), "malformed_json"),
        ("ack", r#"{"receipt":"#.to_owned(), "malformed_json"),
        ("nack", "not json".to_owned(), "malformed_json"),
        ("extend", r#"{"receipt":"#.to_owned(), "malformed_json"),
        (
            "extend",
            json!({ "receipt": receipt, "visibility": 0 }).to_string(),
            "invalid_visibility",
        ),
        (
            "extend",
            json!({ "receipt": receipt, "visibility": 1_000_000_000_000u64 }).to_string(),
            "invalid_visibility",
        ),
        (
            "extend",
            json!({ "receipt": receipt, "visibility": -5 }).to_string(),
            "malformed_json",
        ),
        (
            "nack",
            json!({ "receipt": receipt, "delay": 1_000_000_000_000u64 }).to_string(),
            "invalid_delay",
        ),
        (
            "nack",
            json!({ "receipt": receipt, "delay": -1 }).to_string(),
            "malformed_json",
        ),
        (
            "ack",
            json!({ "receipt": receipt, "offsets": "all" }).to_string(),
            "malformed_json",
        ),
        (
            "ack",
            json!({ "receipt": receipt, "offsets": [] }).to_string(),
            "invalid_offsets",
        ),
        (
            "ack",
            json!({ "receipt": receipt, "offsets": [{ "Partition": -1, "Offset": 0 }] })
                .to_string(),
            "invalid_offsets",
        ),
    ];
    for (action, body, code) in &bodies {
        let response = post(action, body).await.unwrap();
        let status = response.status();
        assert!(
            !status.is_server_error(),
            "{action} {body}: {status} {}",
            response.text().await.unwrap_or_default()
        );
        assert_eq!(status, StatusCode::BAD_REQUEST, "{action} {body}");
        assert_error(response, StatusCode::BAD_REQUEST, code).await;
    }
    let queries = [
        ("group=g&ack=bogus", "invalid_ack"),
        ("group=g&ack=manual&visibility=0", "invalid_visibility"),
        ("group=g&ack=manual&visibility=abc", "invalid_visibility"),
        (
            "group=g&ack=manual&visibility=1000000000000",
            "invalid_visibility",
        ),
    ];
    for (query, code) in queries {
        let response = app.consume(&user, &password, &topic, query).await;
        let status = response.status();
        assert!(!status.is_server_error(), "{query}: {status}");
        assert_error(response, StatusCode::BAD_REQUEST, code).await;
    }
    // None of that touched the open receipt.
    let ack = app
        .post_ack(&user, &password, &topic, &json!({ "receipt": receipt }))
        .await;
    assert_no_content(ack, "ack of the open receipt").await;
}

/// A range that expired and comes back to a GET with a smaller limit comes
/// back in pieces: every piece of it is a redelivery (Deliveries 2), the
/// piece after an ack of the first one too. (Found by the manual-ack
/// checker: the rest came back with Deliveries 1.)
#[tokio::test]
async fn an_expired_range_redelivered_in_pieces_keeps_its_deliveries_count_in_every_piece() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = filled(&app, 10).await;
    let first = manual(
        &app,
        &user,
        &password,
        &topic,
        "group=g&limit=6&visibility=1000",
    )
    .await;
    assert_eq!(first.offsets(), [0, 1, 2, 3, 4, 5]);
    assert_eq!(first.deliveries(), [1; 6]);
    tokio::time::sleep(Duration::from_millis(1400)).await;
    let head = manual(
        &app,
        &user,
        &password,
        &topic,
        "group=g&limit=4&visibility=30000",
    )
    .await;
    assert_eq!(head.offsets(), [0, 1, 2, 3]);
    assert_eq!(head.deliveries(), [2; 4]);
    let ack = app
        .post_ack(
            &user,
            &password,
            &topic,
            &json!({ "receipt": head.receipt() }),
        )
        .await;
    assert_no_content(ack, "ack of the first piece").await;
    let rest = manual(
        &app,
        &user,
        &password,
        &topic,
        "group=g&limit=10&visibility=30000",
    )
    .await;
    let pairs: Vec<(i64, i64)> = rest.offsets().into_iter().zip(rest.deliveries()).collect();
    // Offsets 4 and 5 were delivered once before; whatever follows them
    // (if the answer reaches past the old range) was not.
    let expected: Vec<(i64, i64)> = pairs
        .iter()
        .map(|(o, _)| (*o, if *o <= 5 { 2 } else { 1 }))
        .collect();
    assert!(pairs.len() >= 2 && pairs[0].0 == 4, "{pairs:?}");
    assert_eq!(pairs, expected, "(offset, Deliveries) of the rest");
}
