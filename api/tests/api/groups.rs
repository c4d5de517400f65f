use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, TestApp};

fn offsets(messages: &[Value]) -> Vec<i64> {
    messages
        .iter()
        .map(|m| m["Offset"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_groups_lag_is_listed_and_the_group_can_be_reset() {
    let app = TestApp::spawn().await;
    let (tenant, topic, user, password) = app.tenant_with_topic(1).await;
    let body: Vec<Value> = (0..10)
        .map(|i| json!({ "Value": i.to_string(), "Timestamp": 1_700_000_000_000_i64 + i * 1000 }))
        .collect();
    app.produce(&user, &password, &topic, &Value::from(body).to_string())
        .await;
    let read = app
        .consume_ok(&user, &password, &topic, "group=billing&limit=4")
        .await;
    assert_eq!(offsets(&read), [0, 1, 2, 3]);

    let groups: Vec<Value> = app.get_groups(&tenant).await.json().await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["group"], "billing");
    assert_eq!(groups[0]["kafka_group"], format!("{tenant}.billing"));
    assert_eq!(groups[0]["lag"], 6);
    assert_eq!(groups[0]["partitions"][0]["offset"], 4);

    let reset = app
        .post_group_reset(
            &tenant,
            "billing",
            &json!({ "topic": topic, "to": "earliest" }),
        )
        .await;
    assert_eq!(reset.status(), StatusCode::OK);
    assert_eq!(
        offsets(
            &app.consume_ok(&user, &password, &topic, "group=billing&limit=2")
                .await
        ),
        [0, 1]
    );

    app.post_group_reset(
        &tenant,
        "billing",
        &json!({ "topic": topic, "to": "latest" }),
    )
    .await;
    assert!(app
        .consume_ok(&user, &password, &topic, "group=billing")
        .await
        .is_empty());

    let audit: Vec<Value> = app
        .get_audit("action=group.reset")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit.len(), 2);
}

#[tokio::test]
async fn bad_resets_get_4xx() {
    let app = TestApp::spawn().await;
    let (tenant, topic, _, _) = app.tenant_with_topic(1).await;

    let bad_target = app
        .post_group_reset(&tenant, "g", &json!({ "topic": topic, "to": "yesterday" }))
        .await;
    assert_error(bad_target, StatusCode::BAD_REQUEST, "invalid_to").await;
    let bad_group = app
        .post_group_reset(
            &tenant,
            "a..b",
            &json!({ "topic": topic, "to": "earliest" }),
        )
        .await;
    assert_error(bad_group, StatusCode::BAD_REQUEST, "invalid_group").await;
    let unknown = app
        .post_group_reset(
            &tenant,
            "g",
            &json!({ "topic": format!("{tenant}.nope"), "to": "earliest" }),
        )
        .await;
    assert_error(unknown, StatusCode::NOT_FOUND, "topic_not_found").await;
}

#[tokio::test]
async fn the_cli_lists_and_resets_groups() {
    let app = TestApp::spawn().await;
    let (tenant, topic, user, password) = app.tenant_with_topic(1).await;
    app.produce_numbered(&user, &password, &topic, 5).await;
    app.consume_ok(&user, &password, &topic, "limit=5").await;

    let listed = app.cli(&["group", "list", &tenant]).await;
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.contains(&format!("{tenant}.app")), "{text}");
    let reset = app
        .cli(&[
            "group", "reset", &tenant, "app", "--topic", &topic, "--to", "earliest",
        ])
        .await;
    assert!(
        reset.status.success(),
        "{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    assert_eq!(
        app.consume_ok(&user, &password, &topic, "limit=5")
            .await
            .len(),
        5
    );
}

/// One GET: when it started, when it finished, what it delivered as
/// (partition, offset).
type Get = (Instant, Instant, Vec<(i64, i64)>);

#[tokio::test]
async fn a_reset_while_gets_are_in_flight_leaves_no_duplicates_after_it() {
    let app = Arc::new(TestApp::spawn().await);
    let (tenant, topic, user, password) = app.tenant_with_topic(3).await;
    app.produce_numbered(&user, &password, &topic, 600).await;
    let consumed = Arc::new(AtomicUsize::new(0));

    let mut clients = Vec::new();
    for _ in 0..4 {
        let (app, topic, user, password, consumed) = (
            app.clone(),
            topic.clone(),
            user.clone(),
            password.clone(),
            consumed.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut log: Vec<Get> = Vec::new();
            let mut empties = 0;
            while empties < 5 {
                let started = Instant::now();
                let messages = app.consume_ok(&user, &password, &topic, "limit=10").await;
                let got: Vec<(i64, i64)> = messages
                    .iter()
                    .map(|m| {
                        (
                            m["Partition"].as_i64().unwrap(),
                            m["Offset"].as_i64().unwrap(),
                        )
                    })
                    .collect();
                consumed.fetch_add(got.len(), Ordering::SeqCst);
                empties = if got.is_empty() { empties + 1 } else { 0 };
                let empty = got.is_empty();
                log.push((started, Instant::now(), got));
                if empty {
                    // With 4 clients on 3 partitions an answer is empty
                    // whenever the others hold every partition: look again
                    // after their GETs have committed, so that 5 empty
                    // answers in a row mean the topic is drained.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
            log
        }));
    }
    while consumed.load(Ordering::SeqCst) < 200 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let reset_sent = Instant::now();
    let reset = app
        .post_group_reset(&tenant, "app", &json!({ "topic": topic, "to": "earliest" }))
        .await;
    assert_eq!(reset.status(), StatusCode::OK);
    let reset_done = Instant::now();

    let mut after = Vec::new();
    let mut around = HashSet::new();
    for client in clients {
        for (started, finished, got) in client.await.unwrap() {
            if started > reset_done {
                after.extend(got.iter().copied());
            }
            if finished > reset_sent {
                around.extend(got);
            }
        }
    }
    let unique: HashSet<(i64, i64)> = after.iter().copied().collect();
    assert_eq!(unique.len(), after.len(), "duplicates after the reset");
    assert_eq!(
        around.len(),
        600,
        "every message is delivered again after the reset"
    );
}
