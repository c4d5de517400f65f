//! Dead letters: a manual-mode range delivered more often than its group's
//! `max_deliveries` goes to the group's dead-letter topic, with headers
//! naming where it came from, and is never delivered again.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;

/// One manual GET of `group`, with a short visibility: (messages, receipt).
async fn manual_get(
    app: &TestApp,
    user: &str,
    password: &str,
    topic: &str,
    group: &str,
) -> (Vec<Value>, Option<String>) {
    let query = format!("limit=10&group={group}&ack=manual&visibility=300");
    let response = app.consume(user, password, topic, &query).await;
    assert_eq!(response.status(), StatusCode::OK);
    let receipt = response
        .headers()
        .get("Sluice-Receipt")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.json().await.unwrap(), receipt)
}

#[tokio::test]
async fn a_message_never_acked_reaches_the_dead_letter_topic_after_max_deliveries() {
    let app = TestApp::spawn().await;
    let (tenant, topic, user, password) = app.tenant_with_topic(1).await;
    let dlq = format!("{tenant}.orders.dlq");
    app.create_topic(&tenant, &dlq, 1).await;
    app.produce(
        &user,
        &password,
        &topic,
        r#"[{"Key":"k","Value":"poison","Headers":{"trace":"t1"}}]"#,
    )
    .await;
    let policy = json!({ "max_deliveries": 2, "dead_letter_topic": dlq });
    let response = app
        .put_group(&user, &password, &topic, "workers", &policy)
        .await;
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );

    // Delivered twice, never acked.
    for expected in 1..=2 {
        let (messages, receipt) = manual_get(&app, &user, &password, &topic, "workers").await;
        assert_eq!(messages.len(), 1, "delivery {expected}");
        assert_eq!(messages[0]["Deliveries"], expected);
        assert!(receipt.is_some());
        // Nothing while the range is leased.
        let (during, _) = manual_get(&app, &user, &password, &topic, "workers").await;
        assert!(
            during.is_empty(),
            "delivered again while leased: {during:?}"
        );
        tokio::time::sleep(Duration::from_millis(450)).await;
    }

    // The third lease finds it past max_deliveries: dead-lettered, not delivered.
    let (third, receipt) = manual_get(&app, &user, &password, &topic, "workers").await;
    assert!(third.is_empty(), "{third:?}");
    assert!(receipt.is_none());

    let letters = app
        .consume_ok(&user, &password, &dlq, "limit=10&group=triage&wait=3000")
        .await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter["Value"], "poison");
    assert_eq!(letter["Key"], "k");
    let headers = &letter["Headers"];
    assert_eq!(headers["trace"], "t1");
    assert_eq!(headers["sluice-source-topic"], topic.as_str());
    assert_eq!(headers["sluice-source-partition"], "0");
    assert_eq!(headers["sluice-source-offset"], "0");
    assert_eq!(headers["sluice-deliveries"], "3");

    // Committed: the group never sees it again, even after the visibility.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let (after, _) = manual_get(&app, &user, &password, &topic, "workers").await;
    assert!(after.is_empty(), "{after:?}");
}

#[tokio::test]
async fn a_group_without_a_policy_keeps_redelivering() {
    let app = TestApp::spawn().await;
    let (_tenant, topic, user, password) = app.tenant_with_topic(1).await;
    app.produce(&user, &password, &topic, r#"[{"Value":"again"}]"#)
        .await;
    for expected in 1..=4 {
        let (messages, _) = manual_get(&app, &user, &password, &topic, "plain").await;
        assert_eq!(messages.len(), 1, "delivery {expected}");
        assert_eq!(messages[0]["Deliveries"], expected);
        tokio::time::sleep(Duration::from_millis(450)).await;
    }
}
